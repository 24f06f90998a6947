"""IVF-PQ, the FAISS index of large shards: built, re-ranked by the vectors it keeps (float16 by
default, or exact), searched (filtered too), grown in place, saved."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest

import qa.indexing.dense
from qa.indexing.dense import (
    IVF_NPROBE_MIN,
    IVF_REFINE_K_FACTOR,
    IVFPQ_M,
    faiss_kind,
    flat_precision_of,
    grow_dense_index,
    ivf_nprobe,
    make_dense_index,
    refine_of,
    set_search_depth,
)
from qa.retrieval import dense_search
from qa.settings import Settings
from qa.store import TailedIndex

REFINES = pytest.mark.parametrize("refine", ["fp16", "flat"])
#: How far a kept vector's cosine may be from the exact one (float16: about 1e-3 at worst).
TOLERANCE = {"fp16": 2e-3, "flat": 1e-6}


def _clustered(n: int, dim: int = 384, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((64, dim)).astype(np.float32)
    vectors = centres[rng.integers(0, 64, n)] + 0.5 * rng.standard_normal((n, dim))
    vectors = vectors.astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_too_few_vectors_to_train_make_an_exact_index() -> None:
    assert flat_precision_of(make_dense_index(_clustered(1_000), "ivfpq")) == "fp16"
    exact = make_dense_index(_clustered(1_000), "ivfpq", flat="fp32")
    assert isinstance(exact, faiss.IndexFlatIP)


def test_auto_switches_to_ivfpq_above_its_threshold() -> None:
    settings = Settings(hnsw_threshold=10, ivfpq_threshold=100)
    assert [faiss_kind(settings, n) for n in (10, 11, 100, 101)] == [
        "flat",
        "hnsw",
        "hnsw",
        "ivfpq",
    ]
    # By default: exact up to 50,000 vectors, HNSW up to 10^5, IVF-PQ above.
    assert [faiss_kind(Settings(), n) for n in (50_000, 50_001, 100_000, 100_001)] == [
        "flat",
        "hnsw",
        "hnsw",
        "ivfpq",
    ]


def test_a_query_scans_a_quarter_of_the_lists() -> None:
    assert [ivf_nprobe(lists) for lists in (16, 64, 500, 4_000, 65_536)] == [
        16,
        IVF_NPROBE_MIN,
        125,
        1_000,
        16_384,
    ]


def _recall(index: faiss.Index, exact: faiss.Index, queries: np.ndarray, k_factor: int) -> float:
    found = [{r for r, _ in dense_search(index, q, 10, k_factor=k_factor)} for q in queries]
    truth = [{r for r, _ in dense_search(exact, q, 10)} for q in queries]
    return float(np.mean([len(f & t) / 10 for f, t in zip(found, truth, strict=True)]))


@REFINES
def test_re_ranking_finds_more_of_the_exact_top_10(
    monkeypatch: pytest.MonkeyPatch, refine: str
) -> None:
    """A few thousand vectors (the index trains on fewer than it would in use): the codes'
    top 10 alone (``k_factor`` 1 re-ranks just those) against their top 100 re-ranked."""
    monkeypatch.setattr(qa.indexing.dense, "IVF_TRAIN_MIN", 2_000)
    vectors = _clustered(4_000, seed=2)
    index = make_dense_index(vectors, "ivfpq", refine)
    assert isinstance(index, faiss.IndexRefine) and refine_of(index) == refine
    queries = _clustered(30, seed=3)
    exact = make_dense_index(vectors, "flat", flat="fp32")
    codes_alone = _recall(index, exact, queries, k_factor=1)
    re_ranked = _recall(index, exact, queries, k_factor=IVF_REFINE_K_FACTOR)
    assert re_ranked > codes_alone
    assert re_ranked >= 0.95
    # Re-ranked cosines are those of the kept vectors: exact, or within float16's rounding.
    rows = dense_search(index, queries[0], 5)
    assert [s for _, s in rows] == pytest.approx(
        [float(vectors[r] @ queries[0]) for r, _ in rows], abs=TOLERANCE[refine]
    )
    # A filter of few rows scans them all in the kept vectors.
    few = np.zeros(len(vectors), dtype=bool)
    few[::400] = True
    found, expected = (
        dense_search(index, queries[0], 5, few),
        dense_search(exact, queries[0], 5, few),
    )
    assert [r for r, _ in found] == [r for r, _ in expected]
    assert [s for _, s in found] == pytest.approx([s for _, s in expected], abs=TOLERANCE[refine])


@REFINES
def test_ivfpq_finds_the_exact_top_10_and_filters(tmp_path: Path, refine: str) -> None:
    vectors = _clustered(20_000)
    index = make_dense_index(vectors, "ivfpq", refine)
    assert refine_of(index) == refine and index.k_factor == IVF_REFINE_K_FACTOR
    ivf = faiss.downcast_index(index.base_index)
    assert isinstance(ivf, faiss.IndexIVFPQ)
    assert index.ntotal == 20_000 and ivf.pq.M == IVFPQ_M and ivf.nprobe == ivf.nlist // 4
    queries = _clustered(20, seed=1)
    exact = make_dense_index(vectors, "flat", flat="fp32")
    # Queries drawn around other centres than the vectors', whose top 10 lie barely apart:
    # re-ranking found 0.91 of it here, more than the codes alone.
    re_ranked = _recall(index, exact, queries, IVF_REFINE_K_FACTOR)
    assert re_ranked > max(0.85, _recall(index, exact, queries, 1))
    # Rows reconstruct to their kept vectors (fusion gives BM25-only hits their cosine).
    np.testing.assert_allclose(index.reconstruct(5), vectors[5], atol=TOLERANCE[refine] / 4)
    if refine == "fp16":
        np.testing.assert_array_equal(index.reconstruct(5), vectors[5].astype(np.float16))

    allowed = np.zeros(20_000, dtype=bool)
    allowed[::7] = True
    rows = [r for r, _ in dense_search(index, queries[0], 10, allowed)]
    assert len(rows) == 10 and all(allowed[r] for r in rows)
    exact_allowed = [r for r, _ in dense_search(exact, queries[0], 10, allowed)]
    assert len(set(rows) & set(exact_allowed)) >= 8

    faiss.write_index(index, str(tmp_path / "dense.faiss"))
    again = faiss.read_index(str(tmp_path / "dense.faiss"))
    assert refine_of(again) == refine and again.k_factor == IVF_REFINE_K_FACTOR
    assert (tmp_path / "dense.faiss").stat().st_size < (900 if refine == "fp16" else 1_700) * 20_000
    assert faiss.extract_index_ivf(again).nprobe == ivf.nprobe
    assert [r for r, _ in dense_search(again, queries[0], 10)] == [
        r for r, _ in dense_search(index, queries[0], 10)
    ]
    # An index saved by an earlier release, searched shallower, is searched by today's rules.
    faiss.extract_index_ivf(again).nprobe = 32
    again.k_factor = 10
    set_search_depth(again)
    assert faiss.extract_index_ivf(again).nprobe == ivf.nprobe
    assert again.k_factor == IVF_REFINE_K_FACTOR


@REFINES
def test_an_update_in_place_grows_a_copy_of_the_ivfpq_index(
    monkeypatch: pytest.MonkeyPatch, refine: str
) -> None:
    """Past the exact tail's bound, new rows are encoded by the trained quantizers of a copy,
    kept exact for re-ranking; the live index, searched meanwhile, is left as it was."""
    monkeypatch.setattr(qa.indexing.dense, "IVF_TRAIN_MIN", 2_000)
    monkeypatch.setattr(qa.indexing.dense, "TAIL_MIN", 500)
    vectors = _clustered(4_000, seed=4)
    live = make_dense_index(vectors[:3_000], "ivfpq", refine)
    before = dense_search(live, vectors[10], 5)
    # Within the bound (500 rows beside 3,000): an exact tail beside the same index.
    tailed = grow_dense_index(live, vectors[3_000:3_400])
    assert isinstance(tailed, TailedIndex) and tailed.base is live and tailed.ntotal == 3_400
    assert tailed.tail.ntotal == 400 and refine_of(tailed) == refine
    np.testing.assert_array_equal(tailed.reconstruct(3_100), vectors[3_100])
    assert dense_search(tailed, vectors[3_399], 1) == [(3_399, pytest.approx(1.0, abs=1e-5))]
    both = tailed.reconstruct_batch(np.array([5, 3_200]))
    np.testing.assert_allclose(both, vectors[[5, 3_200]], atol=TOLERANCE[refine])
    # FAISS's own search over both parts: the exact tail's rows come back with their numbers.
    scores, rows = tailed.search(vectors[[3_050, 3_399]], 3)
    assert rows[:, 0].tolist() == [3_050, 3_399] and scores.shape == (2, 3)
    assert (np.diff(scores, axis=1) <= 0).all()
    # Past it: the tail and the new rows go into a copy of the index, the tail starts empty.
    grown = grow_dense_index(tailed, vectors[3_400:])
    assert not isinstance(grown, TailedIndex)
    assert live.ntotal == 3_000 and dense_search(live, vectors[10], 5) == before
    assert refine_of(grown) == refine and grown.ntotal == 4_000
    assert grown.k_factor == IVF_REFINE_K_FACTOR
    ivf = faiss.extract_index_ivf(grown)
    assert ivf.nprobe == ivf_nprobe(ivf.nlist) == faiss.extract_index_ivf(live).nprobe
    np.testing.assert_allclose(grown.reconstruct(3_500), vectors[3_500], atol=TOLERANCE[refine])
    # A new row is its own nearest neighbour, with its exact cosine.
    for row in (3_000, 3_999):
        best, cosine = dense_search(grown, vectors[row], 1)[0]
        assert best == row and cosine == pytest.approx(1.0, abs=TOLERANCE[refine])
    queries = _clustered(30, seed=5)
    exact = make_dense_index(vectors, "flat", flat="fp32")
    assert _recall(grown, exact, queries, IVF_REFINE_K_FACTOR) >= 0.95


def test_the_refine_setting_is_checked() -> None:
    assert Settings().ivfpq_refine == "fp16"
    with pytest.raises(ValueError, match="ivfpq_refine"):
        Settings(ivfpq_refine="sq4")  # type: ignore[arg-type]


def test_remaking_from_the_kept_float16_vectors_finds_what_the_first_build_found(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A compaction remakes an IVF-PQ index from its rows' reconstructed vectors, which the
    default ``fp16`` re-ranking keeps in half precision, not the embedder's float32: trained on
    those, the index finds the exact top 10 as well as one trained on the originals (float16
    rounds a unit vector's components by about 1e-4 of their size, far below what the codes
    lose), and ranks by the same kept vectors."""
    monkeypatch.setattr(qa.indexing.dense, "IVF_TRAIN_MIN", 2_000)
    vectors = _clustered(6_000, seed=6)
    first = make_dense_index(vectors, "ivfpq", "fp16")
    kept = first.reconstruct_n(0, first.ntotal)
    assert kept.dtype == np.float32 and not np.array_equal(kept, vectors)
    remade = make_dense_index(kept, "ivfpq", "fp16")
    np.testing.assert_array_equal(remade.reconstruct_n(0, remade.ntotal), kept)
    queries = _clustered(50, seed=7)
    exact = make_dense_index(vectors, "flat", flat="fp32")
    recall_first = _recall(first, exact, queries, IVF_REFINE_K_FACTOR)
    recall_remade = _recall(remade, exact, queries, IVF_REFINE_K_FACTOR)
    print(f"\nrecall@10: first build {recall_first:.3f}, remade from float16 {recall_remade:.3f}")
    assert recall_remade >= recall_first - 0.01
    assert recall_remade >= 0.95
