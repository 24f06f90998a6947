"""Span reading shared by every reader runtime: windows in, scored character spans out.

A reader runtime (torch in :mod:`qa.reading.transformer`, onnxruntime in
:mod:`qa.reading.onnx_reader`) only turns a batch of windows into start and end logits;
windowing (:mod:`qa.reading.windows`), the joint span search and the mapping back to characters
live here, once, in numpy, so every runtime reads the same way. Scores are probabilities on one
scale in every window, so one threshold means the same thing for any passage or document (see
:func:`decode_windows`). Nothing here imports torch.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from qa.reading.windows import Windows, make_windows
from qa.types import SpanCandidate


class ReaderModelError(RuntimeError):
    """A reader model could not be loaded; the message says what to do about it."""


@dataclass(frozen=True)
class WindowSpan:
    """A decoded span in token coordinates of one window."""

    window: int
    start_token: int
    end_token: int
    score: float
    null_score: float


def _logsumexp(x: np.ndarray) -> np.ndarray:
    """Row-wise ``log(sum(exp(x)))`` that stays finite where some entries are ``-inf``."""
    top = x.max(axis=1)
    safe = np.where(np.isfinite(top), top, 0.0)
    return safe + np.log(np.exp(x - safe[:, None]).sum(axis=1))


def decode_windows(
    start_logits: Any,
    end_logits: Any,
    context_mask: Any,
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
        start_logits: ``(n, length)`` start logits (any array-like: numpy, a CPU tensor).
        end_logits: ``(n, length)`` end logits.
        context_mask: ``(n, length)`` True on context tokens.
        max_answer_tokens: Longest span, in tokens.
        top_k: Spans kept per window (fewer where a window has fewer valid spans).

    Returns:
        The kept spans of all windows, best first within each window (ties: earlier start,
        then earlier end).
    """
    start = np.asarray(start_logits, dtype=np.float64)
    end = np.asarray(end_logits, dtype=np.float64)
    if start.ndim != 2 or start.shape[0] == 0:
        return []
    n, length = start.shape
    rows = np.arange(length)
    span_len = rows[None, :] - rows[:, None]  # j - i
    band = (span_len >= 0) & (span_len < max_answer_tokens)
    ctx = np.asarray(context_mask, dtype=bool)
    valid = band[None] & ctx[:, :, None] & ctx[:, None, :]
    pair = np.where(valid, start[:, :, None] + end[:, None, :], -np.inf).reshape(n, -1)
    null = start[:, 0] + end[:, 0]
    log_z = _logsumexp(np.concatenate([pair, null[:, None]], axis=1))
    null_prob = np.exp(null - log_z)
    k = min(top_k, length * length)
    if k <= 0:
        return []
    # The k best of each row, then those in order: best first, ties in (start, end) order.
    if k < pair.shape[1]:
        kept = np.argpartition(-pair, k - 1, axis=1)[:, :k]
    else:
        kept = np.broadcast_to(np.arange(pair.shape[1]), pair.shape)
    chosen = np.take_along_axis(pair, kept, axis=1)
    order = np.take_along_axis(kept, np.lexsort((kept, -chosen), axis=1), axis=1)
    best = np.take_along_axis(pair, order, axis=1)
    probs = np.exp(best - log_z[:, None])
    spans: list[WindowSpan] = []
    for w in range(n):
        for rank in range(k):
            if not np.isfinite(best[w, rank]):
                break
            idx = int(order[w, rank])
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


def to_candidate(
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


class SpanReader(ABC):
    """Extract answer spans from contexts; a runtime supplies the tokenizer and the logits.

    Construction is cheap; the model loads on :meth:`warm_up` or on the first :meth:`read`.
    Loading is guarded by a lock, so threads that ask at once share one model.

    Args:
        model_name: What the reader was asked to load (shown in modes and errors).
        max_length: Window length in word pieces.
        stride: Tokens shared by consecutive windows of one context.
        max_answer_tokens: Longest span returned, in word pieces.
        batch_size: Windows per forward pass.
    """

    #: What runs the model (``torch``, ``onnx``).
    runtime = "unknown"

    def __init__(
        self,
        model_name: Any,
        *,
        max_length: int,
        stride: int,
        max_answer_tokens: int,
        batch_size: int,
    ) -> None:
        self.model_name = model_name
        self.max_length = max_length
        self.stride = stride
        self.max_answer_tokens = max_answer_tokens
        self.batch_size = batch_size
        self._load_lock = threading.Lock()

    @abstractmethod
    def _loaded(self) -> bool:
        """Whether the tokenizer and model are loaded."""

    @abstractmethod
    def _load(self) -> None:
        """Load the tokenizer and model (called once, under the load lock)."""

    @abstractmethod
    def _window_tokenizer(self) -> Any:
        """The tokenizer :func:`make_windows` cuts windows with."""

    @abstractmethod
    def _logits(self, batch: Windows, width: int) -> tuple[np.ndarray, np.ndarray]:
        """Start and end logits ``(n, width)`` of a batch's first ``width`` columns."""

    def warm_up(self) -> None:
        """Load the tokenizer and model if they are not loaded yet.

        Raises:
            ReaderModelError: If the model cannot be loaded.
        """
        if self._loaded():
            return
        with self._load_lock:
            if not self._loaded():
                self._load()

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
            self._window_tokenizer(),
            questions,
            contexts,
            max_length=self.max_length,
            stride=self.stride,
        )
        for lo in range(0, len(windows), self.batch_size):
            batch = windows.select(np.arange(lo, min(lo + self.batch_size, len(windows))))
            # Trim padding columns shared by the whole batch: attention cost grows with length.
            width = int(batch.attention_mask.sum(axis=1).max())
            start, end = self._logits(batch, width)
            spans = decode_windows(
                start,
                end,
                batch.context_mask[:, :width],
                max_answer_tokens=self.max_answer_tokens,
                top_k=top_n,
            )
            for span in spans:
                pair = int(batch.pair_index[span.window])
                q, c = owner[pair]
                candidate = to_candidate(batch, span, contexts[pair], c)
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
