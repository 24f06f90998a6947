"""IVF-PQ, the compressed FAISS index of large shards: built, searched (filtered too), saved."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

from qa.indexing.dense import IVF_NPROBE, IVFPQ_M, faiss_kind, make_dense_index
from qa.retrieval import dense_search
from qa.settings import Settings


def _clustered(n: int, dim: int = 384, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((64, dim)).astype(np.float32)
    vectors = centres[rng.integers(0, 64, n)] + 0.5 * rng.standard_normal((n, dim))
    vectors = vectors.astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_too_few_vectors_to_train_make_an_exact_index() -> None:
    assert isinstance(make_dense_index(_clustered(1_000), "ivfpq"), faiss.IndexFlatIP)


def test_auto_switches_to_ivfpq_above_its_threshold() -> None:
    settings = Settings(hnsw_threshold=10, ivfpq_threshold=100)
    assert [faiss_kind(settings, n) for n in (10, 11, 100, 101)] == [
        "flat",
        "hnsw",
        "hnsw",
        "ivfpq",
    ]


def test_ivfpq_finds_most_of_the_exact_top_10_and_filters(tmp_path: Path) -> None:
    vectors = _clustered(20_000)
    index = make_dense_index(vectors, "ivfpq")
    assert isinstance(index, faiss.IndexIVFPQ)
    assert index.ntotal == 20_000 and index.pq.M == IVFPQ_M and index.nprobe == IVF_NPROBE
    queries = _clustered(20, seed=1)
    exact = make_dense_index(vectors, "flat")
    found = [{r for r, _ in dense_search(index, q, 10)} for q in queries]
    truth = [{r for r, _ in dense_search(exact, q, 10)} for q in queries]
    recall = np.mean([len(f & t) / 10 for f, t in zip(found, truth, strict=True)])
    assert recall > 0.3  # chance: 0.0005; quality is measured in benchmarks/ray_scale.py
    # Rows can be reconstructed (fusion scores BM25-only hits), approximately.
    assert float(index.reconstruct(5) @ vectors[5]) > 0.9

    allowed = np.zeros(20_000, dtype=bool)
    allowed[::7] = True
    rows = [r for r, _ in dense_search(index, queries[0], 10, allowed)]
    assert len(rows) == 10 and all(allowed[r] for r in rows)

    faiss.write_index(index, str(tmp_path / "dense.faiss"))
    again = faiss.read_index(str(tmp_path / "dense.faiss"))
    assert [r for r, _ in dense_search(again, queries[0], 10)] == [
        r for r, _ in dense_search(index, queries[0], 10)
    ]
