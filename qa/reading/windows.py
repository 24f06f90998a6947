"""Tokenise (question, context) pairs into overlapping windows with exact character offsets.

Training and inference share this module, so a window means the same thing in both: ``[CLS]
question [SEP] context-slice [SEP]``, consecutive slices of one context sharing ``stride``
tokens, and for each context token the character span it covers in the original context string.
Position 0 ([CLS]) stands for "no answer in this window".
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from tokenizers import Tokenizer

#: Longest question kept, in word pieces; longer questions are cut so the context keeps room.
MAX_QUESTION_TOKENS = 64

#: One lock per tokenizer object (see :func:`tokenizer_lock`).
_LOCKS: weakref.WeakKeyDictionary[Any, threading.Lock] = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def backend(tokenizer: Any) -> Tokenizer:
    """The Rust tokenizer (``tokenizers.Tokenizer``) behind ``tokenizer``.

    Accepts a transformers fast tokenizer (its ``backend_tokenizer``) or a ``tokenizers``
    object itself, so windows are cut the same way whether or not transformers is loaded.

    Raises:
        TypeError: For a slow tokenizer, which has no character offsets.
    """
    inner = getattr(tokenizer, "backend_tokenizer", tokenizer)
    if not hasattr(inner, "encode_batch") or not hasattr(inner, "enable_truncation"):
        raise TypeError(f"{type(tokenizer).__name__} is not a fast tokenizer (no offsets)")
    return inner


def tokenizer_lock(tokenizer: Any) -> threading.Lock:
    """The lock that :func:`make_windows` holds while it uses ``tokenizer``.

    A fast tokenizer keeps truncation and padding as state of its Rust backend, and every call
    sets that state before encoding: cutting a question (no truncation) and windowing a pair
    (``only_second``) set different states, so two threads sharing one tokenizer can encode
    with each other's settings (``Truncation error: Second sequence not provided``) or find
    the backend borrowed. Keying the lock by the tokenizer guards every caller of this module
    (the reader under a web server, training), not only one reader object. A transformers
    tokenizer and the Rust tokenizer behind it share one lock.
    """
    tokenizer = backend(tokenizer)
    with _LOCKS_GUARD:
        lock = _LOCKS.get(tokenizer)
        if lock is None:
            lock = _LOCKS[tokenizer] = threading.Lock()
        return lock


@dataclass(frozen=True)
class Windows:
    """A batch of windows over (question, context) pairs, padded to a common length.

    Attributes:
        input_ids: ``(n, length)`` token ids.
        attention_mask: ``(n, length)`` 1 on real tokens, 0 on padding.
        token_type_ids: ``(n, length)`` 0 on the question part, 1 on the context part.
        offsets: ``(n, length, 2)`` character span of each context token in its pair's
            context string; ``(0, 0)`` on every other token.
        context_mask: ``(n, length)`` True on the tokens of the context slice.
        pair_index: ``(n,)`` index of the (question, context) pair each window comes from.
    """

    input_ids: np.ndarray
    attention_mask: np.ndarray
    token_type_ids: np.ndarray
    offsets: np.ndarray
    context_mask: np.ndarray
    pair_index: np.ndarray

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])

    def select(self, rows: np.ndarray | Sequence[int]) -> Windows:
        """Return the windows at ``rows`` (an index array), in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        return Windows(
            input_ids=self.input_ids[rows],
            attention_mask=self.attention_mask[rows],
            token_type_ids=self.token_type_ids[rows],
            offsets=self.offsets[rows],
            context_mask=self.context_mask[rows],
            pair_index=self.pair_index[rows],
        )


def _cut_question(tokenizer: Tokenizer, question: str) -> tuple[str, int]:
    """Cut a question to ``MAX_QUESTION_TOKENS`` word pieces at a token boundary.

    Returns:
        The (possibly cut) question and its length in word pieces.
    """
    enc = tokenizer.encode(question, add_special_tokens=False)
    if len(enc.ids) <= MAX_QUESTION_TOKENS:
        return question, len(enc.ids)
    return question[: enc.offsets[MAX_QUESTION_TOKENS - 1][1]], MAX_QUESTION_TOKENS


def make_windows(
    tokenizer: Any,
    questions: Sequence[str],
    contexts: Sequence[str],
    *,
    max_length: int,
    stride: int,
    pad_to_max_length: bool = False,
) -> Windows:
    """Split each (question, context) pair into windows of at most ``max_length`` tokens.

    The windows are those a transformers fast tokenizer gives for ``truncation="only_second"``
    with ``return_overflowing_tokens``: each encoding followed by its overflowing ones.

    Args:
        tokenizer: A transformers fast tokenizer or a ``tokenizers.Tokenizer`` (offsets are
            required).
        questions: One question per pair.
        contexts: One context per pair, same length as ``questions``.
        max_length: Window length in word pieces, special tokens included.
        stride: Tokens shared by consecutive windows of one context, so an answer cut by one
            window boundary is whole in the next window.
        pad_to_max_length: Pad every window to ``max_length`` (fixed-shape storage for
            training) instead of to the longest window of the batch.

    Returns:
        The windows of all pairs, in pair order.

    Raises:
        ValueError: If the inputs differ in length or a window leaves no room for context
            beyond the stride after the longest question (cut to ``MAX_QUESTION_TOKENS``).
    """
    if len(questions) != len(contexts):
        raise ValueError(f"{len(questions)} questions but {len(contexts)} contexts")
    if not questions:
        empty = np.zeros((0, 0), dtype=np.int64)
        return Windows(
            empty,
            empty,
            empty,
            np.zeros((0, 0, 2), np.int64),
            empty.astype(bool),
            np.zeros(0, np.int64),
        )
    rust = backend(tokenizer)
    with tokenizer_lock(rust):
        rust.no_padding()
        rust.no_truncation()
        cut, lengths = zip(*(_cut_question(rust, q) for q in questions), strict=True)
        # [CLS] q [SEP] c [SEP]: the context part must be longer than the stride to progress.
        if max_length - max(lengths) - 3 <= stride:
            raise ValueError(
                f"max_length={max_length} leaves no room for context beyond stride={stride} "
                f"after a question of {max(lengths)} tokens"
            )
        rust.enable_truncation(max_length, stride=stride, strategy="only_second")
        try:
            encoded = rust.encode_batch(list(zip(cut, contexts, strict=True)))
        finally:
            rust.no_truncation()
    pieces = [(i, e) for i, first in enumerate(encoded) for e in (first, *first.overflowing)]
    n = len(pieces)
    length = max_length if pad_to_max_length else max(len(e.ids) for _, e in pieces)
    pad_id = rust.token_to_id("[PAD]") or 0
    input_ids = np.full((n, length), pad_id, dtype=np.int64)
    attention_mask = np.zeros((n, length), dtype=np.int64)
    token_type_ids = np.zeros((n, length), dtype=np.int64)
    offsets = np.zeros((n, length, 2), dtype=np.int64)
    context_mask = np.zeros((n, length), dtype=bool)
    for row, (_, e) in enumerate(pieces):
        size = len(e.ids)
        input_ids[row, :size] = e.ids
        attention_mask[row, :size] = e.attention_mask
        token_type_ids[row, :size] = e.type_ids
        context_mask[row, :size] = [s == 1 for s in e.sequence_ids]
        offsets[row, :size] = e.offsets
    offsets[~context_mask] = 0
    return Windows(
        input_ids=input_ids,
        attention_mask=attention_mask,
        token_type_ids=token_type_ids,
        offsets=offsets,
        context_mask=context_mask,
        pair_index=np.asarray([i for i, _ in pieces], dtype=np.int64),
    )


def answer_positions(
    windows: Windows, answers: Sequence[tuple[int, int] | None]
) -> tuple[np.ndarray, np.ndarray]:
    """Token positions of each window's answer, or ``(0, 0)`` ([CLS]) where it is not inside.

    Args:
        windows: Windows from :func:`make_windows`.
        answers: For each pair, the answer's ``(start, end)`` character span in its context,
            or ``None`` for an unanswerable pair.

    Returns:
        ``(start_positions, end_positions)``, one token index each per window. A window whose
        context slice does not hold the whole answer gets ``(0, 0)``: "no answer here".
    """
    n = len(windows)
    starts = np.zeros(n, dtype=np.int64)
    ends = np.zeros(n, dtype=np.int64)
    for w in range(n):
        answer = answers[int(windows.pair_index[w])]
        if answer is None:
            continue
        a_start, a_end = answer
        tokens = np.flatnonzero(windows.context_mask[w])
        tok_starts = windows.offsets[w, tokens, 0]
        tok_ends = windows.offsets[w, tokens, 1]
        if tok_starts[0] > a_start or tok_ends[-1] < a_end:
            continue
        # Last token starting at or before the answer start; first token ending at or after
        # its end: the smallest token span that covers the answer characters.
        first = int(np.searchsorted(tok_starts, a_start, side="right")) - 1
        last = int(np.searchsorted(tok_ends, a_end, side="left"))
        starts[w] = tokens[first]
        ends[w] = tokens[last]
    return starts, ends
