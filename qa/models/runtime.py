"""onnxruntime sessions as the product runs its ONNX models: on the CPU, one session shared by
every thread that asks; and OpenVINO for the reader where the CPU has AMX (``OpenVinoSession``)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np


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


def cpu_flags() -> frozenset[str]:
    """The instruction-set flags Linux reports for this CPU (empty where it reports none)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.partition(":")[2].split())
    except OSError:
        pass
    return frozenset()


def amx_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 matrices in AMX tiles (the ``amx_bf16`` flag)."""
    return "amx_bf16" in cpu_flags()


class OpenVinoSession:
    """An ONNX model compiled by OpenVINO for the CPU, run like an onnxruntime session.

    ``run(None, feed)`` returns the model's outputs in order, as
    ``InferenceSession.run`` does. The compiled model is shared; each thread runs its own infer
    request (a request holds its inputs and outputs and serves one call at a time), made on
    that thread's first call. Compiled models are kept in ``cache_folder`` (OpenVINO's model
    cache, keyed by the model and the settings), so a later process loads the compiled form
    instead of compiling again (0.15 s against 0.55 s for the reader on two cores).

    While it compiles (or loads from its cache), OpenVINO sets the whole process's locale to
    "C" for a moment: a text file another thread opens then without naming an encoding would
    be ASCII, so every text file in the project names UTF-8 (tests/test_locale.py).

    Args:
        model_file: The ONNX file.
        threads: Inference threads (``None``: OpenVINO's choice).
        bf16: Compute in bfloat16 (``INFERENCE_PRECISION_HINT``), else float32.
        cache_folder: OpenVINO's model cache (``None``: none).
    """

    def __init__(
        self,
        model_file: Path,
        threads: int | None = None,
        *,
        bf16: bool,
        cache_folder: Path | None = None,
    ) -> None:
        import openvino as ov

        core = ov.Core()
        if cache_folder is not None:
            core.set_property({"CACHE_DIR": str(cache_folder)})
        config: dict[str, Any] = {
            "INFERENCE_PRECISION_HINT": "bf16" if bf16 else "f32",
            "PERFORMANCE_HINT": "LATENCY",
        }
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        self._model = core.compile_model(str(model_file), "CPU", config)
        self.bf16 = bf16
        self._outputs = list(self._model.outputs)
        self._local = threading.local()

    def run(self, output_names: None, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        """The outputs for ``feed`` (input name -> array), in the model's order."""
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self._model.create_infer_request()
        results = request.infer(feed)  # copies of the outputs (share_outputs=False)
        return [results[output] for output in self._outputs]
