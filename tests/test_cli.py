"""The `qa index | search | doc` commands on the seed corpus, through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from qa.cli import app

pytestmark = pytest.mark.slow
runner = CliRunner()

LIAISON_QUESTION = "How many liaison officers were to be exchanged in 1994?"


@pytest.fixture(scope="module")
def seed_index(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from .conftest import SEED_CORPUS

    index = tmp_path_factory.mktemp("index")
    result = runner.invoke(
        app, ["index", "--corpus", str(SEED_CORPUS), "--index", str(index), "--json"]
    )
    assert result.exit_code == 0, result.output
    return SEED_CORPUS, index


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_search_finds_the_seven_officers_chunk_first(seed_index: tuple[Path, Path]) -> None:
    corpus, index = seed_index
    out = json.loads(
        invoke("search", LIAISON_QUESTION, "--corpus", str(corpus), "--index", str(index), "--json")
    )
    assert out["query"] == LIAISON_QUESTION
    top = out["results"][0]
    assert "up to seven officers in each" in top["text"]
    assert top["doc_id"] == "000_4b3a89178ec270f5.txt" and top["title"] == "Round two"
    assert set(top) == {"doc_id", "title", "path", "start", "end", "text", "score"}
    doc = json.loads(
        invoke("doc", top["doc_id"], "--corpus", str(corpus), "--index", str(index), "--json")
    )
    assert doc["text"][top["start"] : top["end"]] == top["text"]
    assert {"doc_id", "title", "path", "text"} <= set(doc)


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_search_modes_and_k(seed_index: tuple[Path, Path], mode: str) -> None:
    corpus, index = seed_index
    out = json.loads(
        invoke(
            "search",
            "Panmunjom working-level talks",
            "--k",
            "2",
            "--mode",
            mode,
            "--corpus",
            str(corpus),
            "--index",
            str(index),
            "--json",
        )
    )
    assert len(out["results"]) == 2
    assert "Panmunjom" in out["results"][0]["text"]


def test_human_readable_search_and_doc(seed_index: tuple[Path, Path]) -> None:
    corpus, index = seed_index
    out = invoke(
        "search", LIAISON_QUESTION, "--k", "1", "--corpus", str(corpus), "--index", str(index)
    )
    assert out.startswith("1. [") and "Round two" in out and "up to seven officers" in out
    out = invoke("doc", "003_bd4e093a9656d3e9.txt", "--corpus", str(corpus), "--index", str(index))
    assert "Mark Fitzpatrick" in out and "\\u003c" not in out


def test_indexing_builds_the_question_time_models_into_the_cache(
    seed_index: tuple[Path, Path], query_encoder_cache: Path
) -> None:
    from qa.models import export_query_encoder
    from qa.reading.onnx_reader import DEFAULT_PRECISION, reader_file

    # The session's cache: other tests may have built the other precisions into it too.
    built = {p.parent.parent.name for p in query_encoder_cache.glob("*/*/*.onnx.sha256")}
    assert {f"minilm-{export_query_encoder.auto_precision()}", "reader-onnx"} <= built
    assert reader_file(DEFAULT_PRECISION).is_relative_to(query_encoder_cache)


def test_second_index_run_reuses_everything(seed_index: tuple[Path, Path]) -> None:
    corpus, index = seed_index
    out = json.loads(invoke("index", "--corpus", str(corpus), "--index", str(index), "--json"))
    assert out["embedded_chunks"] == 0 and out["documents"] == 2


def test_errors_are_one_line_messages(tmp_path: Path, seed_index: tuple[Path, Path]) -> None:
    result = runner.invoke(app, ["search", "anything", "--index", str(tmp_path / "none")])
    assert result.exit_code == 1
    assert "qa index" in result.stderr and "Traceback" not in result.output
    corpus, index = seed_index
    result = runner.invoke(
        app, ["doc", "missing.txt", "--corpus", str(corpus), "--index", str(index)]
    )
    assert result.exit_code == 1 and "no document 'missing.txt'" in result.stderr
    result = runner.invoke(
        app, ["index", "--corpus", str(tmp_path / "nope"), "--index", str(tmp_path / "i")]
    )
    assert result.exit_code == 1 and "does not exist" in result.stderr


def test_unfetchable_hub_model_fails_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from .conftest import SEED_CORPUS

    monkeypatch.setenv("QA_EMBEDDING_MODEL", "sentence-transformers/no-such-model-here")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = runner.invoke(
        app, ["index", "--corpus", str(SEED_CORPUS), "--index", str(tmp_path / "i")]
    )
    assert result.exit_code == 1
    assert "cannot load embedding model" in result.stderr and "local folder" in result.stderr
    assert "Traceback" not in result.output


def test_index_only_updates_for_the_files_named(
    tmp_path: Path, seed_index: tuple[Path, Path]
) -> None:
    import shutil

    corpus, index = tmp_path / "corpus", tmp_path / "index"
    shutil.copytree(seed_index[0], corpus)
    invoke("index", "--corpus", str(corpus), "--index", str(index), "--json")
    (corpus / "note.txt").write_text(
        "Short note\n\nThe ferry to Gleebworth sails at noon.", encoding="utf-8"
    )
    (corpus / "later.txt").write_text("Later\n\nNot named, so not indexed yet.", encoding="utf-8")
    out = json.loads(
        invoke(
            "index",
            "--corpus",
            str(corpus),
            "--index",
            str(index),
            "--json",
            "--only",
            str(corpus / "note.txt"),
        )
    )
    assert out["added"] == ["note.txt"] and out["documents"] == 3 and out["in_place"]
    for extra, message in (
        (["--rebuild"], "not with --rebuild"),
        ([], "not a file of the corpus folder"),
    ):
        result = runner.invoke(
            app,
            [
                "index",
                "--corpus",
                str(corpus),
                "--index",
                str(index),
                "--only",
                str(tmp_path / "elsewhere.txt"),
                *extra,
            ],
        )
        assert result.exit_code == 1 and message in result.stderr, result.output
