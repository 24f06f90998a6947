"""The benchmark workers run end to end on tiny inputs (real model: slow)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import SEED_CORPUS, SEED_IDS, needs_shared

pytestmark = pytest.mark.slow


def one_article_and_another(tmp_path: Path) -> tuple[Path, Path]:
    """A corpus of the first seed article, and the second held out to be added."""
    corpus = tmp_path / "corpus"
    (corpus / "seed").mkdir(parents=True)
    shutil.copyfile(SEED_CORPUS / SEED_IDS[0], corpus / "seed" / SEED_IDS[0])
    held_out = tmp_path / "held" / "seed" / SEED_IDS[1]
    held_out.parent.mkdir(parents=True)
    shutil.copyfile(SEED_CORPUS / SEED_IDS[1], held_out)
    return corpus, held_out


def test_build_worker_builds_adds_one_article_and_reports_memory(tmp_path: Path) -> None:
    from benchmarks.build import run_build

    corpus, held_out = one_article_and_another(tmp_path)
    fig = run_build(corpus, tmp_path / "index", [held_out])

    assert fig["documents"] == 1 and fig["add_one_documents"] == 2
    assert fig["chunks"] > 0 and fig["add_one_embedded_chunks"] > 0
    assert fig["build_chunks_per_s"] > 0 and fig["raw_encode_chunks_per_s"] > 0
    assert fig["peak_rss_mib"] >= fig["rss_after_model_mib"] > fig["rss_start_mib"]
    assert fig["index_bytes"] == sum(fig["index_parts_bytes"].values())
    assert fig["add_one_added"] == [f"seed/{SEED_IDS[1]}"]
    assert [a["article"] for a in fig["adds"]] == [f"seed/{SEED_IDS[1]}"]
    assert fig["sentences"] > fig["chunks"]
    assert set(fig["add_one_parts_s"]) >= {"scan", "previous", "embedding", "bm25", "write"}
    assert set(fig["build_stages_s"]) >= {"scan", "chunking", "embedding", "bm25", "write"}
    # The stages are parts of the update (each rounded to the millisecond).
    assert sum(fig["add_one_parts_s"].values()) <= fig["add_one_s"] + 0.01


def test_in_place_worker_adds_one_article_both_ways(tmp_path: Path) -> None:
    from benchmarks.build import in_place_worker

    corpus, article = one_article_and_another(tmp_path)
    fig = in_place_worker(corpus, tmp_path / "index", article, reps=1)

    assert fig["documents"] == 1 and fig["embedded_chunks"] > 0
    for way in ("in_place", "rebuild"):
        assert fig[way]["runs"] == 1
        assert 0 < fig[way]["beyond_embedding_s"] < fig[way]["s"]
        assert {"embedding", "faiss", "bm25", "sentences", "write"} <= set(fig[way])
    searched = fig["masked_search"]
    assert 0 < searched["masked_rows"] < searched["rows"] and searched["dense_masked_ms"] > 0


def test_dense_worker_grows_and_makes_the_same_index() -> None:
    from benchmarks.build import dense_worker

    fig = dense_worker(2000, "hnsw", added=5, reps=1, dim=32)
    assert fig["vectors"] == 2000 and fig["kind"] == "hnsw"
    assert fig["grow_s"] > 0 and fig["make_s"] > 0 and fig["write_s"] > 0
    assert fig["into_tail"]  # five rows beside 2,000: the exact tail


def test_onnx_embedder_agrees_with_the_torch_model(embedder) -> None:  # noqa: ANN001
    from benchmarks.onnx_embed import OnnxEmbedder, model_paths

    onnx = OnnxEmbedder(*model_paths(), batch_size=2)
    texts = [
        "Quarterly profits at US media giant TimeWarner jumped 76%.",
        "Short.",
        "The summit in Hanoi ended without a deal, and sanctions relief was left for later talks.",
    ]
    ours, theirs = embedder.encode(texts), onnx.encode(texts)
    assert theirs.shape == (3, 384)
    assert np.allclose(np.linalg.norm(theirs, axis=1), 1.0, atol=1e-5)
    assert np.all(np.sum(ours * theirs, axis=1) > 0.98)
    # Batching sorts by length; every row must still belong to its own text (the int8 copy
    # quantises activations with one scale per batch, so a batch's rows differ a little from
    # the texts' vectors alone).
    alone = np.stack([onnx.encode_query(t) for t in texts])
    similar = alone @ theirs.T
    assert list(similar.argmax(axis=1)) == [0, 1, 2] and np.all(np.diag(similar) > 0.98)


@pytest.mark.shared
def test_scale_add_tiles_bbc_builds_with_synthetic_vectors_and_adds_in_place(
    tmp_path: Path,
) -> None:
    from benchmarks.scale_add import SyntheticEmbedder, held_out_articles, run, tile_corpus

    needs_shared("data", "bbc-news")
    out = run(tmp_path, files=30, adds=2)
    assert out["documents"] == 30 and out["chunks"] > 60 and out["faiss_kind"] == "flat"
    # Each article added two ways in turn, taken out again between them.
    assert [a["how"] for a in out["adds"]] == ["whole", "listed"] * 2
    assert [a["in_place"] for a in out["adds"]] == [True] * 4
    for added in out["adds"]:
        assert added["embedded_chunks"] > 0
        assert 0 < added["beyond_embedding_s"] < added["s"]
    assert out["add_whole_beyond_embedding_median_s"] > 0
    assert out["add_listed_beyond_embedding_median_s"] > 0
    # Run again over the same work folder: the build is reused, the articles added again.
    again = run(tmp_path, files=30, adds=2)
    assert (
        "build_s" not in again and [a["embedded_chunks"] > 0 for a in again["adds"]] == [True] * 4
    )
    assert again["documents"] == 32
    # Another number of adds holds out other articles: the folder is not tiled a second time.
    other = run(tmp_path, files=30, adds=1)
    assert "files_written" not in other and len(list((tmp_path / "corpus").glob("0000/*"))) == 30
    # Tiling again writes nothing; copies are documents of their own (a first line names each).
    sources, held = held_out_articles(2)
    assert not set(held) & set(sources)
    assert tile_corpus(sources, tmp_path / "corpus", 30) == 0
    copies = sorted((tmp_path / "corpus").glob("0000/*"))
    assert len(copies) == 30 and len({p.read_text(encoding="utf-8")[:12] for p in copies[:3]}) == 3
    vectors = SyntheticEmbedder().encode(["a", "b", "c"])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)


def test_early_stop_reads_one_text_at_zero_and_every_text_at_one(tmp_path: Path) -> None:
    from benchmarks.early_stop import measure
    from tests.evaluation.test_cli_eval import CHESS, ETNA, WHALE

    def article(title: str, context: str, qid: str, question: str, answer: str) -> dict:
        start = context.index(answer)
        qa = {"id": qid, "question": question, "answers": [{"text": answer, "answer_start": start}]}
        return {"title": title, "paragraphs": [{"context": context, "qas": [qa]}]}

    squad = tmp_path / "tiny.json"
    data = [
        article("Whale", WHALE, "w", "What is the largest animal?", "blue whale"),
        article("Etna", ETNA, "e", "On which island is Mount Etna?", "Sicily"),
        article("Chess", CHESS, "c", "How many players does chess have?", "two"),
    ]
    squad.write_text(json.dumps({"version": "1.1", "data": data}), encoding="utf-8")
    rows = measure(squad, [1.0, 0.0], windows=[192, 256], without=0.0)
    assert list(rows) == [(1.0, 192), (0.0, 192), (1.0, 256), (0.0, 256)]
    # Three one-paragraph articles: every question's three passages are three texts.
    assert rows[(1.0, 192)]["texts_read"] == 3.0 and rows[(0.0, 192)]["texts_read"] == 1.0
    # Each short paragraph is one window, whatever the window length.
    assert rows[(1.0, 192)]["windows_read"] == rows[(1.0, 256)]["windows_read"] == 3.0
    assert rows[(0.0, 256)]["windows_read"] == 1.0
    for row in rows.values():
        assert row["questions"] == 3 and 0.0 <= row["f1"] <= 1.0
        assert row["reader_ms_p50"] > 0
