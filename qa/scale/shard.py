"""One shard's half of a search, and the router's half that fuses the shards' lists.

Plain functions over a loaded ``qa.store.Index``, so they are tested without a cluster; the
Ray Serve deployments (``qa.scale.serving``) only call them.

How a sharded search relates to the single index's:

- Dense: each shard returns its exact top ``depth`` by cosine; the best ``depth`` of their
  union, by cosine, is the single exact index's top ``depth`` (exact search, flat index).
- Lexical: the router first gathers every shard's statistics of the question's BM25 terms
  (chunks, tokens, how many chunks hold each term; :func:`statistics_terms`) and sums them;
  each shard then scores its chunks under the sum (``LexicalIndex.search_global``), which gives
  the scores one index over every shard gives, so the merged top ``depth`` is that index's
  (chunks of equal score may come in another order). With one shard there is nothing to
  gather: it searches as the single index it is.
- Fusion: the settings' rule over the merged lists, as ``qa.retrieval``; rows are numbered in the
  single index's order (document id, then chunk), so ties break as they would there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from qa.filters import Filter
from qa.lexical import TermStatistics, tokenize
from qa.retrieval import allowed_rows, dense_search, fill_cosines, one_search_thread, rank
from qa.settings import RetrievalMode, Settings
from qa.store import Index
from qa.types import Chunk, Document, Passage


@dataclass
class ShardHits:
    """What one shard found for a question.

    Attributes:
        shard: The shard's number.
        dense: ``(row, cosine)``, best first.
        lexical: ``(row, bm25 score)`` under the corpus's statistics, best first.
        chunks: The chunk of every row in either list.
        cosines: The cosine of every row in either list (empty without a query vector).
        sources: ``(title, path)`` of the documents of those rows.
    """

    shard: int
    dense: list[tuple[int, float]] = field(default_factory=list)
    lexical: list[tuple[int, float]] = field(default_factory=list)
    chunks: dict[int, Chunk] = field(default_factory=dict)
    cosines: dict[int, float] = field(default_factory=dict)
    sources: dict[str, tuple[str, str]] = field(default_factory=dict)


def search_shard(
    shard: int,
    index: Index,
    query: str,
    query_vector: np.ndarray | None,
    depth: int,
    mode: RetrievalMode,
    filter: Filter | None = None,
    exclude: frozenset[str] = frozenset(),
    statistics: TermStatistics | None = None,
    k_factor: int | None = None,
) -> ShardHits:
    """The best ``depth`` rows of one shard by cosine and by BM25, as the mode asks.

    BM25 scores under ``statistics``, those of every shard summed, or the shard's own (its
    bm25s search) when there are none. The filter and ``exclude`` apply inside the shard's
    searches, as in ``qa.retrieval`` (statistics stay the whole corpus's, as there).
    ``k_factor`` is an IVF-PQ shard's re-ranking depth (``Settings.ivfpq_k_factor``).
    """
    hits = ShardHits(shard)
    allowed = allowed_rows(index, filter, exclude)
    n = len(index.chunks) if allowed is None else int(allowed.sum())
    depth = min(depth, n)
    if depth == 0 or not query.strip():
        return hits
    if mode in ("hybrid", "dense") and query_vector is not None:
        one_search_thread()
        hits.dense = dense_search(index.dense, query_vector, depth, allowed, k_factor)
    if mode in ("hybrid", "lexical"):
        if statistics is None:
            hits.lexical = index.lexical.search(query, depth, allowed)
        else:
            hits.lexical = index.lexical.search_global(query, depth, statistics, allowed)
    rows = sorted({row for row, _ in hits.dense} | {row for row, _ in hits.lexical})
    hits.chunks = {row: index.chunks[row] for row in rows}
    if query_vector is not None:
        hits.cosines = dict(hits.dense)
        fill_cosines(index, hits.cosines, rows, query_vector)
    for chunk in hits.chunks.values():
        doc = index.documents[chunk.doc_id]
        hits.sources[doc.doc_id] = (doc.title, doc.path)
    return hits


def statistics_terms(query: str, mode: RetrievalMode, shards: int) -> list[str]:
    """The BM25 terms of ``query`` whose statistics the router gathers from ``shards`` shards
    before they search: none for a mode without BM25, or for one shard (its statistics are the
    corpus's, and it searches as the single index)."""
    if shards == 1 or mode == "dense" or not query.strip():
        return []
    return tokenize([query])[0]


def corpus_statistics(
    indexes: list[Index], query: str, mode: RetrievalMode
) -> TermStatistics | None:
    """The statistics of ``query``'s terms over every shard of ``indexes``, summed, as the
    router gathers them (in process, for tests and benchmarks); None where none are gathered."""
    terms = statistics_terms(query, mode, len(indexes))
    if not terms:
        return None
    return TermStatistics.total(index.lexical.statistics(terms) for index in indexes)


def fuse(
    shards: list[ShardHits], k: int, depth: int, mode: RetrievalMode, settings: Settings
) -> list[Passage]:
    """The ``k`` best passages over every shard's hits, best first.

    The dense lists merge by cosine and the lexical lists by BM25 score, each cut to
    ``depth`` as one index's would be; then the mode ranks them as ``qa.retrieval`` does.
    """
    refs = sorted(
        ((hits, row) for hits in shards for row in hits.chunks),
        key=lambda ref: (ref[0].chunks[ref[1]].doc_id, ref[0].chunks[ref[1]].index),
    )
    number = {(hits.shard, row): n for n, (hits, row) in enumerate(refs)}

    def merged(lists: list[tuple[int, list[tuple[int, float]]]]) -> list[tuple[int, float]]:
        pairs = [(number[(shard, row)], score) for shard, found in lists for row, score in found]
        return sorted(pairs, key=lambda pair: (-pair[1], pair[0]))[:depth]

    dense = merged([(hits.shard, hits.dense) for hits in shards])
    lexical = merged([(hits.shard, hits.lexical) for hits in shards])
    lexical_scores = dict(lexical)
    passages = []
    for n, score in rank(dense, lexical, mode, k, settings):
        hits, row = refs[n]
        chunk = hits.chunks[row]
        title, path = hits.sources[chunk.doc_id]
        passages.append(
            Passage(
                chunk=chunk,
                title=title,
                path=path,
                score=float(score),
                dense_score=hits.cosines.get(row),
                lexical_score=lexical_scores.get(n),
            )
        )
    return passages


@dataclass
class ReadingContext:
    """What the reader needs of the documents it reads: each whole, with its sentence spans
    ``(m, 2)`` and their vectors ``(m, dim)``."""

    documents: dict[str, Document] = field(default_factory=dict)
    sentences: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def update(self, other: ReadingContext) -> None:
        self.documents.update(other.documents)
        self.sentences.update(other.sentences)


def reading_context(index: Index, doc_ids: list[str]) -> ReadingContext:
    """The documents of one shard among ``doc_ids``, for the reader."""
    context = ReadingContext()
    for doc_id in doc_ids:
        doc = index.documents.get(doc_id)
        if doc is not None:
            context.documents[doc_id] = doc
            spans, vectors = index.sentences.of_document(doc_id)
            context.sentences[doc_id] = (np.array(spans), np.array(vectors))
    return context
