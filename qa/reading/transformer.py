"""The torch span reader: a ``*ForQuestionAnswering`` model run by torch over windows.

It loads any such checkpoint (the packaged reader, a local folder or a hub id) and is what
training measures with; the shared reading loop, span search and types are in
:mod:`qa.reading.spans`. Questions are read by the onnxruntime copy of the packaged reader
(:mod:`qa.reading.onnx_reader`) where it can be had, which needs no torch.
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import (
    AutoModelForQuestionAnswering,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from qa.models import READER_DIR, checksums
from qa.models.loading import LOADING
from qa.models.runtime import cpu_flags
from qa.reading.spans import (  # noqa: F401 - re-exported: the reader's public types
    ReaderModelError,
    SpanCandidate,
    SpanReader,
    WindowSpan,
    decode_windows,
)
from qa.reading.windows import Windows

#: The reader trained by ``qa train-reader`` and shipped with the package (its files are
#: checked against ``qa/models/SHA256SUMS`` when it loads).
DEFAULT_READER_DIR = READER_DIR


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}


def load_reader(
    model: str | Path, *, device: str = "cpu"
) -> tuple[PreTrainedTokenizerBase, PreTrainedModel]:
    """Load a tokenizer and a ``*ForQuestionAnswering`` model from a folder or a hub id.

    A local folder is loaded without touching the network. A hub id is first looked up in the
    local cache only; the hub is asked only when ``HF_HUB_OFFLINE`` is not set, so an offline
    machine fails at once instead of waiting on the network.

    Args:
        model: ``"default"`` (the packaged reader), a local folder, or a hub id.
        device: Torch device to put the model on.

    Returns:
        ``(tokenizer, model)`` with the model in eval mode, in float32.

    Raises:
        ReaderModelError: If the model cannot be loaded; the message says what to do.
    """
    source = DEFAULT_READER_DIR if str(model) == "default" else model
    path = Path(source).expanduser()
    is_local = path.is_dir()
    if str(model) == "default" and not (path / "config.json").is_file():
        raise ReaderModelError(
            f"The packaged reader is missing from {path}: train it with `qa train-reader`, "
            "or choose another reader model (a local folder or hub id), or use 'none'."
        )
    if path == READER_DIR:
        checksums.verify("reader", path)
    if not is_local and (path.is_absolute() or str(source).startswith((".", "~"))):
        raise ReaderModelError(
            f"Reader model folder {path} does not exist: give an existing folder of a "
            "*ForQuestionAnswering checkpoint, a hub id, 'default' or 'none'."
        )
    name = str(path) if is_local else str(source)
    attempts = [True] if is_local or _offline() else [True, False]
    last_error: Exception | None = None
    for local_only in attempts:
        try:
            with LOADING:
                tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=local_only)
                qa_model = AutoModelForQuestionAnswering.from_pretrained(
                    name, local_files_only=local_only, dtype=torch.float32
                )
        except (OSError, ValueError, KeyError) as exc:
            last_error = exc
            continue
        if not getattr(tokenizer, "is_fast", False):
            raise ReaderModelError(
                f"Reader model {name!r} has no fast tokenizer (tokenizer.json); the reader "
                "needs character offsets. Save the tokenizer in its fast form first."
            )
        return tokenizer, qa_model.to(device).eval()
    hint = (
        "HF_HUB_OFFLINE is set, so only local folders and cached models can be used"
        if _offline() or is_local
        else "the hub could not be reached or has no such model"
    )
    raise ReaderModelError(
        f"Cannot load reader model {name!r} ({hint}): give a local folder of a "
        f"*ForQuestionAnswering checkpoint, 'default' or 'none'. Cause: "
        f"{type(last_error).__name__}: {str(last_error).splitlines()[0] if last_error else ''}"
    )


def native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (the ``avx512_bf16`` or ``amx_bf16`` flag).

    Without them bfloat16 autocast is emulated and many times slower than float32 (measured:
    over 100 s per training batch of 32 on an AVX2-only CPU), so it is used only where it pays.
    Reads the flags Linux reports; elsewhere answers ``False`` (float32 is always safe).
    """
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


class TransformerReader(SpanReader):
    """Extract answer spans from contexts with a ``*ForQuestionAnswering`` model run by torch.

    Construction is cheap; the model loads on :meth:`warm_up` or on the first :meth:`read`.

    Args:
        model: ``"default"`` (the packaged reader), a local folder, or a hub id.
        max_length: Window length in word pieces.
        stride: Tokens shared by consecutive windows of one context.
        max_answer_tokens: Longest span returned, in word pieces.
        batch_size: Windows per forward pass.
        device: Torch device.
        bf16: Run the forward pass under bfloat16 autocast; ``None`` does so where the CPU
            computes bfloat16 natively (:func:`native_bf16`).
    """

    runtime = "torch"

    def __init__(
        self,
        model: str | Path = "default",
        *,
        max_length: int = 192,
        stride: int = 64,
        max_answer_tokens: int = 30,
        batch_size: int = 16,
        device: str = "cpu",
        bf16: bool | None = False,
    ) -> None:
        super().__init__(
            model,
            max_length=max_length,
            stride=stride,
            max_answer_tokens=max_answer_tokens,
            batch_size=batch_size,
        )
        self.device = device
        self.bf16 = native_bf16() if bf16 is None else bf16
        self._tokenizer: PreTrainedTokenizerBase | None = None
        self._model: PreTrainedModel | None = None

    @classmethod
    def from_loaded(
        cls, tokenizer: PreTrainedTokenizerBase, model: PreTrainedModel, **kwargs: Any
    ) -> TransformerReader:
        """Wrap an already loaded tokenizer and model (for example one being trained)."""
        reader = cls(model=getattr(model, "name_or_path", "in-memory"), **kwargs)
        reader._tokenizer = tokenizer
        reader._model = model
        return reader

    def _loaded(self) -> bool:
        return self._model is not None

    def _load(self) -> None:
        self._tokenizer, self._model = load_reader(self.model_name, device=self.device)

    def _window_tokenizer(self) -> PreTrainedTokenizerBase:
        assert self._tokenizer is not None
        return self._tokenizer

    @torch.inference_mode()
    def _logits(self, batch: Windows, width: int) -> tuple[np.ndarray, np.ndarray]:
        assert self._model is not None
        inputs = {
            "input_ids": torch.from_numpy(batch.input_ids[:, :width]).to(self.device),
            "attention_mask": torch.from_numpy(batch.attention_mask[:, :width]).to(self.device),
            "token_type_ids": torch.from_numpy(batch.token_type_ids[:, :width]).to(self.device),
        }
        autocast = (
            torch.autocast(device_type=torch.device(self.device).type, dtype=torch.bfloat16)
            if self.bf16
            else nullcontext()
        )
        with autocast:
            out = self._model(**inputs)
        return (
            out.start_logits.float().cpu().numpy(),
            out.end_logits.float().cpu().numpy(),
        )
