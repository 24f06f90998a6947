"""BM25 over chunks (bm25s), with English stopwords and Snowball stemming.

bm25s scores the corpus at index time (its "eager" scoring) and retrieves from a sparse matrix
of those scores. Two things here make rebuilding that matrix cheap enough to do on every update:

* each chunk's token ids are saved with the index, so an update tokenises only new chunks
  (tokenising and stemming all 13,239 BBC chunks takes ~1.3 s);
* ``_VectorisedBM25`` overrides bm25s's documented extension point ``build_index_from_ids``
  with a vectorised version of the same computation (term counts with ``np.unique`` instead of
  a ``Counter`` per chunk): ~0.1 s instead of ~0.9 s on the BBC chunks. It scores with the one
  BM25 variant the index uses, bm25s's default "lucene" (:func:`lucene_idf`,
  :func:`lucene_tf`), written here from the formulas; any other variant is left to bm25s's own
  build. A test checks its scores equal bm25s's own build.

A shard of a sharded index (``qa.scale``) scores with the whole corpus's statistics instead of
its own matrix: ``TermStatistics`` gathered from every shard for the question's terms, and
``LexicalIndex.search_global`` computing BM25 for those terms from the saved token ids with the
same formulas, the same scores one index over every shard gives (tested against it).
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import Stemmer

if TYPE_CHECKING:
    import scipy.sparse as sp


@contextmanager
def _scipy_unseen() -> Iterator[None]:
    """Within: ``import scipy`` fails, unless scipy is loaded already.

    bm25s imports scipy.sparse whenever it can, for a CSC build backend this module does not use
    (``_VectorisedBM25`` builds its matrix itself; bm25s's own build falls back to its numpy
    backend, the same arrays). Importing scipy.sparse took 0.2 s of the 1.2 s a cold
    ``qa search`` takes on 2 cores (scipy 1.17 imports numpy's f2py and testing modules with
    it), and answering a question never needs it: so bm25s is imported with scipy unseen, and
    this module imports scipy.sparse where it builds. Only an import already under way on
    another thread at that moment could see scipy missing; nothing the product imports beside
    it (onnxruntime, tokenizers, faiss) imports scipy.
    """
    if "scipy" in sys.modules:
        yield
        return
    sys.modules["scipy"] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        if sys.modules.get("scipy", False) is None:
            del sys.modules["scipy"]


with _scipy_unseen():
    import bm25s
# After bm25s (imported above, scipy unseen); the longer list is for qa.reading.sentences.
from bm25s.stopwords import STOPWORDS_EN, STOPWORDS_EN_PLUS  # noqa: E402, F401

# bm25s sets its own logger to DEBUG on import, which prints a line on every index build.
logging.getLogger("bm25s").setLevel(logging.WARNING)

_STEMMER = Stemmer.Stemmer("english")
#: BM25's stop words: bm25s's short English list (33 words; idf discounts the other common
#: words). Saved indexes hold tokens made with it, so changing it means rebuilding them.
BM25_STOPWORDS: tuple[str, ...] = STOPWORDS_EN
TOKEN_IDS_FILE = "token_ids.npy"
TOKEN_OFFSETS_FILE = "token_offsets.npy"
#: The chunk rows of the BM25 documents, saved when some rows are masked (``LexicalIndex.rows``).
ROWS_FILE = "rows.npy"


def tokenize(texts: list[str], stopwords: Sequence[str] = BM25_STOPWORDS) -> list[list[str]]:
    """Lowercase, split into words, drop ``stopwords``, Snowball-stem (English).

    With the default stop words these are BM25's terms, the same for chunks and queries; the
    sentence scorer passes a longer list for its content terms (see ``qa.reading.sentences``).
    """
    return bm25s.tokenize(
        texts, stopwords=stopwords, stemmer=_STEMMER, return_ids=False, show_progress=False
    )


def lucene_idf(doc_freq: np.ndarray, n_docs: int, dtype: str) -> np.ndarray:
    """Lucene's inverse document frequency of each word, ``log(1 + (N - df + 0.5) / (df + 0.5))``
    for ``N`` chunks of which ``df`` hold the word; 0 for a word no chunk holds.

    Computed per word in double precision, as bm25s does, so the rounding to ``dtype`` matches.
    """
    return np.array(
        [math.log(1 + (n_docs - df + 0.5) / (df + 0.5)) if df else 0.0 for df in doc_freq.tolist()],
        dtype=dtype,
    )


def lucene_tf(
    tf: np.ndarray, lengths: np.ndarray, avg_length: float, k1: float, b: float
) -> np.ndarray:
    """Lucene's term-frequency part, ``tf / (k1 * (1 - b + b * |d| / avgdl) + tf)``, for a word
    seen ``tf`` times in a chunk of ``|d|`` tokens (``avgdl``: the mean over chunks).

    Lucene leaves out Robertson's constant factor ``k1 + 1``: the ranking is the same.
    """
    return tf / (k1 * ((1 - b) + b * lengths / avg_length) + tf)


@dataclass(frozen=True)
class TermStatistics:
    """What BM25 needs to know of a corpus to score some terms.

    A sharded index sums its shards' statistics for a question's terms
    (:meth:`TermStatistics.total`) and every shard scores its chunks with the sum
    (:meth:`LexicalIndex.search_global`), so the shards give the scores one index over the
    whole corpus would: Elasticsearch's ``dfs_query_then_fetch``. Gathered at query time, so an
    update still rewrites only the shards whose documents changed.

    Attributes:
        chunks: How many chunks (BM25's documents).
        tokens: Their tokens in all (the mean chunk length is ``tokens / chunks``).
        frequencies: Per term, how many chunks hold it (terms no chunk holds may be absent).
    """

    chunks: int = 0
    tokens: int = 0
    frequencies: dict[str, int] = field(default_factory=dict)

    @classmethod
    def total(cls, parts: Iterable[TermStatistics]) -> TermStatistics:
        """The statistics of the corpus whose disjoint parts have the statistics ``parts``."""
        chunks = tokens = 0
        frequencies: dict[str, int] = {}
        for part in parts:
            chunks += part.chunks
            tokens += part.tokens
            for term, count in part.frequencies.items():
                frequencies[term] = frequencies.get(term, 0) + count
        return cls(chunks, tokens, frequencies)


@dataclass(frozen=True)
class _Postings:
    """Each term's chunks and how often it occurs in each (a CSC matrix, chunks by term ids),
    and each chunk's length in tokens: what BM25 needs besides the corpus statistics."""

    counts: sp.csc_matrix
    lengths: np.ndarray


class _FlatIds(Sequence[np.ndarray]):
    """Every BM25 document's token ids as one array: document i is
    ``flat[offsets[i]:offsets[i + 1]]`` (what ``_VectorisedBM25`` builds from without a list of
    arrays)."""

    def __init__(self, flat: np.ndarray, offsets: np.ndarray) -> None:
        self.flat = flat
        self.offsets = offsets

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> np.ndarray:  # type: ignore[override]  # no slices
        return self.flat[self.offsets[i] : self.offsets[i + 1]]


@dataclass(frozen=True)
class _Corpus:
    """A corpus as bm25s's ``index`` takes one: token ids per document, and the vocabulary."""

    ids: _FlatIds
    vocab: dict[str, int]


class _VectorisedBM25(bm25s.BM25):
    """bm25s.BM25 whose index build runs in numpy (same scores; see the module docstring)."""

    def build_index_from_ids(
        self,
        unique_token_ids: list[int],
        corpus_token_ids: Sequence[Sequence[int]],
        show_progress: bool = True,
        leave_progress: bool = False,
    ) -> dict[str, object]:
        # Another variant (BM25L and BM25+ need bm25s's non-occurrence scores too) is bm25s's.
        if (self.method, self.idf_method) != ("lucene", "lucene"):
            return super().build_index_from_ids(
                unique_token_ids, corpus_token_ids, show_progress, leave_progress
            )
        self.nonoccurrence_array = None
        # Either csc backend of bm25s yields the same CSC arrays that scipy builds here.
        n_docs, n_vocab = len(corpus_token_ids), len(unique_token_ids)
        if isinstance(corpus_token_ids, _FlatIds):
            lengths = np.diff(corpus_token_ids.offsets)
            flat = corpus_token_ids.flat.astype(np.int64, copy=False)
        else:
            lengths = np.fromiter((len(d) for d in corpus_token_ids), np.int64, n_docs)
            flat = (
                np.concatenate([np.asarray(d, np.int64) for d in corpus_token_ids])
                if lengths.sum()
                else np.zeros(0, np.int64)
            )
        pairs, tf = np.unique(
            np.repeat(np.arange(n_docs, dtype=np.int64), lengths) * n_vocab + flat,
            return_counts=True,
        )
        doc_idx, vocab_idx = pairs // n_vocab, pairs % n_vocab
        doc_freq = np.bincount(vocab_idx, minlength=n_vocab)
        idf = lucene_idf(doc_freq, n_docs, self.dtype)
        tfc = lucene_tf(
            tf.astype(self.dtype),
            lengths[doc_idx],
            lengths.mean() if n_docs else 0.0,
            k1=self.k1,
            b=self.b,
        )
        import scipy.sparse as sp

        matrix = sp.csc_matrix(
            ((idf[vocab_idx] * tfc).astype(self.dtype), (doc_idx, vocab_idx)),
            shape=(n_docs, n_vocab),
            dtype=self.dtype,
        )
        return {
            "data": matrix.data,
            "indices": matrix.indices,
            "indptr": matrix.indptr,
            "num_docs": n_docs,
        }


class LexicalIndex:
    """A BM25 index whose document ids are positions in the chunk table.

    Keeps each chunk's token ids (``token_ids[token_offsets[i]:token_offsets[i + 1]]``, ids of
    the retriever's vocabulary) so the next build can reuse them.
    """

    def __init__(
        self,
        retriever: bm25s.BM25,
        size: int,
        token_ids: np.ndarray | None = None,
        token_offsets: np.ndarray | None = None,
        rows: np.ndarray | None = None,
    ) -> None:
        self._retriever = retriever
        self.size = size
        self.token_ids = token_ids
        self.token_offsets = token_offsets
        #: The chunk rows bm25s's documents stand for, when some rows are masked (None: all
        #: rows, document i is row i).
        self.rows = rows

    @classmethod
    def build(
        cls,
        texts: Sequence[str | None],
        previous: LexicalIndex | None = None,
        previous_rows: Sequence[int] | None = None,
    ) -> LexicalIndex:
        """Index ``texts``; where ``previous_rows[i] >= 0``, chunk i's tokens are those of that
        row of ``previous`` (its text unchanged), so only the others are tokenised.

        A ``None`` text is a masked row (its chunk removed by an update in place): it keeps its
        row number but is no BM25 document, so idf and the mean length are those of the live
        chunks alone, as a full rebuild of them has it.
        """
        n = len(texts)
        prev_ids = previous.token_ids if previous is not None else None
        prev_offsets = previous.token_offsets if previous is not None else None
        live = np.fromiter((t is not None for t in texts), bool, n)
        reuse = np.zeros(n, bool)
        if previous_rows is not None and prev_ids is not None and prev_offsets is not None:
            source = np.asarray(previous_rows, np.int64)
            reuse = live & (source >= 0)
        vocab = previous.vocabulary if previous is not None else {}
        fresh = np.flatnonzero(live & ~reuse)
        fresh_ids = [
            np.fromiter((vocab.setdefault(t, len(vocab)) for t in tokens), np.int64)
            for tokens in tokenize([texts[int(i)] or "" for i in fresh])
        ]
        lengths = np.zeros(n, np.int64)
        lengths[fresh] = [len(ids) for ids in fresh_ids]
        if reuse.any():
            assert prev_ids is not None and prev_offsets is not None
            from_rows = source[reuse]
            starts = prev_offsets[from_rows]
            counts = prev_offsets[from_rows + 1] - starts
            lengths[reuse] = counts
        offsets = np.zeros(n + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        flat = np.empty(int(offsets[-1]), np.int64)
        if reuse.any():
            assert prev_ids is not None
            # Every reused chunk's ids copied at once: position k of chunk i's ids comes from
            # position k of its previous row's.
            within = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
            flat[np.repeat(offsets[:-1][reuse], counts) + within] = np.asarray(prev_ids)[
                np.repeat(starts, counts) + within
            ]
        for i, ids in zip(fresh, fresh_ids, strict=True):
            flat[offsets[i] : offsets[i + 1]] = ids
        # Keep only the words some chunk still has, numbered densely in their old order.
        present = np.bincount(flat, minlength=len(vocab)) > 0
        flat = (np.cumsum(present) - 1)[flat]
        words = {i: t for t, i in vocab.items()}
        compact = {words[int(i)]: k for k, i in enumerate(np.flatnonzero(present))}
        retriever = _VectorisedBM25()
        rows = np.flatnonzero(live)
        # bm25s cannot index an empty corpus; an empty index simply never matches.
        if len(rows):
            live_offsets = np.zeros(len(rows) + 1, np.int64)
            np.cumsum(lengths[rows], out=live_offsets[1:])
            # Masked rows hold no tokens, so the live chunks' ids are ``flat`` as it is.
            retriever.index(
                _Corpus(_FlatIds(flat, live_offsets), compact),
                create_empty_token=bool(compact),
                show_progress=False,
            )
        return cls(retriever, n, flat.astype(np.int32), offsets, rows if len(rows) < n else None)

    @property
    def vocabulary(self) -> dict[str, int]:
        return dict(getattr(self._retriever, "vocab_dict", {}) or {})

    def search(
        self, query: str, k: int, allowed: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """Return up to ``k`` ``(chunk_position, bm25_score)`` pairs with a positive score.

        Args:
            query: The question or keywords.
            k: How many at most.
            allowed: If given, a boolean per chunk: only those marked are returned, the best
                ``k`` of them (bm25s's ``weight_mask`` zeroes the others' scores before the
                top ``k`` is taken).
        """
        documents = self._documents()
        if documents == 0 or not getattr(self._retriever, "vocab_dict", None):
            return []
        tokens = tokenize([query])
        if not tokens[0]:
            return []
        if allowed is not None and self.rows is not None:
            allowed = allowed[self.rows]
        mask = None if allowed is None else allowed.astype(np.float32)
        ids, scores = self._retriever.retrieve(
            tokens, k=min(k, documents), show_progress=False, n_threads=1, weight_mask=mask
        )
        rows = ids[0] if self.rows is None else self.rows[ids[0]]
        return [(int(i), float(s)) for i, s in zip(rows, scores[0], strict=True) if s > 0]

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every chunk for ``query`` (zeros where nothing matches, and on masked
        rows)."""
        tokens = tokenize([query])
        out = np.zeros(self.size, dtype=np.float32)
        if self._documents() and tokens[0] and getattr(self._retriever, "vocab_dict", None):
            found = np.asarray(self._retriever.get_scores(tokens[0]), dtype=np.float32)
            if self.rows is None:
                out[:] = found
            else:
                out[self.rows] = found
        return out

    def _documents(self) -> int:
        """How many BM25 documents: the rows not masked."""
        return self.size if self.rows is None else len(self.rows)

    def statistics(self, terms: Iterable[str]) -> TermStatistics:
        """This index's part of the corpus statistics of ``terms`` (BM25 terms, as
        :func:`tokenize` makes them): its chunks, their tokens, and how many hold each term."""
        if self.size == 0:
            return TermStatistics()
        postings = self._postings
        vocab = self._vocab
        frequencies = {}
        for term in set(terms):
            column = vocab.get(term, -1)
            if 0 <= column < postings.counts.shape[1]:
                indptr = postings.counts.indptr
                frequencies[term] = int(indptr[column + 1] - indptr[column])
        # Masked rows (an update in place's) are no BM25 documents and hold no tokens.
        return TermStatistics(self._documents(), int(postings.lengths.sum()), frequencies)

    def global_scores(self, query: str, statistics: TermStatistics) -> np.ndarray:
        """BM25 score of every chunk for ``query`` under ``statistics``, those of a corpus this
        index is a part of (zeros where nothing matches).

        The chunks get the scores that one index over the whole corpus gives them: Lucene's
        formulas (:func:`lucene_idf`, :func:`lucene_tf`), each term's idf from the corpus's
        chunk count and its frequency there, each chunk's length against the corpus's mean
        length, the terms' scores summed in float32 in the question's order as bm25s sums
        them. Computed at query time over the chunks that hold the question's terms (their
        counts kept by ``_postings``).
        """
        scores = np.zeros(self.size, dtype=np.float32)
        vocab = self._vocab
        if self.size == 0 or not vocab:
            return scores
        bm25 = self._retriever
        if (bm25.method, bm25.idf_method) != ("lucene", "lucene"):
            raise ValueError(f"global BM25 statistics are not built for method {bm25.method}")
        counts, lengths = self._postings.counts, self._postings.lengths
        for term in tokenize([query])[0]:
            column = vocab.get(term, -1)
            if not 0 <= column < counts.shape[1]:
                continue
            start, end = counts.indptr[column], counts.indptr[column + 1]
            rows = counts.indices[start:end]
            # A build swapped in between gathering and scoring may hold a term the statistics
            # lack: this index's own frequency then stands in for that question.
            frequency = statistics.frequencies.get(term) or int(end - start)
            # The formulas the build uses (_VectorisedBM25.build_index_from_ids).
            idf = lucene_idf(np.array([frequency]), statistics.chunks, bm25.dtype)[0]
            tfc = lucene_tf(
                counts.data[start:end].astype(bm25.dtype),
                lengths[rows],
                statistics.tokens / statistics.chunks,
                k1=bm25.k1,
                b=bm25.b,
            )
            scores[rows] += (idf * tfc).astype(np.float32)
        return scores

    def search_global(
        self,
        query: str,
        k: int,
        statistics: TermStatistics,
        allowed: np.ndarray | None = None,
    ) -> list[tuple[int, float]]:
        """As :meth:`search`, scored by :meth:`global_scores` under the corpus's
        ``statistics``; equal scores rank by position."""
        scores = self.global_scores(query, statistics)
        if allowed is not None:
            scores *= allowed
        found = np.flatnonzero(scores > 0)
        best = found[np.lexsort((found, -scores[found]))[:k]]
        return [(int(i), float(scores[i])) for i in best]

    @property
    def _vocab(self) -> dict[str, int]:
        return getattr(self._retriever, "vocab_dict", None) or {}

    @cached_property
    def _postings(self) -> _Postings:
        """The term counts of every chunk, from the saved token ids (built on first use)."""
        if self.token_ids is None or self.token_offsets is None:
            raise ValueError("this BM25 index keeps no token ids: rebuild it to score globally")
        ids = np.asarray(self.token_ids, dtype=np.int64)
        lengths = np.diff(self.token_offsets).astype(np.int64)
        rows = np.repeat(np.arange(self.size, dtype=np.int64), lengths)
        columns = int(ids.max()) + 1 if len(ids) else 0
        import scipy.sparse as sp

        # The COO to CSC conversion adds up the repeated (chunk, term) pairs: the counts.
        counts = sp.csc_matrix(
            (np.ones(len(ids), dtype=np.uint16), (rows, ids)), shape=(self.size, columns)
        )
        return _Postings(counts, lengths)

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        if self._documents():
            self._retriever.save(str(directory), show_progress=False)
        if self.token_ids is not None and self.token_offsets is not None:
            np.save(directory / TOKEN_IDS_FILE, self.token_ids)
            np.save(directory / TOKEN_OFFSETS_FILE, self.token_offsets)
        if self.rows is not None:
            np.save(directory / ROWS_FILE, self.rows)

    @classmethod
    def load(cls, directory: Path, size: int) -> LexicalIndex:
        token_ids = token_offsets = rows = None
        if (directory / TOKEN_OFFSETS_FILE).exists():
            token_ids = np.load(directory / TOKEN_IDS_FILE, mmap_mode="r")
            token_offsets = np.load(directory / TOKEN_OFFSETS_FILE)
        if (directory / ROWS_FILE).exists():
            rows = np.load(directory / ROWS_FILE)
        if size == 0 or (rows is not None and len(rows) == 0):
            return cls(bm25s.BM25(), size, token_ids, token_offsets, rows)
        # The score matrix is memory-mapped (see ``qa.indexing.persist``).
        retriever = bm25s.BM25.load(str(directory), mmap=True, show_progress=False, verbosity=0)
        return cls(retriever, size, token_ids, token_offsets, rows)
