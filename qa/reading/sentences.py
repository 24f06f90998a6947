"""Sentences: exact-offset splitting, and the sentence extractor that answers without a reader.

Splitting uses sentencex (Wikimedia's rule-based segmenter: abbreviation-aware, ~0.3 ms for a
news article, with character offsets). Two safety rules sit on top of it: a line break always
ends a sentence, and a "sentence" longer than ``MAX_SENTENCE_CHARS`` (text with no full stops)
is cut at spaces into near-equal pieces, so a sentence is always a small unit to read or show.

The extractor scores each sentence against the question with two signals that depend only on
the question and that sentence, never on which other passages were retrieved, so a score means
the same in any passage or document and one threshold applies everywhere:

* the cosine between the packaged embedder's vectors of the question and the sentence
  (normalised vectors, clipped at 0), which catches paraphrase;
* the share of the question's content terms (stemmed, stopwords dropped) found in the sentence,
  which rewards the names, numbers and rare words a question is usually about.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Generic, TypeVar

import numpy as np
import sentencex
from bm25s.stopwords import STOPWORDS_EN_PLUS

from qa.lexical import tokenize

if TYPE_CHECKING:
    from qa.protocols import Encoder

#: Longest sentence kept whole, in characters; longer runs are cut at a space.
MAX_SENTENCE_CHARS = 500
#: Weight of the lexical overlap in a sentence score (the cosine gets the rest).
LEXICAL_WEIGHT = 0.4
#: Sentence vectors kept in memory (~1.5 KB each at 384 dimensions).
VECTOR_CACHE_SIZE = 50_000

_LINE_BREAK = re.compile(r"\n+")

V = TypeVar("V")


@dataclass(frozen=True)
class Sentence:
    """A sentence located in a text: ``text[start:end] == sentence.text``."""

    start: int
    end: int
    text: str


def split_sentences(text: str, *, max_chars: int = MAX_SENTENCE_CHARS) -> list[Sentence]:
    """Split ``text`` into sentences with exact offsets, whitespace trimmed at both ends.

    Args:
        text: Any text; the cleaned document text in the product.
        max_chars: Longest sentence; longer ones are cut at spaces into near-equal pieces
            (or hard where a run has no space).

    Returns:
        Non-empty sentences in text order; ``text[s.start:s.end] == s.text`` for each.
    """
    sentences: list[Sentence] = []
    for segment in sentencex.get_sentence_boundaries("en", text):
        seg_start = segment["start_index"]
        seg_end = segment["end_index"]
        line_start = seg_start
        for brk in _LINE_BREAK.finditer(text, seg_start, seg_end):
            sentences.extend(_trimmed_pieces(text, line_start, brk.start(), max_chars))
            line_start = brk.end()
        sentences.extend(_trimmed_pieces(text, line_start, seg_end, max_chars))
    return sentences


def _trimmed_pieces(text: str, start: int, end: int, max_chars: int) -> list[Sentence]:
    """The stripped ``text[start:end]``, cut into near-equal pieces of at most ``max_chars``."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    pieces = []
    while end - start > max_chars:
        # Aim at an even share of what is left, so no piece ends up a stub of a few words.
        share = -(-(end - start) // -(-(end - start) // max_chars))
        cut = text.rfind(" ", start + 1, start + share + 1)
        cut = cut if cut > start else start + share
        # A run of spaces before the cut belongs to neither piece.
        piece_end = cut
        while text[piece_end - 1].isspace():
            piece_end -= 1
        pieces.append(Sentence(start, piece_end, text[start:piece_end]))
        start = cut
        while start < end and text[start].isspace():
            start += 1
    if end > start:
        pieces.append(Sentence(start, end, text[start:end]))
    return pieces


@lru_cache(maxsize=2048)
def cached_sentences(text: str) -> tuple[Sentence, ...]:
    """``split_sentences(text)``, memoised: documents are split once, not once per question."""
    return tuple(split_sentences(text))


def content_terms(text: str) -> set[str]:
    """Stemmed words of ``text`` without English stopwords (the lexical unit of overlap)."""
    return set(_tokenize([text])[0])


def _tokenize(texts: list[str]) -> list[list[str]]:
    # BM25's tokeniser with bm25s's long English stop-word list, which also drops question
    # words and auxiliaries ("how", "had", "under"): in a share of the question's terms they
    # would only dilute it, where BM25's idf discounts them by itself.
    return tokenize(texts, stopwords=STOPWORDS_EN_PLUS)


class SentenceExtractor:
    """Scores sentences against a question; the fallback answers with the best of them.

    A score is ``(1 - w) * max(cosine, 0) + w * overlap`` with ``w = lexical_weight``, in
    [0, 1]. Sentence vectors are cached by sentence text, so the sentences of a document are
    embedded the first time a question reaches them and reused by every later question.

    Args:
        embedder: The packaged (or configured) sentence embedder, ``QA.embedder``.
        lexical_weight: Weight of the term overlap against the cosine.
        cache_size: Sentence vectors kept (least recently used ones are dropped first).
    """

    def __init__(
        self,
        embedder: Encoder,
        *,
        lexical_weight: float = LEXICAL_WEIGHT,
        cache_size: int = VECTOR_CACHE_SIZE,
    ) -> None:
        self.embedder = embedder
        self.lexical_weight = lexical_weight
        self._vectors: _LRU[np.ndarray] = _LRU(cache_size)
        self._terms: _LRU[set[str]] = _LRU(cache_size)

    def score(
        self,
        question: str,
        sentences: Sequence[str],
        vectors: Sequence[np.ndarray | None] | None = None,
    ) -> np.ndarray:
        """Score each sentence against ``question``.

        Args:
            question: The question.
            sentences: Sentence texts.
            vectors: Known unit vectors of the sentences (index-time vectors), aligned with
                ``sentences``; a None entry, or no list, is embedded here (and memoised).

        Returns:
            A float array aligned with ``sentences``, each value in [0, 1].
        """
        if not sentences:
            return np.zeros(0, dtype=np.float32)
        question_vector = self.embedder.encode_query(question)
        cosine = np.clip(self._sentence_vectors(sentences, vectors) @ question_vector, 0.0, 1.0)
        wanted = content_terms(question)
        overlap = np.zeros(len(sentences), dtype=np.float32)
        if wanted:
            for i, terms in enumerate(self._sentence_terms(sentences)):
                overlap[i] = len(wanted & terms) / len(wanted)
        w = self.lexical_weight
        return ((1.0 - w) * cosine + w * overlap).astype(np.float32)

    def _sentence_vectors(
        self, sentences: Sequence[str], known: Sequence[np.ndarray | None] | None
    ) -> np.ndarray:
        if known is not None and all(v is not None for v in known):
            return np.stack(known)  # type: ignore[arg-type]
        unknown = [s for k, s in enumerate(sentences) if known is None or known[k] is None]
        found = self._vectors.get_many(unknown)
        missing = [s for s in dict.fromkeys(unknown) if s not in found]
        if missing:
            fresh = dict(zip(missing, self.embedder.encode(missing), strict=True))
            self._vectors.put_many(fresh)
            found.update(fresh)
        return np.stack(
            [
                found[s] if known is None or (vector := known[k]) is None else vector
                for k, s in enumerate(sentences)
            ]
        )

    def _sentence_terms(self, sentences: Sequence[str]) -> list[set[str]]:
        found = self._terms.get_many(sentences)
        missing = [s for s in dict.fromkeys(sentences) if s not in found]
        if missing:
            fresh = dict(zip(missing, map(set, _tokenize(missing)), strict=True))
            self._terms.put_many(fresh)
            found.update(fresh)
        return [found[s] for s in sentences]


class _LRU(Generic[V]):
    """A thread-safe least-recently-used map from text to a computed value."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[str, V] = OrderedDict()
        self._lock = threading.Lock()

    def get_many(self, keys: Iterable[str]) -> dict[str, V]:
        with self._lock:
            found = {}
            for key in keys:
                if key in self._items:
                    self._items.move_to_end(key)
                    found[key] = self._items[key]
            return found

    def put_many(self, items: dict[str, V]) -> None:
        with self._lock:
            self._items.update(items)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
