"""onnxruntime sessions as the product runs its ONNX models: on the CPU, one session shared by
every thread that asks."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def cpu_session(model_file: Path, threads: int | None = None) -> Any:
    """An ``onnxruntime.InferenceSession`` of ``model_file`` on the CPU.

    ``threads`` intra-op threads (``None``: onnxruntime's choice, one per core), one inter-op
    thread. The threads spin between a run's operators but stop spinning when the run ends
    (``session.force_spinning_stop``): by default they go on spinning after it, and the question
    encoder's spinning threads then took the two cores from the reader that runs right after it
    (a warm BBC ``ask`` p50 171 ms with them spinning, 106 ms without; benchmarks/RESULTS.md,
    "ONNX threads that stop spinning"). Inputs come in many shapes (questions and windows of
    every length, batches of every size), so no memory pattern is planned and kept per shape:
    each new shape's pattern only grew the process (benchmarks/RESULTS.md, "The soak's
    growth"), while the memory arena still reuses freed memory.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.enable_mem_pattern = False
    options.add_session_config_entry("session.force_spinning_stop", "1")
    return ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])
