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

        from qa.models.runtime import cpu_session

        try:
            session = cpu_session(self.model_file or reader_file(self.precision), self.threads)
            tokenizer = Tokenizer.from_file(str(READER_DIR / "tokenizer.json"))
        except checksums.ModelFileError:
            raise  # a damaged packaged reader: its own message says what to do
        except (cache.BuildError, OSError, RuntimeError) as exc:
            raise ReaderModelError(f"Cannot load the ONNX reader: {exc}") from exc
        self._tokenizer = tokenizer
        self._session = session

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
