"""BM25 over chunks (bm25s), with English stopwords and Snowball stemming.

bm25s scores the corpus at index time (its "eager" scoring) and retrieves from a sparse matrix
of those scores. Two things here make rebuilding that matrix cheap enough to do on every update:

* each chunk's token ids are saved with the index, so an update tokenises only new chunks
  (tokenising and stemming all 13,239 BBC chunks takes ~1.3 s);
* ``_VectorisedBM25`` overrides bm25s's documented extension point ``build_index_from_ids``
  with a vectorised version of the same computation (term counts with ``np.unique`` instead of
  a ``Counter`` per chunk, bm25s's own idf and term-frequency functions): ~0.1 s instead of
  ~0.9 s on the BBC chunks. A test checks its scores equal bm25s's own build.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import bm25s
import numpy as np
import scipy.sparse as sp
import Stemmer
from bm25s import scoring
from bm25s.stopwords import STOPWORDS_EN

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


class _VectorisedBM25(bm25s.BM25):
    """bm25s.BM25 whose index build runs in numpy (same scores; see the module docstring)."""

    def build_index_from_ids(
        self,
        unique_token_ids: list[int],
        corpus_token_ids: Sequence[Sequence[int]],
        show_progress: bool = True,
        leave_progress: bool = False,
    ) -> dict[str, object]:
        # Either csc backend of bm25s yields the same CSC arrays that scipy builds here.
        if self.method in self.methods_requiring_nonoccurrence:
            return super().build_index_from_ids(
                unique_token_ids, corpus_token_ids, show_progress, leave_progress
            )
        self.nonoccurrence_array = None
        n_docs, n_vocab = len(corpus_token_ids), len(unique_token_ids)
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
        # bm25s (0.3.16) offers its idf and term-frequency formulas only under these private
        # names; the test that compares our scores with bm25s's own build guards them.
        idf_of = scoring._select_idf_scorer(self.idf_method)
        idf = np.array(
            [idf_of(int(df), N=n_docs) if df else 0.0 for df in doc_freq], dtype=self.dtype
        )
        tfc = scoring._select_tfc_scorer(self.method)(
            tf_array=tf.astype(self.dtype),
            l_d=lengths[doc_idx],
            l_avg=lengths.mean() if n_docs else 0.0,
            k1=self.k1,
            b=self.b,
            delta=self.delta,
        )
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
        prev_ids = previous.token_ids if previous is not None else None
        prev_offsets = previous.token_offsets if previous is not None else None
        if previous is None or previous_rows is None or prev_ids is None or prev_offsets is None:
            previous_rows = [-1] * len(texts)
        vocab = previous.vocabulary if previous is not None else {}
        fresh = [i for i, r in enumerate(previous_rows) if r < 0 and texts[i] is not None]
        fresh_tokens = dict(zip(fresh, tokenize([texts[i] or "" for i in fresh]), strict=True))
        per_chunk: list[np.ndarray] = []
        for i, r in enumerate(previous_rows):
            if texts[i] is None:
                per_chunk.append(np.zeros(0, np.int64))
            elif r >= 0:
                assert prev_ids is not None and prev_offsets is not None
                per_chunk.append(prev_ids[prev_offsets[r] : prev_offsets[r + 1]])
            else:
                ids = (vocab.setdefault(t, len(vocab)) for t in fresh_tokens[i])
                per_chunk.append(np.fromiter(ids, np.int64))
        offsets = np.zeros(len(per_chunk) + 1, np.int64)
        np.cumsum([len(c) for c in per_chunk], out=offsets[1:])
        flat = np.concatenate(per_chunk).astype(np.int64) if per_chunk else np.zeros(0, np.int64)
        # Keep only the words some chunk still has, numbered densely.
        used, flat = np.unique(flat, return_inverse=True)
        words = {i: t for t, i in vocab.items()}
        compact = {words[int(i)]: n for n, i in enumerate(used)}
        retriever = _VectorisedBM25()
        live = [i for i, t in enumerate(texts) if t is not None]
        # bm25s cannot index an empty corpus; an empty index simply never matches.
        if live:
            chunks = [flat[offsets[i] : offsets[i + 1]] for i in live]
            retriever.index(
                (chunks, compact),
                create_empty_token=bool(compact),
                show_progress=False,
            )
        rows = np.asarray(live, np.int64) if len(live) < len(texts) else None
        return cls(retriever, len(texts), flat.astype(np.int32), offsets, rows)

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
        retriever = bm25s.BM25.load(str(directory), show_progress=False, verbosity=0)
        return cls(retriever, size, token_ids, token_offsets, rows)
