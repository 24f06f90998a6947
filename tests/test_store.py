from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from qa.indexing.build import build_index
from qa.indexing.persist import current_path, load_index
from qa.retrieval import Retriever
from qa.settings import Settings
from qa.store import IndexMismatchError, IndexMissingError
from qa.types import Document

from .conftest import HashEmbedder


def doc(doc_id: str, text: str) -> Document:
    return Document(
        doc_id=doc_id, title=doc_id.upper(), path=doc_id, text=text, content_hash=str(hash(text))
    )


TOPICS = {
    "a.txt": "Liaison officers would be exchanged. Up to seven officers in each capital. " * 3,
    "b.txt": "The summit in Hanoi ended without a deal. Sanctions relief was discussed. " * 3,
    "c.txt": "Missile tests continued through the summer. Satellite imagery showed a base. " * 3,
    "d.txt": "Football results: the home side won three goals to one in the rain. " * 3,
}


def settings_for(tmp_path: Path, **kw) -> Settings:
    return Settings(
        corpus_dir=tmp_path / "corpus",
        index_dir=tmp_path / "index",
        chunk_size=12,
        chunk_overlap=3,
        embedding_model="test",
        **kw,
    )


def load(settings: Settings):
    return load_index(settings, embedding_name=HashEmbedder.name)


def ranking(settings: Settings, query: str) -> list[tuple[str, int, int, float]]:
    index = load(settings)
    hits = Retriever(index, HashEmbedder(), settings).search(query, k=8)
    return [(p.chunk.doc_id, p.chunk.start, p.chunk.end, round(p.score, 6)) for p in hits]


def test_missing_index_says_how_to_build(tmp_path: Path) -> None:
    with pytest.raises(IndexMissingError, match="qa index"):
        load(settings_for(tmp_path))


def test_build_persists_aligned_chunks_and_manifest(
    tmp_path: Path, hash_embedder: HashEmbedder
) -> None:
    settings = settings_for(tmp_path)
    docs = [doc(k, v) for k, v in TOPICS.items()]
    report = build_index(settings, docs, hash_embedder, show_progress=False)
    index = load(settings)
    assert report.chunks == len(index.chunks) == index.dense.ntotal > len(docs)
    manifest = index.manifest
    assert manifest["embedding_model"] == HashEmbedder.name
    assert manifest["dimension"] == HashEmbedder.dimension
    assert manifest["chunking"]["chunk_size"] == 12
    assert manifest["documents"] == {d.doc_id: d.content_hash for d in docs}
    assert "built_at" in manifest
    vectors = index.vectors()
    for row, chunk in enumerate(index.chunks):
        assert index.documents[chunk.doc_id].text[chunk.start : chunk.end] == chunk.text
        # Held in float16 (``flat_precision``): within its rounding of a unit vector's parts.
        np.testing.assert_allclose(vectors[row], hash_embedder.encode([chunk.text])[0], atol=5e-4)


def test_mismatched_settings_are_refused_with_a_clear_message(
    tmp_path: Path, hash_embedder: HashEmbedder
) -> None:
    settings = settings_for(tmp_path)
    build_index(settings, [doc("a.txt", TOPICS["a.txt"])], hash_embedder, show_progress=False)
    with pytest.raises(IndexMismatchError, match="rebuild"):
        load(settings.replace(chunk_size=50))
    with pytest.raises(IndexMismatchError, match="embedding model"):
        load_index(settings, embedding_name="another-model")


class CountingEmbedder(HashEmbedder):
    def __init__(self) -> None:
        self.encoded: list[str] = []

    def encode(self, texts, *, progress=False):
        self.encoded.extend(texts)
        return super().encode(texts)


def test_incremental_update_embeds_only_changes_and_equals_rebuild(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    docs = {k: doc(k, v) for k, v in TOPICS.items() if k != "d.txt"}
    first = CountingEmbedder()
    build_index(settings, list(docs.values()), first, show_progress=False)

    docs["b.txt"] = doc(
        "b.txt", "The summit in Hanoi collapsed over sanctions. Talks ended early. " * 3
    )
    docs["d.txt"] = doc("d.txt", TOPICS["d.txt"])
    del docs["c.txt"]
    second = CountingEmbedder()
    report = build_index(settings, list(docs.values()), second, show_progress=False)
    assert (report.added, report.changed, report.removed) == (["d.txt"], ["b.txt"], ["c.txt"])
    assert not report.rebuilt
    assert all(t in docs["b.txt"].text or t in docs["d.txt"].text for t in second.encoded)
    assert report.embedded_chunks == len(second.encoded) < report.chunks

    queries = ["how many officers in each", "Hanoi sanctions", "football goals", "missile"]
    incremental = [ranking(settings, q) for q in queries]
    incremental_manifest = load(settings).manifest
    full = build_index(
        settings, list(docs.values()), CountingEmbedder(), rebuild=True, show_progress=False
    )
    assert full.rebuilt and full.embedded_chunks == full.chunks
    assert [ranking(settings, q) for q in queries] == incremental
    rebuilt_manifest = load(settings).manifest
    assert rebuilt_manifest["documents"] == incremental_manifest["documents"]
    assert all(t not in " ".join(r[0] for q in incremental for r in q) for t in ["c.txt"])


def test_unchanged_corpus_embeds_nothing(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    docs = [doc(k, v) for k, v in TOPICS.items()]
    build_index(settings, docs, HashEmbedder(), show_progress=False)
    again = CountingEmbedder()
    report = build_index(settings, docs, again, show_progress=False)
    assert again.encoded == [] and report.unchanged


def test_old_builds_are_pruned(tmp_path: Path, hash_embedder: HashEmbedder) -> None:
    settings = settings_for(tmp_path)
    for i in range(4):
        build_index(
            settings,
            [doc("a.txt", f"version {i} of the text.")],
            hash_embedder,
            rebuild=True,
            show_progress=False,
        )
    builds = sorted(p.name for p in (settings.index_dir / "builds").iterdir())
    assert len(builds) == 2
    assert current_path(settings.index_dir).resolve().name in builds


class SlowEmbedder(HashEmbedder):
    delay = 0.05  # per chunk, so the kill lands mid-embedding


def _slow_build(index_dir: str, corpus: list[tuple[str, str]]) -> None:
    settings = Settings(
        index_dir=Path(index_dir), chunk_size=12, chunk_overlap=3, embedding_model="test"
    )
    build_index(
        settings, [doc(k, v) for k, v in corpus], SlowEmbedder(), rebuild=True, show_progress=False
    )


def test_killed_build_leaves_previous_index_loadable(
    tmp_path: Path, hash_embedder: HashEmbedder
) -> None:
    settings = settings_for(tmp_path)
    build_index(
        settings, [doc(k, v) for k, v in TOPICS.items()], hash_embedder, show_progress=False
    )
    before = ranking(settings, "officers")
    big = [(f"n{i}.txt", f"Brand new article number {i} about trade. " * 20) for i in range(60)]
    ctx = mp.get_context("spawn")
    proc = ctx.Process(target=_slow_build, args=(str(settings.index_dir), big))
    proc.start()
    time.sleep(4.0)
    assert proc.is_alive(), "build finished before it could be killed; make it slower"
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    assert ranking(settings, "officers") == before
    assert set(load(settings).manifest["documents"]) == set(TOPICS)
    # The next build cleans up and succeeds.
    build_index(
        settings, [doc(k, v) for k, v in TOPICS.items()], hash_embedder, show_progress=False
    )
    assert not [p for p in (settings.index_dir / "builds").iterdir() if p.name.startswith(".tmp")]


def test_killed_while_writing_leaves_previous_index(
    tmp_path: Path, hash_embedder: HashEmbedder, monkeypatch
) -> None:
    settings = settings_for(tmp_path)
    build_index(settings, [doc("a.txt", TOPICS["a.txt"])], hash_embedder, show_progress=False)
    import qa.lexical

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(qa.lexical.LexicalIndex, "save", crash)
    with pytest.raises(OSError):
        build_index(
            settings, [doc(k, v) for k, v in TOPICS.items()], hash_embedder, show_progress=False
        )
    assert list(load(settings).manifest["documents"]) == ["a.txt"]


def test_empty_corpus_builds_an_empty_index(tmp_path: Path, hash_embedder: HashEmbedder) -> None:
    settings = settings_for(tmp_path)
    build_index(settings, [], hash_embedder, show_progress=False)
    index = load(settings)
    assert index.chunks == [] and Retriever(index, hash_embedder, settings).search("anything") == []


def test_hnsw_index_when_forced(tmp_path: Path, hash_embedder: HashEmbedder) -> None:
    settings = settings_for(tmp_path, faiss_index="hnsw")
    build_index(
        settings, [doc(k, v) for k, v in TOPICS.items()], hash_embedder, show_progress=False
    )
    index = load(settings)
    assert index.manifest["faiss_index"] == "hnsw"
    hits = Retriever(index, hash_embedder, settings).search("officers capital", k=3, mode="dense")
    assert hits[0].chunk.doc_id == "a.txt"
    manifest = json.loads(
        (current_path(settings.index_dir) / "manifest.json").read_text(encoding="utf-8")
    )
    assert manifest["chunks"] == len(index.chunks)


def test_qa_build_reads_and_embeds_only_the_added_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import qa.ingest
    from qa.pipeline import QA

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, text in TOPICS.items():
        if name != "d.txt":
            (corpus / name).write_text(text, encoding="utf-8")
    settings = settings_for(tmp_path).replace(corpus_dir=corpus)
    app = QA(settings, embedder=CountingEmbedder())
    first = app.build(show_progress=False)
    assert first.rebuilt and set(load(settings).manifest["files"]) == {"a.txt", "b.txt", "c.txt"}

    read: list[str] = []
    real = qa.ingest.load_file
    monkeypatch.setattr(
        qa.ingest, "load_file", lambda path, root: read.append(path.name) or real(path, root)
    )
    (corpus / "d.txt").write_text(TOPICS["d.txt"], encoding="utf-8")
    app = QA(settings, embedder=(counting := CountingEmbedder()))
    stages: dict[str, float] = {}
    report = app.build(show_progress=False, timings=stages)
    assert read == ["d.txt"]
    assert report.added == ["d.txt"] and not report.rebuilt
    assert counting.encoded and all(t in TOPICS["d.txt"] for t in counting.encoded)
    assert {"scan", "previous", "chunking", "embedding", "bm25", "write"} <= set(stages)
    # The answering side sees the new document at once, and it equals a full rebuild.
    assert app.index.path == current_path(settings.index_dir).resolve()
    queries = ["missile launch", "officers in each", "football goals"]
    incremental = [ranking(settings, q) for q in queries]
    assert any(hit[0] == "d.txt" for q in incremental for hit in q)
    read.clear()
    app.build(rebuild=True, show_progress=False)
    assert sorted(read) == ["a.txt", "b.txt", "c.txt", "d.txt"]  # --rebuild reads everything
    assert [ranking(settings, q) for q in queries] == incremental
