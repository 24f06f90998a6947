"""Synthetic vectors and recall for the scale benchmark, and the product's HNSW at small size."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.scale import measure_size, queries_near, recall_at, synthetic


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    rng = np.random.default_rng(7)
    # Anisotropic, off-centre "embeddings", as real ones are.
    raw = rng.standard_normal((500, 32)) * np.linspace(3, 0.1, 32) + 2.0
    return (raw / np.linalg.norm(raw, axis=1, keepdims=True)).astype(np.float32)


def test_synthetic_vectors_are_unit_reproducible_and_shaped_like_the_reference(
    reference: np.ndarray,
) -> None:
    data = synthetic(3000, reference, seed=3, chunk=1000)
    assert data.shape == (3000, 32) and data.dtype == np.float32
    assert np.allclose(np.linalg.norm(data, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(data, synthetic(3000, reference, seed=3, chunk=1000))
    mean = reference.mean(axis=0)
    cosine = data.mean(axis=0) @ mean / (np.linalg.norm(data.mean(axis=0)) * np.linalg.norm(mean))
    assert cosine > 0.95


def test_queries_lie_near_but_not_on_data_points(reference: np.ndarray) -> None:
    data = synthetic(2000, reference)
    queries = queries_near(data, 50)
    best = (queries @ data.T).max(axis=1)
    assert np.all(best < 0.9999) and np.median(best) > 0.8


def test_recall_at_counts_shared_ids() -> None:
    truth = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    found = np.array([[4, 3, 2, 1], [5, 9, 9, 9]])
    assert recall_at(found, truth, k=4) == pytest.approx((1.0 + 0.25) / 2)


def test_product_hnsw_matches_exact_search_at_small_size(reference: np.ndarray) -> None:
    fig = measure_size(3000, reference, n_queries=50, depth=50, ef_sweep=(64,))
    assert fig["flat"]["recall@10"] == 1.0
    assert fig["hnsw_product"]["recall@10"] >= 0.95
    assert {"p50_ms", "p95_ms"} <= fig["hnsw"]["ef64"].keys()


def test_exact_threshold_scales_the_budget_linearly() -> None:
    from benchmarks.scale import exact_threshold

    assert exact_threshold({10_000: 1.0, 100_000: 10.0}, budget_ms=5.0) == 50_000
    assert exact_threshold({10_000: 2.0}, budget_ms=5.0) == 20_000
    assert exact_threshold({10_000: 100.0}, budget_ms=5.0) == 10_000
