"""The packaged reader run by onnxruntime: reading a question imports no torch.

The ONNX copy of the packaged reader (recipe: :mod:`qa.models.export_reader`) is built on first
use into the user's cache (:mod:`qa.models.cache`), keyed by the reader's weights, the precision
and the recipe, and checked against its digest on every load. Windows are cut by the reader's
own Rust tokenizer (``tokenizers``), spans decoded by :mod:`qa.reading.spans`, exactly as the
torch reader does, so the two differ only in the arithmetic of the forward pass.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from qa.models import READER_DIR, cache, checksums
from qa.models.export_reader import OnnxPrecision
from qa.reading.spans import ReaderModelError, SpanReader
from qa.reading.windows import Windows

FOLDER = "reader-onnx"
MODEL_FILE = "model.onnx"
#: The precision ``reader_runtime=auto`` reads with. fp32 gives the torch reader's spans
#: exactly; int8 came within 0.2 qa-val F1 of it but was no faster per ask on 2 cores
#: (benchmarks/RESULTS.md, "Reader runtimes"), so it is not worth its differences.
DEFAULT_PRECISION: OnnxPrecision = "fp32"
#: About how long a build takes on two cores, for the notice shown while it runs.
BUILD_SECONDS = 20


class ReaderBuildError(cache.BuildError):
    """The ONNX reader could not be built (the export's tools are missing or failed)."""


def _artefact(precision: OnnxPrecision) -> cache.Artefact:
    def key() -> str:
        from qa.models.export_reader import RECIPE_VERSION

        weights = checksums.recorded()["reader/model.safetensors"]
        return f"{weights[:16]}-{precision}-recipe{RECIPE_VERSION}"

    def build(target: Path) -> dict[str, Any]:
        from qa.models import export_reader

        checksums.verify("reader", READER_DIR)
        return export_reader.export(target, READER_DIR, precision)

    return cache.Artefact(
        what=f"the {precision} ONNX reader",
        folder=FOLDER,
        file=MODEL_FILE,
        key=key,
        build=build,
        seconds=BUILD_SECONDS,
        remedy="pip install onnx onnx-ir torch (see pyproject.toml for the versions)",
        error=ReaderBuildError,
    )


def reader_file(
    precision: OnnxPrecision = "int8", *, folder: Path | None = None, rebuild: bool = False
) -> Path:
    """The ONNX reader's file, built first where it is missing or differs from its digest.

    Raises:
        ReaderBuildError: It had to be built and could not be (the message says why).
        qa.models.checksums.ModelFileError: The packaged reader is damaged.
    """
    return cache.built_file(_artefact(precision), folder=folder, rebuild=rebuild)


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
        import onnxruntime as ort
        from tokenizers import Tokenizer

        try:
            path = self.model_file or reader_file(self.precision)
            options = ort.SessionOptions()
            if self.threads:
                options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
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
