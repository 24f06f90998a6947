"""Dense (FAISS) and lexical (BM25) retrieval over chunks, and their fusion.

Hybrid search fuses the two lists of candidates one of two ways (``Settings.fusion``):

* ``convex`` (the default): each list's scores are scaled to 0..1 over its own candidates
  (min-max: cosines and BM25 scores live on unrelated scales), and a chunk scores
  ``dense_weight`` x its scaled cosine plus the rest x its scaled BM25 score (0 in a list
  that lacks it). How far ahead a chunk is counts, not only its place.
* ``rrf``: reciprocal rank fusion (Cormack, Clarke and Buettcher, 2009) adds
  ``1 / (rrf_k + rank)`` over the lists a chunk appears in: places only.

Convex fusion found the question's paragraph more often on both sets it was chosen on
(eval/RESULTS.md, "hybrid fusion by scores"): qa-val and a sample of qa-train.

A search may be restricted to some documents (a metadata ``Filter``, and the ``exclude`` that
evaluation uses). Both become one mask of allowed chunk rows, applied inside each retriever:
FAISS searches through an ``IDSelectorBitmap`` of the mask and BM25 multiplies its scores by
it (bm25s's ``weight_mask``), so each returns the best rows among the allowed ones, exactly
where the index is exact. BM25 keeps the whole index's statistics (idf, mean length): a
filtered search ranks the allowed chunks as the whole index scores them.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Literal

import faiss
import numpy as np

from qa.filters import Filter
from qa.settings import RetrievalMode, Settings
from qa.store import TailedIndex
from qa.timing import StageClock
from qa.types import Passage

if TYPE_CHECKING:
    from qa.protocols import Encoder
    from qa.store import Index


class Retriever:
    """Ranks the chunks of a loaded index for a query.

    Args:
        index: The loaded index.
        embedder: The model the index was built with (for the query vector).
        settings: ``retrieval_mode``, ``top_k``, ``candidates`` and ``rrf_k``.
    """

    def __init__(self, index: Index, embedder: Encoder, settings: Settings) -> None:
        self.index = index
        self.embedder = embedder
        self.settings = settings

    def search(
        self,
        query: str,
        k: int | None = None,
        mode: RetrievalMode | None = None,
        timings: dict[str, float] | None = None,
        exclude: frozenset[str] = frozenset(),
        filter: Filter | None = None,
    ) -> list[Passage]:
        """Return the ``k`` best passages for ``query``, best first.

        Args:
            query: The question or keywords.
            k: How many passages (default ``settings.top_k``).
            mode: ``hybrid``, ``dense`` or ``lexical`` (default ``settings.retrieval_mode``).
            timings: If given, receives seconds spent per stage (``embed``, ``dense``,
                ``lexical``, ``fusion``; in hybrid mode BM25 runs on a second thread beside
                the dense search, so ``lexical`` overlaps ``dense`` and ``lexical_wait`` is the
                time spent waiting for it after the dense search).
            exclude: Document ids whose chunks are left out, as if they were not indexed
                (each retriever's list is filtered before fusion). Evaluation uses it to ask a
                question without its own paragraph, the way a corpus that lacks the answer
                would be asked.
            filter: If given, only documents that pass it are searched (``qa.filters``); the
                passages returned are the best ``k`` of theirs, as in an index of them alone
                (BM25 scores keep the whole index's statistics). Combines with ``exclude``.
        """
        k = k or self.settings.top_k
        mode = mode or self.settings.retrieval_mode
        n = len(self.index.chunks)
        if n == 0 or not query.strip():
            return []
        allowed = allowed_rows(self.index, filter, exclude)
        if allowed is not None:
            n = int(allowed.sum())
            if n == 0:
                return []
        depth = min(n, max(self.settings.candidates, k))
        clock = StageClock(timings)

        # In hybrid mode BM25 runs on a second thread (``LEXICAL_BESIDE``: beside the dense
        # search, once the question is embedded); the encoder and FAISS release the GIL.
        pending: Future[tuple[list[tuple[int, float]], float]] | None = None
        hybrid = mode == "hybrid"
        if hybrid and LEXICAL_BESIDE == "embedding":
            pending = _POOL.submit(_timed_lexical, self.index, query, depth, allowed)
        dense: list[tuple[int, float]] = []
        query_vector: np.ndarray | None = None
        if mode in ("hybrid", "dense"):
            query_vector = self.embedder.encode_query(query)
            clock.lap("embed")
            if hybrid and pending is None:
                pending = _POOL.submit(_timed_lexical, self.index, query, depth, allowed)
            one_search_thread()
            dense = dense_search(
                self.index.dense, query_vector, depth, allowed, self.settings.ivfpq_k_factor
            )
            clock.lap("dense")
        lexical: list[tuple[int, float]] = []
        if pending is not None:
            lexical, seconds = pending.result()
            clock.add("lexical", seconds)
            clock.lap("lexical_wait")
        elif mode == "lexical":
            lexical = self.index.lexical.search(query, depth, allowed)
            clock.lap("lexical")

        dense_scores = dict(dense)
        lexical_scores = dict(lexical)
        ranked = rank(dense, lexical, mode, k, self.settings)
        if query_vector is not None:
            fill_cosines(self.index, dense_scores, [row for row, _ in ranked], query_vector)
        clock.lap("fusion")

        passages = []
        for row, score in ranked:
            chunk = self.index.chunks[row]
            doc = self.index.documents[chunk.doc_id]
            passages.append(
                Passage(
                    chunk=chunk,
                    title=doc.title,
                    path=doc.path,
                    score=float(score),
                    dense_score=dense_scores.get(row),
                    lexical_score=lexical_scores.get(row),
                )
            )
        return passages


def allowed_rows(
    index: Index, filter: Filter | None = None, exclude: frozenset[str] = frozenset()
) -> np.ndarray | None:
    """Per chunk row of ``index``, whether a search may return it; ``None`` when all may.

    A row is allowed when it is live (not masked by an update in place), its document passes
    ``filter`` and is not in ``exclude``.
    """
    if not filter and not exclude:
        return index.live_rows
    docs = index.documents
    keep = (
        np.fromiter(map(filter.matches, docs.values()), bool, len(docs))
        if filter
        else np.ones(len(docs), dtype=bool)
    )
    if exclude:
        keep &= np.fromiter((d not in exclude for d in docs), bool, len(docs))
    # A masked row's document position is -1: the False appended here.
    return np.append(keep, False)[index.chunk_documents]


#: Below this many allowed rows, a filtered search of an HNSW or re-ranked IVF-PQ index is exact:
#: it scans the allowed rows of the index's flat vectors (some milliseconds), where the graph,
#: walking mostly through rows the filter refuses, or the few IVF lists probed could miss some
#: of the best allowed ones.
HNSW_EXACT_ROWS = 50_000


def dense_search(
    dense: faiss.Index | TailedIndex,
    query: np.ndarray,
    k: int,
    allowed: np.ndarray | None = None,
    k_factor: int | None = None,
) -> list[tuple[int, float]]:
    """The ``k`` best ``(row, cosine)`` of ``dense`` for ``query``, among ``allowed`` rows.

    The allowed rows go to FAISS as an ``IDSelectorBitmap`` in the search parameters, which
    flat, HNSW and IVF-PQ indexes (those ``qa.indexing.dense`` builds) honour. An HNSW search
    with few allowed rows scans them exactly in the graph's storage (``HNSW_EXACT_ROWS``); one
    with more walks the graph with the selector, at the index's ``efSearch`` as an unfiltered
    search does. A re-ranked IVF-PQ index (``IndexRefine``) takes its codes' best
    ``k x k_factor`` (the index's own factor if None) among the allowed rows, at its ``nprobe``,
    and ranks them by the vectors it keeps (float16 or exact); with few allowed rows it scans
    them exactly in those vectors, as HNSW does. An index that takes no selector is searched
    ever deeper until ``k`` allowed rows are found or none is left. An index with an exact tail
    (``TailedIndex``, an update in place's rows) is searched in both parts, the best ``k`` kept.
    Rows of equal cosine come in row order (FAISS's heap returns them in no set order), so the
    two parts together rank as one index of the same rows does.
    """
    if isinstance(dense, TailedIndex):
        nb = int(dense.base.ntotal)
        head, rest = (None, None) if allowed is None else (allowed[:nb], allowed[nb:])
        found = dense_search(dense.base, query, k, head, k_factor) if nb else []
        if dense.tail.ntotal:
            tail = dense_search(dense.tail, query, k, rest)
            found += [(nb + row, score) for row, score in tail]
        return sorted(found, key=_best_first)[:k]
    found = _faiss_search(dense, query, k, allowed, k_factor)
    if dense.metric_type != faiss.METRIC_INNER_PRODUCT:
        return sorted(found, key=lambda hit: (hit[1], hit[0]))  # a distance: least first
    return sorted(found, key=_best_first)


def _best_first(hit: tuple[int, float]) -> tuple[float, int]:
    return -hit[1], hit[0]


def _faiss_search(
    dense: faiss.Index,
    query: np.ndarray,
    k: int,
    allowed: np.ndarray | None,
    k_factor: int | None,
) -> list[tuple[int, float]]:
    """``dense_search`` of one FAISS index, its hits in FAISS's order."""
    # The parameters point into the bitmap and each other: this frame keeps them all alive
    # during the search.
    bitmap = None if allowed is None else np.packbits(allowed, bitorder="little")
    selector = (
        None if bitmap is None else faiss.IDSelectorBitmap(len(bitmap), faiss.swig_ptr(bitmap))
    )
    params: faiss.SearchParameters | None = None
    if allowed is not None and int(allowed.sum()) <= HNSW_EXACT_ROWS:
        if isinstance(dense, faiss.IndexHNSW):
            dense = faiss.downcast_index(dense.storage)
        elif isinstance(dense, faiss.IndexRefine):
            dense = faiss.downcast_index(dense.refine_index)
    if isinstance(dense, faiss.IndexRefine):
        base_params = faiss.SearchParametersIVF()
        base_params.nprobe = faiss.extract_index_ivf(dense).nprobe
        if selector is not None:
            base_params.sel = selector
        params = faiss.IndexRefineSearchParameters()
        params.k_factor = float(k_factor or dense.k_factor)
        params.base_index_params = base_params
    elif allowed is not None:
        params = faiss.SearchParameters()
        params.sel = selector
    try:
        scores, ids = dense.search(query[None, :], k, params=params)
    except RuntimeError:  # this index type takes no selector
        if allowed is None:
            raise
        return _deepening_search(dense, query, k, allowed)
    return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]


def _deepening_search(
    dense: faiss.Index, query: np.ndarray, k: int, allowed: np.ndarray
) -> list[tuple[int, float]]:
    """The best ``k`` allowed rows, searching twice as deep each time until found (exact: the
    last search, if need be, ranks every row)."""
    depth = k
    while True:
        depth = min(dense.ntotal, 2 * depth)
        scores, ids = dense.search(query[None, :], depth)
        found = [
            (int(i), float(s))
            for i, s in zip(ids[0], scores[0], strict=True)
            if i >= 0 and allowed[i]
        ]
        if len(found) >= k or depth >= dense.ntotal:
            return found[:k]


def fill_cosines(
    index: Index, cosines: dict[int, float], rows: list[int], query_vector: np.ndarray
) -> None:
    """Add to ``cosines`` (row -> cosine to the question) the rows of ``rows`` it lacks.

    Chunks found by BM25 alone still get their cosine, as evidence for the reader; it is
    computed from the vectors the dense index holds.
    """
    missing = [row for row in rows if row not in cosines]
    if missing:
        vectors = np.stack([index.dense.reconstruct(row) for row in missing])
        cosines.update(zip(missing, (vectors @ query_vector).tolist(), strict=True))


def rank(
    dense: list[tuple[int, float]],
    lexical: list[tuple[int, float]],
    mode: RetrievalMode,
    k: int,
    settings: Settings,
) -> list[tuple[int, float]]:
    """The ``k`` best ``(row, score)`` of a mode from the dense and lexical lists (best first):
    one list as it is, or both fused as ``settings.fusion`` says (``hybrid``)."""
    if mode == "dense":
        return dense[:k]
    if mode == "lexical":
        return lexical[:k]
    if settings.fusion == "rrf":
        return reciprocal_rank_fusion([dense, lexical], settings.rrf_k)[:k]
    return convex_fusion(dense, lexical, settings.dense_weight)[:k]


def convex_fusion(
    dense: list[tuple[int, float]], lexical: list[tuple[int, float]], dense_weight: float = 0.5
) -> list[tuple[int, float]]:
    """Fuse a dense and a lexical ranking of ``(id, score)`` pairs (each best first) by a
    weighted sum of their min-max scaled scores, best first.

    Each list's scores are scaled to 0..1 over that list (all 1 where they are equal); an id
    missing from a list gets 0 there. Ties are broken by the id's best rank in either list,
    then by id, so fusion is deterministic.
    """
    parts = []
    for ranking, weight in ((dense, dense_weight), (lexical, 1.0 - dense_weight)):
        if not ranking:
            continue
        scores = [score for _, score in ranking]
        low, span = min(scores), max(scores) - min(scores)
        scaled = [(score - low) / span if span > 0 else 1.0 for score in scores]
        parts.append([(item, weight * x) for (item, _), x in zip(ranking, scaled, strict=True)])
    return _summed(parts)


def reciprocal_rank_fusion(
    rankings: list[list[tuple[int, float]]], rrf_k: int = 60
) -> list[tuple[int, float]]:
    """Fuse rankings of ``(id, score)`` pairs (each best first) into one, best first.

    Ties are broken by the id's best rank in any list, then by id, so fusion is deterministic.
    """
    return _summed(
        [
            [(item, 1.0 / (rrf_k + rank)) for rank, (item, _) in enumerate(ranking, start=1)]
            for ranking in rankings
        ]
    )


def _summed(parts: list[list[tuple[int, float]]]) -> list[tuple[int, float]]:
    """Each id's contributions summed over ``parts`` (lists of ``(id, contribution)`` in the
    order of the rankings they come from), best first; ties broken by the id's best rank in
    any list, then by id."""
    fused: dict[int, float] = {}
    best_rank: dict[int, int] = {}
    for part in parts:
        for rank, (item, value) in enumerate(part, start=1):
            fused[item] = fused.get(item, 0.0) + value
            best_rank[item] = min(best_rank.get(item, rank), rank)
    return sorted(fused.items(), key=lambda kv: (-kv[1], best_rank[kv[0]], kv[0]))


_THREAD = threading.local()


def one_search_thread() -> None:
    """Make FAISS search with one OpenMP thread from the calling thread on.

    One query searches faster on one OpenMP thread: on 2 cores, exact search of the 13,187 BBC
    chunk vectors takes 1.2 ms p50 on one thread and 2.2 ms on two (benchmarks/RESULTS.md).
    OpenMP keeps the thread count per thread, and a new thread starts from the default (every
    core, or ``OMP_NUM_THREADS``), so setting it once at import held for the main thread only,
    not for the worker threads of a web server; each thread sets it on its first search.
    Building an HNSW graph takes every core again (``qa.indexing.dense.make_dense_index``).
    """
    if not getattr(_THREAD, "one_faiss_thread", False):
        faiss.omp_set_num_threads(1)
        _THREAD.one_faiss_thread = True


#: Runs BM25 beside the dense search (see ``Retriever.search``); shared by all retrievers.
_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="qa-lexical")
#: What a hybrid search's BM25 runs beside on its second thread: the dense search, started once
#: the question is embedded, or the embedding itself (as until 2026-12-03). On two cores BM25
#: beside the embedding slowed the encoder's two threads by more than BM25's own time: a warm
#: BBC search took 8.06 and 8.46 ms p50 with BM25 beside the dense search, 8.89 and 8.91 beside
#: the embedding (the embedding 5.7 to 6.0 against 6.5 to 6.7 ms), interleaved in one process
#: (``python -m benchmarks.lexical``; benchmarks/RESULTS.md, the run at 94d3bb7).
LEXICAL_BESIDE: Literal["dense", "embedding"] = "dense"


def _timed_lexical(
    index: Index, query: str, depth: int, allowed: np.ndarray | None
) -> tuple[list[tuple[int, float]], float]:
    started = time.perf_counter()
    found = index.lexical.search(query, depth, allowed)
    return found, time.perf_counter() - started
