"""The transformer span reader: windows in, scored character spans out.

The reader runs a ``*ForQuestionAnswering`` model over windows of (question, context) pairs
(:mod:`qa.reading.windows`) and decodes start/end logits into spans with a joint search over
(start, end) pairs. Scores are probabilities on one scale in every window, so one threshold
means the same thing for any passage or document (see :func:`decode_windows`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
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
from qa.reading.windows import Windows, make_windows

#: The reader trained by ``qa train-reader`` and shipped with the package (its files are
#: checked against ``qa/models/SHA256SUMS`` when it loads).
DEFAULT_READER_DIR = READER_DIR


class ReaderModelError(RuntimeError):
    """A reader model could not be loaded; the message says what to do about it."""


@dataclass(frozen=True)
class SpanCandidate:
    """One answer span found by the reader.

    Attributes:
        context_index: Index of the context (in the list given to ``read``) holding the span.
        start: Character offset of the span's first character in that context.
        end: Character offset one past the span's last character.
        text: ``contexts[context_index][start:end]``.
        score: Probability of this span in its window, against every other valid span of the
            window and "no answer" (see :func:`decode_windows`).
        null_score: Probability of "no answer" in the window the span came from.
    """

    context_index: int
    start: int
    end: int
    text: str
    score: float
    null_score: float


@dataclass(frozen=True)
class WindowSpan:
    """A decoded span in token coordinates of one window."""

    window: int
    start_token: int
    end_token: int
    score: float
    null_score: float


def decode_windows(
    start_logits: torch.Tensor,
    end_logits: torch.Tensor,
    context_mask: torch.Tensor,
    *,
    max_answer_tokens: int,
    top_k: int,
) -> list[WindowSpan]:
    """Find the best spans of each window by a joint search over (start, end) pairs.

    A span ``(i, j)`` is valid when ``i <= j < i + max_answer_tokens`` and both tokens lie in the
    context part of the window (never the question, special tokens or padding). Its logit is
    ``start[i] + end[j]``; "no answer" has the logit ``start[0] + end[0]`` ([CLS]).

    Scoring: the model is trained with independent softmaxes over start and end positions, so
    ``exp(start[i] + end[j])`` is proportional to the joint probability of the pair. Normalising
    it over every valid span of the window plus "no answer" gives a probability that the window's
    answer is exactly this span. Each window is normalised on its own, over the same kind of
    outcome set, so scores are on one scale across windows, passages and documents: a score of
    0.6 means "this window's model puts 60 % on this span", whichever text it came from. The
    window's null probability is reported alongside; ``1 - null_score`` is the probability that
    the window holds an answer at all.

    Args:
        start_logits: ``(n, length)`` start logits.
        end_logits: ``(n, length)`` end logits.
        context_mask: ``(n, length)`` True on context tokens.
        max_answer_tokens: Longest span, in tokens.
        top_k: Spans kept per window (fewer where a window has fewer valid spans).

    Returns:
        The kept spans of all windows, best first within each window.
    """
    start = start_logits.float()
    end = end_logits.float()
    n, length = start.shape
    if n == 0:
        return []
    ones = torch.ones(length, length, dtype=torch.bool, device=start.device)
    band = torch.triu(ones) & ~torch.triu(ones, diagonal=max_answer_tokens)
    ctx = context_mask.to(device=start.device, dtype=torch.bool)
    valid = band.unsqueeze(0) & ctx.unsqueeze(2) & ctx.unsqueeze(1)
    pair = (start.unsqueeze(2) + end.unsqueeze(1)).masked_fill(~valid, float("-inf"))
    null = start[:, 0] + end[:, 0]
    log_z = torch.logsumexp(torch.cat([pair.reshape(n, -1), null.unsqueeze(1)], dim=1), dim=1)
    null_prob = torch.exp(null - log_z)
    k = min(top_k, length * length)
    best, flat = torch.topk(pair.reshape(n, -1), k, dim=1)
    probs = torch.exp(best - log_z.unsqueeze(1))
    spans: list[WindowSpan] = []
    for w in range(n):
        for rank in range(k):
            if not torch.isfinite(best[w, rank]):
                break
            idx = int(flat[w, rank])
            spans.append(
                WindowSpan(
                    window=w,
                    start_token=idx // length,
                    end_token=idx % length,
                    score=float(probs[w, rank]),
                    null_score=float(null_prob[w]),
                )
            )
    return spans


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
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.partition(":")[2].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


class TransformerReader:
    """Extract answer spans from contexts with a ``*ForQuestionAnswering`` model.

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
        self.model_name = model
        self.max_length = max_length
        self.stride = stride
        self.max_answer_tokens = max_answer_tokens
        self.batch_size = batch_size
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

    def warm_up(self) -> None:
        """Load the tokenizer and model if they are not loaded yet.

        Raises:
            ReaderModelError: If the model cannot be loaded.
        """
        if self._model is None:
            self._tokenizer, self._model = load_reader(self.model_name, device=self.device)

    def read(self, question: str, contexts: Sequence[str], top_n: int = 5) -> list[SpanCandidate]:
        """Return the best ``top_n`` spans for ``question`` across all ``contexts``.

        Args:
            question: The question.
            contexts: Texts to read; spans carry the index of their context.
            top_n: How many spans to return.

        Returns:
            Distinct spans, best score first; ``text == contexts[i][start:end]`` always.
        """
        return self.read_many([(question, contexts)], top_n=top_n)[0]

    def read_many(
        self, queries: Sequence[tuple[str, Sequence[str]]], top_n: int = 5
    ) -> list[list[SpanCandidate]]:
        """Like :meth:`read` for many questions at once, batching all their windows together.

        Args:
            queries: ``(question, contexts)`` pairs.
            top_n: How many spans to return per question.

        Returns:
            One list of spans per query, in query order.
        """
        self.warm_up()
        assert self._tokenizer is not None and self._model is not None
        questions: list[str] = []
        contexts: list[str] = []
        owner: list[tuple[int, int]] = []  # (query, context index) of each pair
        for q, (question, texts) in enumerate(queries):
            for c, text in enumerate(texts):
                questions.append(question)
                contexts.append(text)
                owner.append((q, c))
        best: list[dict[tuple[int, int, int], SpanCandidate]] = [{} for _ in queries]
        # make_windows holds the tokenizer's lock: its truncation state is shared.
        windows = make_windows(
            self._tokenizer, questions, contexts, max_length=self.max_length, stride=self.stride
        )
        for lo in range(0, len(windows), self.batch_size):
            batch = windows.select(np.arange(lo, min(lo + self.batch_size, len(windows))))
            for span in self._decode_batch(batch, top_n):
                pair = int(batch.pair_index[span.window])
                q, c = owner[pair]
                candidate = _to_candidate(batch, span, contexts[pair], c)
                if candidate is None:
                    continue
                key = (c, candidate.start, candidate.end)
                # Overlapping windows see the same span: keep its best reading only.
                if key not in best[q] or best[q][key].score < candidate.score:
                    best[q][key] = candidate
        return [
            sorted(found.values(), key=lambda s: (-s.score, s.context_index, s.start))[:top_n]
            for found in best
        ]

    @torch.inference_mode()
    def _decode_batch(self, batch: Windows, top_k: int) -> list[WindowSpan]:
        assert self._model is not None
        # Trim padding columns shared by the whole batch: attention cost grows with length.
        width = int(batch.attention_mask.sum(axis=1).max())
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
        return decode_windows(
            out.start_logits,
            out.end_logits,
            torch.from_numpy(batch.context_mask[:, :width]),
            max_answer_tokens=self.max_answer_tokens,
            top_k=top_k,
        )


def _to_candidate(
    batch: Windows, span: WindowSpan, context: str, context_index: int
) -> SpanCandidate | None:
    """Map a token span to characters of its context, trimming whitespace at the edges."""
    start = int(batch.offsets[span.window, span.start_token, 0])
    end = int(batch.offsets[span.window, span.end_token, 1])
    text = context[start:end]
    stripped = text.strip()
    if not stripped:
        return None
    start += len(text) - len(text.lstrip())
    end = start + len(stripped)
    return SpanCandidate(
        context_index=context_index,
        start=start,
        end=end,
        text=context[start:end],
        score=span.score,
        null_score=span.null_score,
    )
