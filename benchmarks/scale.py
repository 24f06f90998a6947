"""Dense search at 10^4, 10^5 and 10^6 chunks: exact against HNSW (and IVF), latency and recall.

Vectors are synthetic but shaped like the product's: drawn from a Gaussian with the mean and
covariance of real chunk embeddings (all-MiniLM-L6-v2 over BBC chunks), then normalised. A
Gaussian keeps the real spectrum but not the real clusters, so approximate search finds it
no easier than real text, if anything harder. Queries are data points plus noise, normalised,
as a question lies near, not on, the chunk that answers it. Recall@10 is measured against
exact inner-product search (``IndexFlatIP``) on the same vectors.

Latency is per single query (batch of one), as the product searches, with the process's
threads (2 here) and the depth retrieval uses (``Settings.candidates``).
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import faiss
import numpy as np

from benchmarks.common import load, summarize
from qa.indexing.dense import faiss_kind, hnsw_ef_search, make_dense_index
from qa.retrieval import dense_search
from qa.settings import Settings

if TYPE_CHECKING:
    from qa.store import Index as QAIndex

#: Noise added to a data point to make a query, relative to a unit vector's length.
QUERY_NOISE = 0.5
#: Noise added to each copy of a real vector when real vectors are tiled up to a size, relative
#: to a unit vector's length: a copy keeps a cosine of about 0.94 with its original.
TILE_NOISE = 0.35
#: efSearch values tried on each HNSW index, to show the recall/latency curve.
EF_SWEEP = (32, 64, 128, 256)
#: Dense search time per query that exact search may take before approximate search pays:
#: a third of the 15 ms ``search`` budget, the rest going to the query embedding and BM25.
EXACT_BUDGET_MS = 5.0
#: nprobe values tried on IVF.
NPROBE_SWEEP = (16, 64, 128, 256)


def synthetic(n: int, reference: np.ndarray, seed: int = 0, chunk: int = 100_000) -> np.ndarray:
    """``n`` unit vectors from a Gaussian fitted to ``reference`` (rows are embeddings).

    Args:
        n: How many vectors.
        reference: Real embeddings whose mean and covariance the vectors share.
        seed: Random seed; the same seed gives the same vectors.
        chunk: Rows generated at a time, to bound temporary memory.
    """
    rng = np.random.default_rng(seed)
    mean = reference.mean(axis=0)
    cov = np.cov(reference, rowvar=False)
    # A little isotropic variance keeps the factorisation defined for small references.
    cov += np.eye(cov.shape[0]) * 1e-6 * np.trace(cov) / cov.shape[0]
    factor = np.linalg.cholesky(cov).astype(np.float32)
    out = np.empty((n, reference.shape[1]), dtype=np.float32)
    for i in range(0, n, chunk):
        m = min(chunk, n - i)
        block = rng.standard_normal((m, reference.shape[1]), dtype=np.float32) @ factor.T + mean
        out[i : i + m] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def tiled(n: int, real: np.ndarray, seed: int = 3, chunk: int = 100_000) -> np.ndarray:
    """``n`` unit vectors: real embeddings drawn with replacement, each moved by its own noise.

    Unlike ``synthetic``, these keep the topic clusters of real text (every copy stays near its
    original, and the originals near their topics): the case a real corpus of ``n`` chunks is
    closer to.
    """
    rng = np.random.default_rng(seed)
    out = np.empty((n, real.shape[1]), dtype=np.float32)
    for i in range(0, n, chunk):
        m = min(chunk, n - i)
        noise = rng.standard_normal((m, real.shape[1]), dtype=np.float32)
        block = real[rng.integers(0, len(real), m)] + noise * (TILE_NOISE / np.sqrt(real.shape[1]))
        out[i : i + m] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def queries_near(data: np.ndarray, count: int, seed: int = 1) -> np.ndarray:
    """``count`` queries: random data points moved by noise, normalised."""
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(data), size=count, replace=False)
    noise = rng.standard_normal((count, data.shape[1]), dtype=np.float32)
    noise *= QUERY_NOISE / np.sqrt(data.shape[1])
    q = data[picks] + noise
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def recall_at(found: np.ndarray, truth: np.ndarray, k: int = 10) -> float:
    """Mean share of the true top ``k`` that ``found`` (rows of ids) also returns in its top k."""
    hits = [len(set(f[:k]) & set(t[:k])) / k for f, t in zip(found, truth, strict=True)]
    return round(float(np.mean(hits)), 4)


def single_query_latency(
    index: faiss.Index, queries: np.ndarray, depth: int
) -> tuple[dict[str, float], np.ndarray]:
    """Search one query at a time; return the latency summary and the ids found."""
    seconds = []
    ids = np.empty((len(queries), depth), dtype=np.int64)
    for i, q in enumerate(queries):
        started = time.perf_counter()
        _, found = index.search(q[None, :], depth)
        seconds.append(time.perf_counter() - started)
        ids[i] = found[0]
    return summarize(seconds), ids


def product_search_latency(
    index: faiss.Index, queries: np.ndarray, depth: int, k_factor: int | None
) -> tuple[dict[str, float], np.ndarray]:
    """``single_query_latency`` as the product searches: ``dense_search`` (its re-ranking
    depth ``k_factor``) on one OpenMP thread (``qa.retrieval.one_search_thread``); the thread
    count is restored after. Rows not found are -1."""
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    seconds = []
    ids = np.full((len(queries), depth), -1, dtype=np.int64)
    try:
        for i, q in enumerate(queries):
            started = time.perf_counter()
            found = dense_search(index, q, depth, None, k_factor)
            seconds.append(time.perf_counter() - started)
            ids[i, : len(found)] = [row for row, _ in found]
    finally:
        faiss.omp_set_num_threads(threads)
    return summarize(seconds), ids


def measure_size(
    n: int,
    reference: np.ndarray,
    n_queries: int,
    depth: int,
    hnsw: bool = True,
    ivf: bool = False,
    ef_sweep: Sequence[int] = EF_SWEEP,
    kind: str = "synthetic",
) -> dict[str, Any]:
    """Exact, HNSW (as the product builds it), the product's own choice at this size and
    optionally IVF at ``n`` vectors: ``synthetic`` ones shaped like ``reference``, or
    ``reference`` itself ``tiled`` up to ``n``."""
    data = synthetic(n, reference) if kind == "synthetic" else tiled(n, reference)
    out = compare_indexes(data, queries_near(data, n_queries), depth, hnsw, ivf, ef_sweep)
    out["vectors"] = kind
    return out


def product_index(
    data: np.ndarray, queries: np.ndarray, truth: np.ndarray, depth: int
) -> dict[str, Any]:
    """The dense index the product builds for ``len(data)`` vectors with its default settings
    (``faiss_kind``), searched as the product searches it (``dense_search``): build time,
    single-query latency and recall@10 against exact search."""
    settings = Settings()
    kind = faiss_kind(settings, len(data))
    started = time.perf_counter()
    index = make_dense_index(data, kind, settings.ivfpq_refine, settings.flat_precision)
    build_s = round(time.perf_counter() - started, 3)
    summary, ids = product_search_latency(index, queries, depth, settings.ivfpq_k_factor)
    out = {"kind": kind, "build_s": build_s, **summary}
    out["recall@10"] = recall_at(ids, truth)
    out["bytes_per_vector"] = round(faiss.serialize_index(index).nbytes / len(data), 1)
    return out


def compare_indexes(
    data: np.ndarray,
    queries: np.ndarray,
    depth: int,
    hnsw: bool = True,
    ivf: bool = False,
    ef_sweep: Sequence[int] = EF_SWEEP,
) -> dict[str, Any]:
    """Build time, single-query latency and recall@10 against exact search, per index kind."""
    n = len(data)
    out: dict[str, Any] = {"n": n, "data_mib": round(data.nbytes / 2**20, 1), "load": load()}

    started = time.perf_counter()
    flat = make_dense_index(data, "flat", flat="fp32")  # exact: the ground truth
    out["flat_build_s"] = round(time.perf_counter() - started, 3)
    # Ground truth from a batched exact search (fast); the timed search is one query at a time.
    _, truth = flat.search(queries, 10)
    out["flat"], found = single_query_latency(flat, queries, depth)
    out["flat"]["recall@10"] = recall_at(found, truth)
    del flat

    if hnsw:
        started = time.perf_counter()
        index = make_dense_index(data, "hnsw")
        out["hnsw_build_s"] = round(time.perf_counter() - started, 3)
        out["hnsw_load"] = load()
        out["hnsw"] = {}
        product_ef = hnsw_ef_search(n)
        for ef in sorted(set(ef_sweep) | {product_ef}):
            index.hnsw.efSearch = max(ef, depth)
            summary, found = single_query_latency(index, queries, depth)
            summary["recall@10"] = recall_at(found, truth)
            out["hnsw"][f"ef{ef}"] = summary
        # What the product searches with at this size.
        out["hnsw_product"] = {**out["hnsw"][f"ef{product_ef}"], "ef_search": product_ef}
        del index

    # What the product builds and searches at this size (an HNSW graph only where the HNSW
    # above was built: it is that one).
    kind = faiss_kind(Settings(), n)
    if kind == "hnsw" and hnsw:
        out["product"] = {"kind": kind, "build_s": out["hnsw_build_s"], **out["hnsw_product"]}
    elif kind != "hnsw":
        out["product"] = product_index(data, queries, truth, depth)

    if ivf:
        nlist = int(4 * np.sqrt(n))
        quantizer = faiss.IndexFlatIP(data.shape[1])
        index = faiss.IndexIVFFlat(quantizer, data.shape[1], nlist, faiss.METRIC_INNER_PRODUCT)
        started = time.perf_counter()
        rng = np.random.default_rng(2)
        # 40 training points per list: above faiss's warning floor (39), and k-means stays cheap.
        index.train(data[rng.choice(n, size=min(n, 40 * nlist), replace=False)])
        index.add(data)
        out["ivf_build_s"] = round(time.perf_counter() - started, 3)
        out["ivf_nlist"] = nlist
        out["ivf"] = {}
        for nprobe in NPROBE_SWEEP:
            index.nprobe = nprobe
            summary, found = single_query_latency(index, queries, depth)
            summary["recall@10"] = recall_at(found, truth)
            out["ivf"][f"nprobe{nprobe}"] = summary
    # Sizes run in increasing order, so the peak so far is the peak of this size.
    out["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


def exact_threshold(flat_p50_ms: dict[int, float], budget_ms: float = EXACT_BUDGET_MS) -> int:
    """The vector count at which exact search reaches ``budget_ms`` per query.

    Exact search reads every vector, so its time grows linearly with their number: the
    median time per vector over the measured sizes, scaled to the budget, rounded to 10,000
    (and never below it: under heavy load the measured time says nothing).
    """
    per_vector = float(np.median([ms / n for n, ms in flat_p50_ms.items()]))
    return max(10_000, int(round(budget_ms / per_vector, -4)))


def ivfpq_sweep(
    data: np.ndarray,
    queries: np.ndarray,
    truth: np.ndarray,
    depth: int,
    k_factors: Sequence[int] = (10, 20),
) -> dict[str, Any]:
    """The product's IVF-PQ index (fp16 re-ranking) over ``data`` searched at several depths,
    one query on one thread: 32 lists, an eighth and a quarter of them, each with every
    re-ranking factor in ``k_factors``."""
    index = make_dense_index(data, "ivfpq")
    ivf = faiss.extract_index_ivf(index)
    out: dict[str, Any] = {"lists": ivf.nlist}
    for nprobe in sorted({32, ivf.nlist // 8, ivf.nlist // 4}):
        ivf.nprobe = nprobe
        for k_factor in k_factors:
            summary, ids = product_search_latency(index, queries, depth, k_factor)
            out[f"nprobe{nprobe} k_factor{k_factor}"] = {
                "p50_ms": summary["p50_ms"],
                "p95_ms": summary["p95_ms"],
                "recall@10": recall_at(ids, truth),
            }
    return out


def reference_vectors(index: QAIndex) -> tuple[np.ndarray, np.ndarray]:
    """The chunk vectors of a loaded index, and its chunk and sentence vectors together
    (normalised): the references ``synthetic`` and ``tiled`` draw from."""
    chunks = np.ascontiguousarray(index.vectors(), dtype=np.float32)
    real = np.vstack([chunks, np.asarray(index.sentences.vectors, dtype=np.float32)])
    return chunks, real / np.linalg.norm(real, axis=1, keepdims=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.scale",
        description="Dense search at given sizes: exact, HNSW, the product's index and an "
        "IVF-PQ sweep, on synthetic and on tiled real vectors.",
    )
    parser.add_argument("index", type=Path, help="a built index (e.g. of the BBC set)")
    parser.add_argument("--sizes", default="200000,1000000", help="comma-separated")
    parser.add_argument("--vectors", default="synthetic,tiled", help="synthetic, tiled or both")
    parser.add_argument("--hnsw-max", type=int, default=200_000, help="largest HNSW built")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--depth", type=int, default=Settings().candidates)
    args = parser.parse_args()
    from qa.pipeline import QA

    chunks, real = reference_vectors(QA(Settings.from_env(index_dir=args.index)).index)
    for n in (int(float(x)) for x in args.sizes.split(",")):
        for kind in args.vectors.split(","):
            data = synthetic(n, chunks) if kind == "synthetic" else tiled(n, real)
            queries = queries_near(data, args.queries)
            out = compare_indexes(data, queries, args.depth, hnsw=n <= args.hnsw_max)
            exact = faiss.IndexFlatIP(data.shape[1])
            exact.add(data)
            _, truth = exact.search(queries, 10)
            del exact
            out["ivfpq_sweep"] = ivfpq_sweep(data, queries, truth, args.depth)
            print(json.dumps({"n": n, "vectors": kind, **out}), flush=True)


if __name__ == "__main__":
    main()
