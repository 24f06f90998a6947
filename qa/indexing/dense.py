"""The dense stage: a FAISS index over the chunk vectors, exact, HNSW or IVF-PQ (re-ranked).

An update in place does not add its vectors to that index: they go into a small exact tail
(``TailedIndex``), searched beside it, so the index's file is shared by the builds (hard-linked)
instead of being read and written whole at every update (20 MB at BBC's 13,000 chunks, 0.8 GB
at 10^6). Past ``tail_bound`` rows the tail is merged into the index, which is then written
anew.
"""

from __future__ import annotations

import os
from pathlib import Path

import faiss
import numpy as np

from qa.settings import FlatPrecision, IvfpqRefine, Settings
from qa.store import TailedIndex

# HNSW parameters, measured in benchmarks/ (RESULTS.md) on 384-d vectors shaped like
# all-MiniLM-L6-v2 chunk embeddings: at 10^5 vectors, M=32 with efConstruction=64 and
# efSearch=256 finds 0.978 of the exact top 10 (M=16: 0.927). efConstruction=64 rather than
# 200 builds the graph about three times faster at that recall, which matters because a full
# build and every compaction rebuild it; efSearch is where recall is bought, at about 2 ms a
# query.
#: The FAISS index's file in a build folder.
DENSE_FILE = "dense.faiss"
#: The exact tail of an index updated in place (``TailedIndex``), beside ``DENSE_FILE``.
TAIL_FILE = "dense_tail.faiss"
#: The rows a tail holds at most: ``TAIL_SHARE`` of the index's, at least ``TAIL_MIN`` and at
#: most ``TAIL_MAX`` (an exact scan of 20,000 384-d vectors costs about 2 ms a query).
TAIL_MIN = 2048
TAIL_SHARE = 50
TAIL_MAX = 20_000

HNSW_M = 32
HNSW_EF_CONSTRUCTION = 64
HNSW_EF_SEARCH = 256


# IVF-PQ, the index of large indexes (above ``Settings.ivfpq_threshold``): 48 sub-quantizers of
# 8 bits code a 384-d vector in 48 bytes; a query scans ``ivf_nprobe`` of the lists and ranks
# the codes' best k x ``IVF_REFINE_K_FACTOR`` again by the vectors the index keeps beside the
# codes (``Settings.ivfpq_refine``: ``fp16``, the default, in half precision through an
# IndexRefine over a float16 IndexScalarQuantizer; ``flat``, exact, IndexRefineFlat). Measured
# on 10^6 vectors (benchmarks/RESULTS.md, "Ten to the sixth"), one query on one thread:
# real chunk and sentence vectors tiled with noise find 0.9985 of the exact top 10 from 32
# lists; a Gaussian shaped like them (no topic clusters, the hard case) needs a quarter of the
# lists and 20x re-ranking for 0.97 (14 to 17 ms p50 over three runs), where 32 lists find 0.54
# and 10x re-ranking stops at 0.932. At 2 x 10^5 the same rule finds 0.97 in 3 to 5 ms.
IVFPQ_M = 48
#: The fewest lists a query scans.
IVF_NPROBE_MIN = 32
#: The share of the lists a query scans (see ``ivf_nprobe``).
IVF_NPROBE_SHARE = 4
#: The index's own re-ranking depth, a multiple of k; ``Settings.ivfpq_k_factor`` (the same by
#: default) sets it for each search.
IVF_REFINE_K_FACTOR = 20
#: Training vectors per IVF list, and in all at least (FAISS warns below 39 per centroid, and
#: each sub-quantizer has 256); an index with fewer vectors than that is exact instead.
IVF_TRAIN_PER_LIST = 40
IVF_TRAIN_MIN = 64 * 256


def ivf_lists(n: int) -> int:
    """IVF lists for ``n`` vectors: about 4 sqrt(n), the usual rule, from 64 to 65,536."""
    return int(min(65_536, max(64, 4 * round(n**0.5))))


def ivf_nprobe(lists: int) -> int:
    """How many of an IVF index's ``lists`` a query scans: a quarter of them (at least
    ``IVF_NPROBE_MIN``), so that recall holds on vectors without topic clusters as the index
    grows (about sqrt(n) lists for ``n`` vectors: 1,000 of 4,000 at 10^6)."""
    return min(lists, max(IVF_NPROBE_MIN, lists // IVF_NPROBE_SHARE))


def hnsw_ef_search(n: int) -> int:
    """efSearch for an HNSW index of ``n`` vectors: recall falls as the graph grows.

    Synthetic 384-d vectors (benchmarks/RESULTS.md), recall@10 against exact search: at 10^5,
    efSearch 256 finds 0.95 in 1.9 ms; at 10^6, 0.74 at 256, 0.84 at 512, 0.91 at 1024
    (9.5 ms, against 140 ms for exact search). Real chunk vectors are easier (0.999 at 256 on
    the BBC chunks).
    """
    if n <= 200_000:
        return HNSW_EF_SEARCH
    if n <= 500_000:
        return 2 * HNSW_EF_SEARCH
    return 4 * HNSW_EF_SEARCH


def faiss_kind(settings: Settings, n: int) -> str:
    """``flat``, ``hnsw`` or ``ivfpq`` for an index of ``n`` vectors: ``settings.faiss_index``,
    or by size."""
    if settings.faiss_index != "auto":
        return settings.faiss_index
    if n > settings.ivfpq_threshold:
        return "ivfpq"
    return "hnsw" if n > settings.hnsw_threshold else "flat"


def make_dense_index(
    vectors: np.ndarray,
    kind: str,
    refine: IvfpqRefine = "fp16",
    flat: FlatPrecision = "fp16",
) -> faiss.Index:
    """An inner-product FAISS index over normalised ``vectors``: exact, HNSW or IVF-PQ.

    The exact index holds the vectors as ``flat`` says (``Settings.flat_precision``): in
    float16 (an ``IndexScalarQuantizer``, scanned in half the memory) or float32.

    IVF-PQ is trained on an even sample of ``vectors`` and wrapped in an ``IndexRefine`` that
    keeps the vectors beside the codes (``refine``: ``fp16``, in half precision, or ``flat``,
    exact): a search takes the codes' best ``k x k_factor`` and ranks them by those vectors,
    and a row reconstructs to its kept vector. Below ``IVF_TRAIN_MIN`` vectors there is too
    little to train on, and the index is exact.
    """
    dim = vectors.shape[1]
    index: faiss.Index
    if kind == "ivfpq" and len(vectors) >= IVF_TRAIN_MIN:
        lists = min(ivf_lists(len(vectors)), len(vectors) // IVF_TRAIN_PER_LIST)
        ivf = faiss.IndexIVFPQ(
            faiss.IndexFlatIP(dim), dim, lists, IVFPQ_M, 8, faiss.METRIC_INNER_PRODUCT
        )
        step = max(1, len(vectors) // max(IVF_TRAIN_MIN, lists * IVF_TRAIN_PER_LIST))
        ivf.train(np.ascontiguousarray(vectors[::step], dtype=np.float32))
        ivf.nprobe = ivf_nprobe(lists)
        index = (
            faiss.IndexRefineFlat(ivf)
            if refine == "flat"
            else faiss.IndexRefine(ivf, _half_precision(dim))
        )
        index.k_factor = IVF_REFINE_K_FACTOR
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = hnsw_ef_search(len(vectors))
    else:
        index = _exact(dim, flat)
    _add(index, vectors)
    return index


def _exact(dim: int, precision: FlatPrecision) -> faiss.Index:
    """An empty exact inner-product index holding its vectors in ``precision``."""
    return _half_precision(dim) if precision == "fp16" else faiss.IndexFlatIP(dim)


def _half_precision(dim: int) -> faiss.Index:
    """An inner-product index of ``dim``-d vectors stored as float16 (no training needed)."""
    return faiss.IndexScalarQuantizer(
        dim, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT
    )


def base_of(dense: faiss.Index | TailedIndex) -> faiss.Index:
    """The FAISS index of ``dense`` without its tail (``dense`` itself where it has none)."""
    return dense.base if isinstance(dense, TailedIndex) else dense


def tail_bound(base_rows: int) -> int:
    """The rows an exact tail may hold beside an index of ``base_rows`` before it is merged."""
    return min(TAIL_MAX, max(TAIL_MIN, base_rows // TAIL_SHARE))


def refine_of(dense: faiss.Index | TailedIndex) -> IvfpqRefine | None:
    """What a re-ranked IVF-PQ index keeps to re-rank by (``fp16`` or ``flat``, as
    ``Settings.ivfpq_refine`` names it); None for an index that is not one."""
    dense = base_of(dense)
    if not isinstance(dense, faiss.IndexRefine):
        return None
    kept = faiss.downcast_index(dense.refine_index)
    return "fp16" if isinstance(kept, faiss.IndexScalarQuantizer) else "flat"


def flat_precision_of(dense: faiss.Index | TailedIndex) -> FlatPrecision | None:
    """How an exact index holds its vectors (``fp16`` or ``fp32``, as
    ``Settings.flat_precision`` names it); None for an index that is not exact."""
    dense = base_of(dense)
    if isinstance(dense, faiss.IndexScalarQuantizer):
        return "fp16"
    return "fp32" if isinstance(dense, faiss.IndexFlat) else None


def set_search_depth(dense: faiss.Index | TailedIndex) -> None:
    """Set how deeply ``dense`` is searched, for its size: an HNSW index's efSearch, an IVF
    index's share of lists scanned and re-ranking depth (an index built before these rules
    changed is searched by them too). Of a ``TailedIndex``, its index (the tail is exact)."""
    dense = base_of(dense)
    if isinstance(dense, faiss.IndexHNSW):
        dense.hnsw.efSearch = hnsw_ef_search(dense.ntotal)
    # An IVF-PQ index is an IndexRefine around the IVF.
    ivf = faiss.try_extract_index_ivf(dense)
    if ivf is not None:
        ivf.nprobe = ivf_nprobe(ivf.nlist)
    if isinstance(dense, faiss.IndexRefine):
        dense.k_factor = IVF_REFINE_K_FACTOR


def grow_dense_index(
    dense: faiss.Index | TailedIndex, vectors: np.ndarray, mapped_from: Path | None = None
) -> faiss.Index | TailedIndex:
    """``dense`` with ``vectors`` added as its rows ``dense.ntotal`` on, for an update in place.

    The vectors go into the exact tail (``TailedIndex``; a copy of the old tail and them)
    while it stays within ``tail_bound`` of the index's rows: the index itself is shared, not
    read, changed or written again. Past the bound the tail and the vectors are added to a copy
    of the index (HNSW inserts them into the copied graph, IVF-PQ encodes them with its trained
    quantizers) and the tail starts empty again. ``dense`` itself is the live index, searched
    by questions on other threads meanwhile, so it is never changed. A memory-mapped index
    (``mapped_from``, its build folder) is read again from its file to be added to: a clone of
    it would still view the read-only mapping, and adding to that aborts the process.
    """
    base = base_of(dense)
    old_tail = (
        dense.tail.reconstruct_n(0, dense.tail.ntotal) if isinstance(dense, TailedIndex) else None
    )
    added = vectors if old_tail is None else np.concatenate([old_tail, vectors])
    if len(added) <= tail_bound(int(base.ntotal)):
        # Exact, and in float16 beside a float16 exact index, so that the rows score as they
        # would in one index made anew from all of them.
        tail = _exact(int(base.d), flat_precision_of(base) or "fp32")
        if len(added):
            tail.add(np.ascontiguousarray(added, dtype=np.float32))
        return TailedIndex(base, tail)
    if mapped_from is not None:
        grown = faiss.read_index(str(mapped_from / DENSE_FILE))
    else:
        grown = faiss.clone_index(base)
    _add(grown, added)
    set_search_depth(grown)
    return grown


def _add(index: faiss.Index, vectors: np.ndarray) -> None:
    if len(vectors):
        # Searching runs on one OpenMP thread (qa.retrieval); building a graph uses them all.
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        try:
            index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        finally:
            faiss.omp_set_num_threads(threads)
