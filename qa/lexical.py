"""BM25 over chunks: English stop words and Snowball stemming (bm25s's tokenizer), Lucene's
scoring at question time from postings, and updates that append.

``LexicalIndex`` keeps per term the chunks holding it and how often (``Postings``), each
chunk's length, and which rows are masked; a question's terms are scored with Lucene's
formulas under the statistics of the live chunks (how many, their mean length, how many hold
the term), the same numbers bm25s's eager index stores, to the bit (tested against bm25s). An
update in place appends its chunks' term ids to the saved ones and makes postings for the rows
added since the last merge only, so its cost follows the update, not the corpus.

A shard of a sharded index (``qa.scale``) scores with the whole corpus's statistics instead of
its own: ``TermStatistics`` gathered from every shard for the question's terms, and
``LexicalIndex.search_global`` computing BM25 for those terms under them, the same scores one
index over every shard gives (tested against it).
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import Stemmer

from qa.appending import link_and_append, link_files


@contextmanager
def _scipy_unseen() -> Iterator[None]:
    """Within: ``import scipy`` fails, unless scipy is loaded already.

    bm25s imports scipy.sparse whenever it can, for a build backend this module does not use
    (only bm25s's tokenizer is used here). Importing scipy.sparse took 0.2 s of the 1.2 s a cold
    ``qa search`` takes on 2 cores (scipy 1.17 imports numpy's f2py and testing modules with
    it), and answering a question never needs it: so bm25s is imported with scipy unseen. Only
    an import already under way on another thread at that moment could see scipy missing;
    nothing the product imports beside it (onnxruntime, tokenizers, faiss) imports scipy.
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
#: BM25's parameters: bm25s's defaults, with its "lucene" variant (idf and term frequency).
K1, B = 1.5, 0.75
SCORE_DTYPE = "float32"

# Files of a BM25 folder (``LexicalIndex.save``).
META_FILE = "bm25.json"
#: One term per line; line i is the term numbered i.
TERMS_FILE = "terms.txt"
#: Every chunk's term ids, raw int32, chunk after chunk (appended to by updates in place).
TOKENS_FILE = "token_ids.i32"
TOKEN_OFFSETS_FILE = "token_offsets.npy"
MASKED_ROWS_FILE = "masked.npy"
POSTINGS_FILES = ("postings_indptr.npy", "postings_rows.npy", "postings_counts.npy")
# What builds written before index format 5 hold instead: bm25s's own index (its vocabulary
# file read here), the token ids as one .npy, and the rows not masked.
LEGACY_VOCAB_FILE = "vocab.index.json"
LEGACY_TOKEN_IDS_FILE = "token_ids.npy"
LEGACY_ROWS_FILE = "rows.npy"


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
class Postings:
    """Per term id ``t``, the rows holding the term, ascending, and how often each holds it:
    ``rows[indptr[t]:indptr[t + 1]]`` and ``counts[...]`` (a CSC matrix, rows by terms)."""

    indptr: np.ndarray
    rows: np.ndarray
    counts: np.ndarray

    @classmethod
    def of(cls, ids: np.ndarray, lengths: np.ndarray, first: int, terms: int) -> Postings:
        """The postings of rows ``first, first + 1, ...`` holding ``lengths[i]`` term ids each,
        one row after another in ``ids``, over a vocabulary of ``terms`` terms."""
        n = max(len(lengths), 1)
        local = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
        pairs, counts = np.unique(np.asarray(ids, np.int64) * n + local, return_counts=True)
        indptr = np.zeros(terms + 1, np.int64)
        np.cumsum(np.bincount(pairs // n, minlength=terms), out=indptr[1:])
        rows = (pairs % n + first).astype(np.int32)
        # A term counted past 65,535 times in one chunk of a few hundred tokens cannot happen.
        return cls(indptr, rows, np.minimum(counts, np.iinfo(np.uint16).max).astype(np.uint16))

    def of_term(self, term: int) -> tuple[np.ndarray, np.ndarray]:
        """The rows holding term id ``term`` and its count in each (empty for an id this
        vocabulary did not have yet)."""
        if term + 1 >= len(self.indptr):
            return self.rows[:0], self.counts[:0]
        start, end = int(self.indptr[term]), int(self.indptr[term + 1])
        return self.rows[start:end], self.counts[start:end]

    def save(self, directory: Path) -> None:
        for name, array in zip(POSTINGS_FILES, (self.indptr, self.rows, self.counts), strict=True):
            np.save(directory / name, array)

    @classmethod
    def load(cls, directory: Path) -> Postings:
        # Mapped, but held as plain arrays: slices of a ``np.memmap`` run its Python hooks,
        # a few microseconds on each of a question's terms.
        return cls(
            *(np.load(directory / name, mmap_mode="r").view(np.ndarray) for name in POSTINGS_FILES)
        )


class _Ids:
    """Every chunk's term ids, one chunk after another, kept as the parts they came in (the
    saved ones, memory-mapped, then those of each update in place) so that an update copies
    none of the earlier ones."""

    MAX_PARTS = 32

    def __init__(self, parts: list[np.ndarray]) -> None:
        parts = [p for p in parts if len(p)]
        if len(parts) > self.MAX_PARTS:
            # A long-running server's many updates: join theirs (the first part, the saved
            # ids, mapped, stays as it is).
            parts = [parts[0], np.concatenate(parts[1:])]
        self.parts = parts
        self.starts = np.cumsum([0, *(len(p) for p in parts)])

    def __len__(self) -> int:
        return int(self.starts[-1])

    def slice(self, start: int, end: int) -> np.ndarray:
        """Ids ``start`` to ``end`` (as one array)."""
        pieces = [
            part[max(start - at, 0) : end - at]
            for part, at in zip(self.parts, self.starts[:-1].tolist(), strict=True)
            if at < end and at + len(part) > start
        ]
        if len(pieces) == 1:
            return pieces[0]
        return np.concatenate(pieces) if pieces else np.zeros(0, np.int32)

    def plus(self, more: np.ndarray) -> _Ids:
        return _Ids([*self.parts, more])


@dataclass(frozen=True)
class _Shared:
    """What of a grown index is the index it grew from: that index's term ids and terms, the
    first of this one's (so its saved files are appended to), and whether the postings of the
    rows before the tail are that index's own (so they are linked, not written)."""

    tokens: int
    terms: int
    terms_bytes: int
    postings: bool


class LexicalIndex:
    """A BM25 index whose document ids are positions in the chunk table.

    Scores are computed at question time from postings (per term, the chunks holding it and
    how often) and the live corpus's statistics, as Lucene does, rather than read from a
    matrix of scores made at build time (bm25s's "eager" index, which this index used until
    index format 5): every score of an eager matrix depends on the number of chunks, their
    mean length and each term's frequency, so adding one chunk changed them all and every
    update made the matrix again (~0.07 s at 13,000 chunks, ~10 s at 10^6). Here an update in
    place appends its chunks' term ids and new terms to the saved files and makes postings of
    the rows added since the last merge only (the tail); the postings before it are the live
    build's files, linked. A removed chunk is masked: left out of every statistic and never
    scored, as a full rebuild without it would have it. The scores are bm25s's, to the last
    bit (same formulas, same rounding, terms added in the question's order: tested against
    bm25s's own index).

    Keeps each chunk's token ids (``token_ids[token_offsets[i]:token_offsets[i + 1]]``) so the
    next build can reuse them.
    """

    def __init__(
        self,
        size: int,
        terms: list[str],
        ids: _Ids,
        token_offsets: np.ndarray,
        masked: np.ndarray,
        base: Postings | None,
        base_rows: int,
        shared: _Shared | None = None,
    ) -> None:
        self.size = size
        self._terms = terms
        self._ids = ids
        self.token_offsets = token_offsets
        #: The masked rows, ascending: chunks an update in place took out.
        self.masked = masked
        self._base = base
        #: The rows the base postings hold; those after them are the tail's.
        self.base_rows = base_rows
        self._shared = shared

    # -- building -----------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        texts: Sequence[str | None],
        previous: LexicalIndex | None = None,
        previous_rows: Sequence[int] | np.ndarray | None = None,
        tail_bound: Callable[[int], int] | None = None,
    ) -> LexicalIndex:
        """Index ``texts``; where ``previous_rows[i] >= 0``, chunk i's tokens are those of that
        row of ``previous`` (its text unchanged), so only the others are tokenised.

        A ``None`` text is a masked row (its chunk removed by an update in place): it keeps its
        row number but is no BM25 document, so idf and the mean length are those of the live
        chunks alone, as a full rebuild of them has it.

        Where the texts are ``previous``'s rows as they were (or masked) followed by new ones,
        the index grows in place: the new rows go to a tail, merged with the rows before it
        once the tail holds more than ``tail_bound(rows before it)`` rows (without a
        ``tail_bound``: at once).
        """
        n = len(texts)
        # One walk over the texts for the masked rows, whichever way the index is made.
        none = np.fromiter((t is None for t in texts), bool, n)
        if (
            previous is not None
            and previous_rows is not None
            and _grows(none, previous.size, previous_rows)
        ):
            return previous.grow(texts[previous.size :], none, tail_bound)
        prev_ids = previous.token_ids if previous is not None else None
        prev_offsets = previous.token_offsets if previous is not None else None
        live = ~none
        reuse = np.zeros(n, bool)
        if previous_rows is not None and prev_ids is not None and prev_offsets is not None:
            source = np.asarray(previous_rows, np.int64)
            reuse = live & (source >= 0)
        vocab = previous.vocabulary if previous is not None else {}
        fresh = np.flatnonzero(live & ~reuse)
        fresh_ids = _term_ids(vocab, [texts[int(i)] or "" for i in fresh])
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
        terms = [words[int(i)] for i in np.flatnonzero(present)]
        base = Postings.of(flat, lengths, 0, len(terms))
        return cls(n, terms, _Ids([flat.astype(np.int32)]), offsets, np.flatnonzero(~live), base, n)

    def grow(
        self,
        fresh: Sequence[str | None],
        none: np.ndarray,
        tail_bound: Callable[[int], int] | None,
    ) -> LexicalIndex:
        """This index with ``fresh`` appended and masked where ``none`` (every row, new ones
        included) is true: what :meth:`build` makes of this index's rows as they were (or
        masked) followed by ``fresh``, for a caller that knows the masked rows without a walk
        of every text."""
        vocab = dict(self._vocab)
        fresh_ids = _term_ids(vocab, [t or "" for t in fresh])
        # Terms are numbered in the order they came: the new ones follow the old ones.
        new_terms = list(itertools.islice(vocab, len(self._terms), None))
        terms = self._terms + new_terms
        lengths = np.fromiter((len(i) for i in fresh_ids), np.int64, len(fresh_ids))
        offsets = np.concatenate([self.token_offsets, self.token_offsets[-1] + np.cumsum(lengths)])
        added = (
            np.concatenate(fresh_ids).astype(np.int32) if len(fresh_ids) else np.zeros(0, np.int32)
        )
        ids = self._ids.plus(added)
        n = len(none)
        masked = np.union1d(self.masked, np.flatnonzero(none))
        base, base_rows = self._base_postings, self.base_rows
        if tail_bound is None or n - base_rows > tail_bound(base_rows):
            base, base_rows = (
                Postings.of(ids.slice(0, len(ids)), np.diff(offsets), 0, len(terms)),
                n,
            )
        shared = _Shared(
            len(self._ids),
            len(self._terms),
            self._terms_bytes,
            postings=base is self._base_postings and self._base is not None,
        )
        grown = LexicalIndex(n, terms, ids, offsets, masked, base, base_rows, shared)
        grown.__dict__["_vocab"] = vocab
        grown.__dict__["_terms_bytes"] = self._terms_bytes + sum(
            len(t.encode()) + 1 for t in new_terms
        )
        return grown

    # -- statistics and scores ----------------------------------------------------------

    @property
    def vocabulary(self) -> dict[str, int]:
        return dict(self._vocab)

    @property
    def token_ids(self) -> np.ndarray:
        """Every chunk's term ids, one chunk after another (one array)."""
        return self._ids.slice(0, len(self._ids))

    @property
    def rows(self) -> np.ndarray | None:
        """The rows not masked (None where none is)."""
        if not len(self.masked):
            return None
        return np.setdiff1d(np.arange(self.size), self.masked)

    @cached_property
    def _vocab(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self._terms)}

    @cached_property
    def _terms_bytes(self) -> int:
        return sum(len(t.encode()) + 1 for t in self._terms)

    @cached_property
    def _lengths(self) -> np.ndarray:
        return np.diff(self.token_offsets)

    @cached_property
    def _live(self) -> np.ndarray | None:
        if not len(self.masked):
            return None
        live = np.ones(self.size, bool)
        live[self.masked] = False
        return live

    @cached_property
    def _corpus(self) -> tuple[int, int]:
        """The live chunks: how many, and their tokens in all."""
        tokens = int(self.token_offsets[-1] - self.token_offsets[0])
        if len(self.masked):
            tokens -= int(self._lengths[self.masked].sum())
        return self.size - len(self.masked), tokens

    @cached_property
    def _base_postings(self) -> Postings:
        if self._base is not None:
            return self._base
        # An index saved before format 5: its postings are made from its token ids once.
        end = int(self.token_offsets[self.base_rows])
        return Postings.of(
            self._ids.slice(0, end), self._lengths[: self.base_rows], 0, len(self._terms)
        )

    @cached_property
    def _tail(self) -> Postings:
        start, end = int(self.token_offsets[self.base_rows]), int(self.token_offsets[-1])
        return Postings.of(
            self._ids.slice(start, end),
            self._lengths[self.base_rows :],
            self.base_rows,
            len(self._terms),
        )

    def _postings(self, term: str) -> tuple[np.ndarray, np.ndarray]:
        """The live rows holding ``term`` and its count in each."""
        column = self._vocab.get(term)
        if column is None:
            return np.zeros(0, np.int32), np.zeros(0, np.uint16)
        rows, counts = self._base_postings.of_term(column)
        if self.base_rows < self.size:
            more_rows, more_counts = self._tail.of_term(column)
            if len(more_rows):
                rows, counts = (
                    np.concatenate([rows, more_rows]),
                    np.concatenate([counts, more_counts]),
                )
        live = self._live
        if live is not None and len(rows):
            keep = live[rows]
            rows, counts = rows[keep], counts[keep]
        return rows, counts

    def _score(
        self, query: str, chunks: int, tokens: int, frequencies: dict[str, int] | None = None
    ) -> np.ndarray:
        """BM25 score of every row for ``query`` in a corpus of ``chunks`` chunks holding
        ``tokens`` tokens, each term's frequency that of ``frequencies`` (else this index's).

        Lucene's formulas (:func:`lucene_idf`, :func:`lucene_tf`) rounded as bm25s rounds its
        stored scores (each term's score of a chunk made in double precision, kept in
        float32), the terms' scores added in float32 in the question's order (bm25s's
        ``np.add.at`` over the question's terms). Every term's postings are scored in one pass
        of numpy: ``np.add.at`` adds a row's scores in the order they come, term after term.
        """
        scores = np.zeros(self.size, dtype=np.float32)
        if not chunks or not self._terms:
            return scores
        found = [(term, *self._postings(term)) for term in tokenize([query])[0]]
        found = [hit for hit in found if len(hit[1])]
        if not found:
            return scores
        # A build swapped in between gathering and scoring may hold a term the statistics
        # lack: this index's own frequency then stands in for that question.
        given = frequencies or {}
        sizes = np.array([len(rows) for _, rows, _ in found])
        idf = lucene_idf(
            np.array([given.get(term) or len(rows) for term, rows, _ in found]),
            chunks,
            SCORE_DTYPE,
        )
        rows = np.concatenate([rows for _, rows, _ in found])
        counts = np.concatenate([counts for _, _, counts in found]).astype(SCORE_DTYPE)
        tf = lucene_tf(counts, self._lengths[rows], tokens / chunks, K1, B)
        np.add.at(scores, rows, (np.repeat(idf, sizes) * tf).astype(np.float32))
        return scores

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every chunk for ``query`` (zeros where nothing matches, and on masked
        rows)."""
        return self._score(query, *self._corpus)

    def search(
        self, query: str, k: int, allowed: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """Return up to ``k`` ``(chunk_position, bm25_score)`` pairs with a positive score,
        best first (equal scores by position).

        Args:
            query: The question or keywords.
            k: How many at most.
            allowed: If given, a boolean per chunk: only those marked are returned, the best
                ``k`` of them.
        """
        return _best(self.scores(query), k, allowed)

    def statistics(self, terms: Iterable[str]) -> TermStatistics:
        """This index's part of the corpus statistics of ``terms`` (BM25 terms, as
        :func:`tokenize` makes them): its live chunks, their tokens, and how many hold each
        term."""
        chunks, tokens = self._corpus
        frequencies = {}
        for term in set(terms):
            found = len(self._postings(term)[0])
            if found:
                frequencies[term] = found
        return TermStatistics(chunks, tokens, frequencies)

    def global_scores(self, query: str, statistics: TermStatistics) -> np.ndarray:
        """BM25 score of every chunk for ``query`` under ``statistics``, those of a corpus this
        index is a part of (zeros where nothing matches): the scores that one index over the
        whole corpus gives these chunks."""
        return self._score(query, statistics.chunks, statistics.tokens, statistics.frequencies)

    def search_global(
        self,
        query: str,
        k: int,
        statistics: TermStatistics,
        allowed: np.ndarray | None = None,
    ) -> list[tuple[int, float]]:
        """As :meth:`search`, scored by :meth:`global_scores` under the corpus's
        ``statistics``; equal scores rank by position."""
        return _best(self.global_scores(query, statistics), k, allowed)

    # -- files --------------------------------------------------------------------------

    def save(self, directory: Path, shared_with: Path | None = None) -> None:
        """Write the index into ``directory``.

        Args:
            directory: A new, empty folder (made if missing).
            shared_with: The folder of the index this one grew from, where it is the live
                build's: its term ids and terms files are hard-linked and appended to
                (``qa.appending``), its postings linked where this index has the same ones.
        """
        directory.mkdir(parents=True, exist_ok=True)
        shared = self._shared if shared_with is not None else None
        tokens = len(self._ids)
        if shared is None or not link_and_append(
            shared_with / TOKENS_FILE,  # type: ignore[operator]
            directory / TOKENS_FILE,
            shared.tokens * 4,
            self._ids.slice(shared.tokens, tokens).astype("<i4").tobytes(),
        ):
            with (directory / TOKENS_FILE).open("wb") as fh:
                for part in self._ids.parts:
                    fh.write(np.asarray(part, "<i4").tobytes())
        if (
            shared is None
            or not link_and_append(
                shared_with / TERMS_FILE,  # type: ignore[operator]
                directory / TERMS_FILE,
                shared.terms_bytes,
                "".join(f"{t}\n" for t in self._terms[shared.terms :]).encode(),
            )
        ):
            (directory / TERMS_FILE).write_bytes("".join(f"{t}\n" for t in self._terms).encode())
        np.save(directory / TOKEN_OFFSETS_FILE, self.token_offsets)
        if len(self.masked):
            np.save(directory / MASKED_ROWS_FILE, self.masked)
        if (
            shared is None
            or not shared.postings
            or not link_files(shared_with, directory, POSTINGS_FILES)  # type: ignore[arg-type]
        ):
            self._base_postings.save(directory)
        meta = {
            "rows": self.size,
            "base_rows": self.base_rows,
            "terms": len(self._terms),
            "terms_bytes": self._terms_bytes,
            "tokens": tokens,
            "bm25": {"method": "lucene", "k1": K1, "b": B},
        }
        (directory / META_FILE).write_text(json.dumps(meta, indent=1), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path, size: int) -> LexicalIndex:
        """The index saved in ``directory`` for a chunk table of ``size`` rows.

        Raises:
            ValueError: It is not one (another size), or one saved before index format 3,
                which kept no token ids.
        """
        if not (directory / META_FILE).exists():
            return cls._load_legacy(directory, size)
        meta = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
        if meta["rows"] != size:
            raise ValueError(f"BM25 index of {meta['rows']} rows for {size} chunks")
        with (directory / TERMS_FILE).open("rb") as fh:
            terms = fh.read(meta["terms_bytes"]).decode().split("\n")[: meta["terms"]]
        tokens = int(meta["tokens"])
        ids = (
            np.memmap(directory / TOKENS_FILE, dtype="<i4", mode="r", shape=(tokens,))
            if tokens
            else np.zeros(0, np.int32)
        )
        masked = (
            np.load(directory / MASKED_ROWS_FILE)
            if (directory / MASKED_ROWS_FILE).exists()
            else np.zeros(0, np.int64)
        )
        index = cls(
            size,
            terms,
            _Ids([ids]),
            np.load(directory / TOKEN_OFFSETS_FILE),
            masked,
            Postings.load(directory),
            int(meta["base_rows"]),
        )
        index.__dict__["_terms_bytes"] = int(meta["terms_bytes"])
        return index

    @classmethod
    def _load_legacy(cls, directory: Path, size: int) -> LexicalIndex:
        """An index saved by bm25s with its token ids (index formats 3 and 4)."""
        if not (directory / LEGACY_TOKEN_IDS_FILE).exists():
            if size == 0:
                return cls.build([])
            raise ValueError("this BM25 index keeps no token ids: rebuild it")
        ids = np.load(directory / LEGACY_TOKEN_IDS_FILE, mmap_mode="r")
        offsets = np.load(directory / TOKEN_OFFSETS_FILE)
        vocab_file = directory / LEGACY_VOCAB_FILE
        vocab = json.loads(vocab_file.read_text(encoding="utf-8")) if vocab_file.exists() else {}
        terms = [""] * len(vocab)
        for term, i in vocab.items():
            terms[i] = term
        live_file = directory / LEGACY_ROWS_FILE
        masked = (
            np.setdiff1d(np.arange(size), np.load(live_file))
            if live_file.exists()
            else np.zeros(0, np.int64)
        )
        return cls(size, terms, _Ids([ids]), offsets, masked, None, size)


def _grows(masked: np.ndarray, size: int, previous_rows: Sequence[int] | np.ndarray) -> bool:
    """Whether the texts (``masked`` where None) are the ``size`` rows of the index
    ``previous_rows`` maps into, each as it was or masked, followed by new rows only."""
    if len(masked) < size or len(previous_rows) != len(masked):
        return False
    source = np.asarray(previous_rows, np.int64)
    kept = (source[:size] == np.arange(size)) | masked[:size]
    return bool(kept.all() and (source[size:] < 0).all() and not masked[size:].any())


def _term_ids(vocab: dict[str, int], texts: list[str]) -> list[np.ndarray]:
    """The term ids of each text, new terms numbered on from ``vocab`` (which takes them)."""
    return [
        np.fromiter((vocab.setdefault(t, len(vocab)) for t in tokens), np.int64)
        for tokens in tokenize(texts)
    ]


def _best(scores: np.ndarray, k: int, allowed: np.ndarray | None) -> list[tuple[int, float]]:
    """The ``k`` best ``(row, score)`` of positive ``scores`` (of ``allowed`` rows only),
    best first, equal scores by row."""
    if allowed is not None:
        scores = scores * allowed
    found = np.flatnonzero(scores > 0)
    if len(found) > k > 0:
        # Only the rows scoring at least the k-th best score need sorting (ties kept).
        kth = np.partition(scores[found], len(found) - k)[len(found) - k]
        found = found[scores[found] >= kth]
    best = found[np.lexsort((found, -scores[found]))[: max(k, 0)]]
    return [(int(i), float(scores[i])) for i in best]
