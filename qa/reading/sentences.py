"""The sentence extractor that answers without a reader, and scores sentences for the reader.

Sentences come from :func:`qa.text.split_sentences` (exact offsets; both roads split the same
way: indexing stores their vectors, reading scores them).

The extractor scores each sentence against the question with two signals that depend only on
the question and that sentence, never on which other passages were retrieved, so a score means
the same in any passage or document and one threshold applies everywhere:

* the cosine between the packaged embedder's vectors of the question and the sentence
  (normalised vectors, clipped at 0), which catches paraphrase;
* the share of the question's content terms (stemmed, stopwords dropped) found in the sentence,
  which rewards the names, numbers and rare words a question is usually about.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Generic, TypeVar

import numpy as np

from qa.lexical import STOPWORDS_EN_PLUS, tokenize
from qa.text import (  # noqa: F401 - re-exported: sentences are read here
    MAX_SENTENCE_CHARS,
    Sentence,
    cached_sentences,
    split_sentences,
)

if TYPE_CHECKING:
    from qa.protocols import Encoder

#: Weight of the lexical overlap in a sentence score (the cosine gets the rest).
LEXICAL_WEIGHT = 0.4
#: Sentence vectors kept in memory (~1.5 KB each at 384 dimensions).
VECTOR_CACHE_SIZE = 50_000

V = TypeVar("V")


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
