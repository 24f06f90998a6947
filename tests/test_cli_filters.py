"""`qa search` and `qa ask` with --where, --since and --until, through the real CLI."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from qa.cli import app
from qa.pipeline import QA
from qa.settings import Settings

from .conftest import SEED_CORPUS, SEED_IDS

pytestmark = pytest.mark.slow
runner = CliRunner()

LIAISON = "How many liaison officers would each side have had under the 1994 plan?"


@pytest.fixture(scope="module")
def foldered(tmp_path_factory: pytest.TempPathFactory, embedder) -> Settings:
    """The seed articles in two folders: ``liaison/`` (the liaison officers) and ``talks/``."""
    root = tmp_path_factory.mktemp("foldered")
    corpus = root / "corpus"
    for folder, name in zip(("liaison", "Talks"), SEED_IDS, strict=True):
        (corpus / folder).mkdir(parents=True)
        shutil.copy(SEED_CORPUS / name, corpus / folder / name)
    settings = Settings(corpus_dir=corpus, index_dir=root / "index", reader_model="none")
    QA(settings, embedder=embedder).build(show_progress=False)
    return settings


def run(settings: Settings, *args: str, code: int = 0) -> str:
    result = runner.invoke(
        app, [*args, "--index", str(settings.index_dir), "--corpus", str(settings.corpus_dir)]
    )
    assert result.exit_code == code, result.output
    return result.stdout if code == 0 else result.stderr


def test_search_where_folder(foldered: Settings) -> None:
    everywhere = json.loads(run(foldered, "search", LIAISON, "--k", "10", "--json"))
    assert {r["path"].split("/")[0] for r in everywhere["results"]} == {"liaison", "Talks"}
    assert "filter" not in everywhere
    only = json.loads(
        run(foldered, "search", LIAISON, "--k", "10", "--where", "folder=talks", "--json")
    )
    assert only["results"] and all(r["path"].startswith("Talks/") for r in only["results"])
    assert only["filter"] == {"where": {"folder": "talks"}, "since": None, "until": None}
    # The filtered search still returns k passages where the folder has them.
    talks_chunks = [r for r in everywhere["results"] if r["path"].startswith("Talks/")]
    assert len(only["results"]) >= len(talks_chunks)
    text = run(foldered, "search", LIAISON, "--where", "folder=liaison", "--where", "format=txt")
    assert text.startswith("(searched only: folder liaison, format txt)")


def test_search_by_date_finds_nothing_undated(foldered: Settings) -> None:
    out = run(foldered, "search", LIAISON, "--since", "2000-01-01", "--until", "2030-12-31")
    assert "searched only: since 2000-01-01, until 2030-12-31" in out
    assert "no matching chunks" in out  # the seed articles carry no date


def test_ask_where_folder(foldered: Settings) -> None:
    payload = json.loads(run(foldered, "ask", LIAISON, "--where", "folder=Talks", "--json"))
    assert payload["filter"]["where"] == {"folder": "talks"}
    assert payload["passages"] and all(p["path"].startswith("Talks/") for p in payload["passages"])
    assert all(a["path"].startswith("Talks/") for a in payload["answers"])
    liaison = json.loads(run(foldered, "ask", LIAISON, "--where", "folder=liaison", "--json"))
    assert liaison["answers"] and liaison["answers"][0]["path"].startswith("liaison/")
    text = run(foldered, "ask", LIAISON, "--where", "folder=liaison")
    assert text.startswith("(searched only: folder liaison)")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--where", "liaison"], "error: a condition must be KEY=VALUE"),
        (["--since", "2005-13-01"], "error: since must be a date YYYY-MM-DD, got '2005-13-01'"),
        (["--since", "2006-01-01", "--until", "2005-01-01"], "error: since 2006-01-01 is after"),
    ],
)
@pytest.mark.parametrize("command", ["search", "ask"])
def test_bad_filters_fail_with_one_line(
    foldered: Settings, command: str, options: list[str], message: str
) -> None:
    err = run(foldered, command, LIAISON, *options, code=1)
    assert err.startswith(message) and err.count("\n") == 1


def test_a_filter_on_an_index_of_files_at_the_root(seed_index_settings: Settings) -> None:
    """An index built without folders: folder= (the corpus root) keeps every document."""
    out = json.loads(run(seed_index_settings, "search", LIAISON, "--where", "folder=", "--json"))
    assert out["results"] and {r["path"] for r in out["results"]} <= set(SEED_IDS)
    none = json.loads(run(seed_index_settings, "search", LIAISON, "--where", "folder=x", "--json"))
    assert none["results"] == []
