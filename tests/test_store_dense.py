"""The dense index choice: exact below ``hnsw_threshold``, HNSW above, and HNSW's recall; the
exact index in float16 or float32."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest

from qa.indexing.build import build_index
from qa.indexing.dense import (
    HNSW_EF_SEARCH,
    faiss_kind,
    flat_precision_of,
    hnsw_ef_search,
    make_dense_index,
)
from qa.indexing.persist import load_index
from qa.settings import Settings
from qa.types import Document

from .conftest import HashEmbedder


def test_auto_is_exact_up_to_the_threshold_and_hnsw_above() -> None:
    settings = Settings(hnsw_threshold=1000)
    assert faiss_kind(settings, 1000) == "flat"
    assert faiss_kind(settings, 1001) == "hnsw"
    assert faiss_kind(settings.replace(faiss_index="flat"), 10**7) == "flat"
    assert faiss_kind(settings.replace(faiss_index="hnsw"), 10) == "hnsw"


def test_hnsw_searches_deeper_than_retrieval_asks() -> None:
    # efSearch below the number of candidates would silently return fewer of them.
    assert HNSW_EF_SEARCH >= Settings().candidates
    index = make_dense_index(np.eye(4, 8, dtype=np.float32), "hnsw")
    assert isinstance(index, faiss.IndexHNSWFlat)
    assert index.hnsw.efSearch == HNSW_EF_SEARCH and index.ntotal == 4


def test_hnsw_finds_what_exact_search_finds() -> None:
    data, queries = _clustered(4000, 64)
    _, exact = make_dense_index(data, "flat", flat="fp32").search(queries, 10)
    _, approx = make_dense_index(data, "hnsw").search(queries, 10)
    recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx, exact, strict=True)])
    assert recall >= 0.95


def _clustered(n: int, dim: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors on a few topics, as embeddings of texts are, and queries near some."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((40, dim))
    data = centres[rng.integers(0, 40, n)] + 0.6 * rng.standard_normal((n, dim))
    data = (data / np.linalg.norm(data, axis=1, keepdims=True)).astype(np.float32)
    queries = data[:100] + 0.05 * rng.standard_normal((100, dim)).astype(np.float32)
    return data, queries / np.linalg.norm(queries, axis=1, keepdims=True)


def test_the_exact_index_holds_float16_by_default_and_ranks_as_float32() -> None:
    data, queries = _clustered(4000, 64)
    half = make_dense_index(data, "flat")
    full = make_dense_index(data, "flat", flat="fp32")
    assert isinstance(half, faiss.IndexScalarQuantizer) and flat_precision_of(half) == "fp16"
    assert isinstance(full, faiss.IndexFlatIP) and flat_precision_of(full) == "fp32"
    assert flat_precision_of(make_dense_index(data[:10], "hnsw")) is None
    assert half.sa_code_size() == 2 * 64  # two bytes a dimension
    np.testing.assert_allclose(half.reconstruct_n(0, 4000), data, atol=1e-3)
    half_scores, half_rows = half.search(queries, 10)
    full_scores, full_rows = full.search(queries, 10)
    np.testing.assert_allclose(half_scores, full_scores, atol=2e-3)
    recall = np.mean([len(set(h) & set(f)) / 10 for h, f in zip(half_rows, full_rows, strict=True)])
    assert recall >= 0.99, recall
    assert Settings().flat_precision == "fp16"
    with pytest.raises(ValueError, match="flat_precision"):
        Settings(flat_precision="bf16")  # type: ignore[arg-type]


def test_auto_switches_to_hnsw_in_a_real_build(tmp_path: Path, hash_embedder: HashEmbedder) -> None:
    settings = Settings(
        corpus_dir=tmp_path / "corpus",
        index_dir=tmp_path / "index",
        chunk_size=12,
        chunk_overlap=3,
        embedding_model="test",
        hnsw_threshold=2,
    )
    text = "Officers were exchanged between the capitals. " * 6
    docs = [
        Document(doc_id=f"{i}.txt", title=str(i), path=f"{i}.txt", text=text, content_hash=str(i))
        for i in range(3)
    ]
    build_index(settings, docs, hash_embedder, show_progress=False)
    index = load_index(settings, embedding_name=HashEmbedder.name)
    assert index.manifest["faiss_index"] == "hnsw"
    assert isinstance(index.dense, faiss.IndexHNSW)
    assert index.dense.hnsw.efSearch == hnsw_ef_search(index.dense.ntotal) == HNSW_EF_SEARCH


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_empty_vectors_make_an_empty_index(kind: str) -> None:
    assert make_dense_index(np.zeros((0, 16), dtype=np.float32), kind).ntotal == 0


def test_ef_search_grows_with_the_graph() -> None:
    sizes = [1_000, 100_000, 200_000, 300_000, 1_000_000, 5_000_000]
    efs = [hnsw_ef_search(n) for n in sizes]
    assert efs == sorted(efs) and efs[0] == HNSW_EF_SEARCH and efs[-1] == 4 * HNSW_EF_SEARCH
