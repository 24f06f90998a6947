"""The sharded search without a cluster: partition, per-shard search and fusion against the
single index (no ray needed)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from qa.indexing.build import build_index
from qa.retrieval import Retriever
from qa.scale.layout import ShardedLayout, shard_folder, shard_of
from qa.scale.shard import (
    corpus_statistics,
    fuse,
    reading_context,
    search_shard,
    statistics_terms,
)
from qa.settings import Settings
from qa.types import Document

WORDS = (
    "summit talks trade brewery market election vote court river storm league goal film "
    "album chip phone bank shares oil price minister budget school police museum"
).split()


def _documents(n: int) -> list[Document]:
    """Documents of five sentences of words drawn at random (seeded): distinct vectors, so
    exact search has no ties to order differently."""
    rng = random.Random(7)
    docs = []
    for i in range(n):
        sentences = [" ".join(rng.choices(WORDS, k=8)) for _ in range(5)]
        text = ". ".join(sentences) + "."
        docs.append(Document(f"doc-{i:02d}", f"Title {i}", f"doc-{i:02d}.txt", text, f"h{i}"))
    return docs


def test_shard_of_is_stable_and_spreads_documents() -> None:
    ids = [f"bbc/business/{i:03d}.txt" for i in range(400)]
    shards = [shard_of(doc_id, 4) for doc_id in ids]
    assert shards == [shard_of(doc_id, 4) for doc_id in ids]
    assert all(70 < shards.count(s) < 130 for s in range(4))
    assert {shard_of(doc_id, 1) for doc_id in ids} == {0}
    # A value fixed once: a different hash would move every document between builds.
    assert shard_of("000_4b3a89178ec270f5.txt", 2) == shard_of("000_4b3a89178ec270f5.txt", 2)


def test_one_shard_is_the_single_index_folder(tmp_path: Path) -> None:
    assert shard_folder(0, 1) == "."
    layout = ShardedLayout.of(tmp_path, 3, "model", 8)
    assert layout.path(2) == tmp_path / "shards/002-of-003"
    layout.save([1, 2, 3])
    assert ShardedLayout.load(tmp_path) == layout
    with pytest.raises(FileNotFoundError, match="qa index --engine ray"):
        ShardedLayout.load(tmp_path / "elsewhere")


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_fused_shards_against_the_single_index(tmp_path: Path, hash_embedder, mode) -> None:
    """Dense and lexical: the same passages as one index, with the same scores (dense search
    is exact; BM25 scores under the statistics gathered from every shard). Hybrid: every
    passage is a chunk of the corpus with its cosine (its ranks, and so its fused scores,
    depend on how each list orders equal scores, which these few words make common)."""
    docs = _documents(24)
    base = Settings(index_dir=tmp_path / "single", chunk_size=12, chunk_overlap=3)
    single = build_index(base, docs, hash_embedder, show_progress=False).index
    shards = []
    for s in range(3):
        mine = [d for d in docs if shard_of(d.doc_id, 3) == s]
        settings = base.replace(index_dir=tmp_path / f"shard-{s}")
        shards.append(build_index(settings, mine, hash_embedder, show_progress=False).index)
    assert sum(len(s.chunks) for s in shards) == len(single.chunks)

    for query in ["oil price budget", "league goal film", "police museum school"]:
        vector = hash_embedder.encode_query(query)
        statistics = corpus_statistics(shards, query, mode)
        assert (statistics is None) == (mode == "dense")
        hits = [
            search_shard(i, s, query, vector, 50, mode, statistics=statistics)
            for i, s in enumerate(shards)
        ]
        fused = fuse(hits, 5, 50, mode, base)
        expected = Retriever(single, hash_embedder, base).search(query, k=5, mode=mode)
        assert len(fused) == len(expected) == 5
        if mode != "hybrid":
            # The whole list (depth 50): the same scores place by place, and the same chunks
            # above the last score (chunks of equal score may come in another order).
            ours = fuse(hits, 50, 50, mode, base)
            theirs = Retriever(single, hash_embedder, base).search(query, k=50, mode=mode)
            assert [p.score for p in ours] == pytest.approx([p.score for p in theirs])
            cutoff = theirs[-1].score + 1e-6
            assert {p.chunk.chunk_id for p in ours if p.score > cutoff} == {
                p.chunk.chunk_id for p in theirs if p.score > cutoff
            }
        by_id = {c.chunk_id: c for c in single.chunks}
        for p in fused:
            assert by_id[p.chunk.chunk_id] == p.chunk
            assert p.dense_score is not None
        if mode == "lexical":
            assert all(p.lexical_score == p.score for p in fused)


def test_search_shard_keeps_to_the_filter(tmp_path: Path, hash_embedder) -> None:
    from qa.filters import Filter

    docs = _documents(6)
    index = build_index(
        Settings(index_dir=tmp_path, chunk_size=12, chunk_overlap=3),
        docs,
        hash_embedder,
        show_progress=False,
    ).index
    only = Filter.parse(where=["path=doc-03.txt"])
    hits = search_shard(
        0, index, "oil price", hash_embedder.encode_query("oil price"), 50, "hybrid", only
    )
    assert hits.chunks and {c.doc_id for c in hits.chunks.values()} == {"doc-03"}
    context = reading_context(index, ["doc-03", "missing"])
    assert list(context.documents) == ["doc-03"]
    spans, vectors = context.sentences["doc-03"]
    assert len(spans) == len(vectors) > 0


def test_one_shard_gathers_no_statistics() -> None:
    """One shard searches as the single index it is (bm25s's own search), with no round trip;
    more shards gather the statistics of the question's BM25 terms unless the mode is dense."""
    assert statistics_terms("oil price budget", "hybrid", 1) == []
    assert statistics_terms("oil price budget", "dense", 4) == []
    assert statistics_terms("The oil price", "lexical", 2) == ["oil", "price"]
