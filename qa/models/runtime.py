"""onnxruntime sessions as the product runs its ONNX models: on the CPU, one session shared by
every thread that asks."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def cpu_session(model_file: Path, threads: int | None = None) -> Any:
    """An ``onnxruntime.InferenceSession`` of ``model_file`` on the CPU.

    ``threads`` intra-op threads (``None``: onnxruntime's choice, one per core), one inter-op
    thread. Inputs come in many shapes (questions and windows of every length, batches of
    every size), so no memory pattern is planned and kept per shape: each new shape's pattern
    only grew the process (benchmarks/RESULTS.md, "The soak's growth"), while the memory arena
    still reuses freed memory.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.enable_mem_pattern = False
    return ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])
