"""Dense (FAISS) and lexical (BM25) retrieval over chunks, fused by reciprocal rank.

Reciprocal rank fusion (Cormack, Clarke and Buettcher, 2009) adds ``1 / (rrf_k + rank)`` over
the rankings a chunk appears in. It needs no score calibration between cosine similarities and
BM25 scores, which live on unrelated scales, and is robust to either retriever failing alone.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

import faiss
import numpy as np

from qa.settings import RetrievalMode, Settings
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
    ) -> list[Passage]:
        """Return the ``k`` best passages for ``query``, best first.

        Args:
            query: The question or keywords.
            k: How many passages (default ``settings.top_k``).
            mode: ``hybrid``, ``dense`` or ``lexical`` (default ``settings.retrieval_mode``).
            timings: If given, receives seconds spent per stage (``embed``, ``dense``,
                ``lexical``, ``fusion``; in hybrid mode BM25 runs beside the embedding, so
                ``lexical`` overlaps ``embed`` and ``lexical_wait`` is the time spent waiting
                for it after the dense search).
            exclude: Document ids whose chunks are left out, as if they were not indexed
                (each retriever's list is filtered before fusion). Evaluation uses it to ask a
                question without its own paragraph, the way a corpus that lacks the answer
                would be asked.
        """
        k = k or self.settings.top_k
        mode = mode or self.settings.retrieval_mode
        n = len(self.index.chunks)
        if n == 0 or not query.strip():
            return []
        depth = min(n, max(self.settings.candidates, k))
        if exclude:
            depth = min(n, depth + sum(c.doc_id in exclude for c in self.index.chunks))
        clock = StageClock(timings)

        # In hybrid mode BM25 runs on a second thread while the question is embedded: the
        # encoder (onnxruntime or torch) releases the GIL, and the two are the largest stages.
        pending: Future[tuple[list[tuple[int, float]], float]] | None = None
        if mode == "hybrid":
            pending = _POOL.submit(_timed_lexical, self.index, query, depth)
        dense: list[tuple[int, float]] = []
        query_vector: np.ndarray | None = None
        if mode in ("hybrid", "dense"):
            query_vector = self.embedder.encode_query(query)
            clock.lap("embed")
            one_search_thread()
            scores, ids = self.index.dense.search(query_vector[None, :], depth)
            dense = [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]
            clock.lap("dense")
        lexical: list[tuple[int, float]] = []
        if pending is not None:
            lexical, seconds = pending.result()
            clock.add("lexical", seconds)
            clock.lap("lexical_wait")
        elif mode == "lexical":
            lexical = self.index.lexical.search(query, depth)
            clock.lap("lexical")

        if exclude:
            dense = [(i, x) for i, x in dense if self.index.chunks[i].doc_id not in exclude]
            lexical = [(i, x) for i, x in lexical if self.index.chunks[i].doc_id not in exclude]
        dense_scores = dict(dense)
        lexical_scores = dict(lexical)
        if mode == "dense":
            ranked = dense[:k]
        elif mode == "lexical":
            ranked = lexical[:k]
        else:
            ranked = reciprocal_rank_fusion([dense, lexical], self.settings.rrf_k)[:k]
        if query_vector is not None:
            # Chunks found by BM25 alone still get their cosine, as evidence for the reader.
            missing = [i for i, _ in ranked if i not in dense_scores]
            if missing:
                vectors = np.stack([self.index.dense.reconstruct(i) for i in missing])
                dense_scores.update(zip(missing, (vectors @ query_vector).tolist(), strict=True))
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


def reciprocal_rank_fusion(
    rankings: list[list[tuple[int, float]]], rrf_k: int = 60
) -> list[tuple[int, float]]:
    """Fuse rankings of ``(id, score)`` pairs (each best first) into one, best first.

    Ties are broken by the id's best rank in any list, then by id, so fusion is deterministic.
    """
    fused: dict[int, float] = {}
    best_rank: dict[int, int] = {}
    for ranking in rankings:
        for rank, (item, _) in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + 1.0 / (rrf_k + rank)
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
    Building an HNSW graph takes every core again (``qa.store.make_dense_index``).
    """
    if not getattr(_THREAD, "one_faiss_thread", False):
        faiss.omp_set_num_threads(1)
        _THREAD.one_faiss_thread = True


#: Runs BM25 beside the query embedding (see ``Retriever.search``); shared by all retrievers.
_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="qa-lexical")


def _timed_lexical(index: Index, query: str, depth: int) -> tuple[list[tuple[int, float]], float]:
    started = time.perf_counter()
    found = index.lexical.search(query, depth)
    return found, time.perf_counter() - started
