"""The packaged reader run by onnxruntime: reading a question imports no torch.

The ONNX copy of the packaged reader (recipe: :mod:`qa.models.export_reader`) is built on first
use into the user's cache (:mod:`qa.models.reader_onnx`), keyed by the reader's weights, the
precision and the recipe, and checked against its digest on every load. Windows are cut by the
reader's own Rust tokenizer (``tokenizers``), spans decoded by :mod:`qa.reading.spans`, exactly
as the torch reader does, so the two differ only in the arithmetic of the forward pass.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from qa.models import READER_DIR, cache, checksums
from qa.models.export_reader import OnnxPrecision
from qa.models.reader_onnx import (  # noqa: F401 - re-exported: where the file comes from
    DEFAULT_PRECISION,
    ReaderBuildError,
    reader_file,
)
from qa.reading.spans import ReaderModelError, SpanReader
from qa.reading.windows import Windows

#: OpenVINO's compiled models, in the user's cache (``OpenVinoReader``).
OPENVINO_FOLDER = "openvino"
#: The OpenVINO reader's input widths are multiples of this (``OpenVinoReader._logits``).
WIDTH_STEP = 32


class OnnxReader(SpanReader):
    """The packaged reader, run by onnxruntime over the windows :mod:`qa.reading.spans` cuts.

    Construction is cheap; the ONNX file is built (first time only) and loaded on
    :meth:`warm_up` or on the first :meth:`read`. One session serves every thread (onnxruntime
    runs concurrent calls safely); the tokenizer is guarded by :mod:`qa.reading.windows`.

    Args:
        precision: ``int8`` or ``fp32`` (see :mod:`qa.models.export_reader`).
        max_length: Window length in word pieces.
        stride: Tokens shared by consecutive windows of one context.
        max_answer_tokens: Longest span returned, in word pieces.
        batch_size: Windows per forward pass.
        threads: onnxruntime intra-op threads (``None``: onnxruntime's choice, one per core).
        model_file: An ONNX file to use instead of the cached build (tests, benchmarks).
    """

    runtime = "onnx"

    def __init__(
        self,
        precision: OnnxPrecision = "int8",
        *,
        max_length: int = 192,
        stride: int = 64,
        max_answer_tokens: int = 30,
        batch_size: int = 16,
        threads: int | None = None,
        model_file: Path | None = None,
    ) -> None:
        super().__init__(
            "default",
            max_length=max_length,
            stride=stride,
            max_answer_tokens=max_answer_tokens,
            batch_size=batch_size,
        )
        self.precision = precision
        self.threads = threads
        self.model_file = model_file
        self._session: Any = None
        self._tokenizer: Any = None

    def _loaded(self) -> bool:
        return self._session is not None

    def _load(self) -> None:
        from tokenizers import Tokenizer

        try:
            session = self._open(self.model_file or reader_file(self.precision))
            tokenizer = Tokenizer.from_file(str(READER_DIR / "tokenizer.json"))
        except checksums.ModelFileError:
            raise  # a damaged packaged reader: its own message says what to do
        except (cache.BuildError, OSError, RuntimeError, ImportError) as exc:
            raise ReaderModelError(f"Cannot load the {self.runtime} reader: {exc}") from exc
        self._tokenizer = tokenizer
        self._session = session

    def _open(self, model_file: Path) -> Any:
        """The session that runs ``model_file`` (``run(None, feed)`` -> outputs)."""
        from qa.models.runtime import cpu_session

        return cpu_session(model_file, self.threads)

    def _window_tokenizer(self) -> Any:
        return self._tokenizer

    def _logits(self, batch: Windows, width: int) -> tuple[np.ndarray, np.ndarray]:
        start, end = self._session.run(
            None,
            {
                "input_ids": batch.input_ids[:, :width],
                "attention_mask": batch.attention_mask[:, :width],
                "token_type_ids": batch.token_type_ids[:, :width],
            },
        )
        return start, end


class OpenVinoReader(OnnxReader):
    """The packaged reader's float32 ONNX copy compiled by OpenVINO: bfloat16 where the CPU
    has AMX (``reader_runtime=auto`` reads with it there), float32 elsewhere.

    On AMX cores bfloat16 reads 2.3 times as fast as onnxruntime in float32 with the same
    qa-val F1 given each question's paragraph (72.14 against 71.97; benchmarks/RESULTS.md,
    "Intel Xeon with AMX"); without AMX OpenVINO's float32 gains little (1.06x), so ``auto``
    keeps onnxruntime there. Windows, tokenizer and spans are :class:`OnnxReader`'s; the
    compiled model is shared, each thread runs its own infer request
    (:class:`qa.models.runtime.OpenVinoSession`), and compiled models are cached in
    ``<cache>/openvino``.

    Args:
        bf16: Compute in bfloat16 (``None``: where the CPU has AMX).
        **kwargs: As :class:`OnnxReader` (its precision is fp32).
    """

    runtime = "openvino"

    def __init__(self, *, bf16: bool | None = None, **kwargs: Any) -> None:
        super().__init__("fp32", **kwargs)
        from qa.models.runtime import amx_bf16

        self.bf16 = amx_bf16() if bf16 is None else bf16

    def _logits(self, batch: Windows, width: int) -> tuple[np.ndarray, np.ndarray]:
        # Columns padded up to a multiple of ``WIDTH_STEP`` (masked out, so the real columns'
        # logits do not change): OpenVINO keeps what it prepares for each input shape, which
        # grew the process by about 2 MB per new shape (1.3 GB after 519 shapes), and
        # preparing a new shape costs as much as the reading. With six widths (and batches of
        # 1 to ``batch_size`` windows) the shapes stay few and the process flat.
        padded = min(self.max_length, -(-width // WIDTH_STEP) * WIDTH_STEP)
        feed = {}
        for name in ("input_ids", "attention_mask", "token_type_ids"):
            columns = getattr(batch, name)[:, :width]
            feed[name] = np.zeros((columns.shape[0], max(padded, width)), columns.dtype)
            feed[name][:, :width] = columns
        start, end = self._session.run(None, feed)
        return start[:, :width], end[:, :width]

    def _open(self, model_file: Path) -> Any:
        from qa.models.runtime import OpenVinoSession

        return OpenVinoSession(
            model_file,
            self.threads,
            bf16=self.bf16,
            cache_folder=cache.cache_dir() / OPENVINO_FOLDER,
        )
