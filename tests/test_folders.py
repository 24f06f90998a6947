"""Folders follow the user: the corpus, index and eval runs live under the current folder."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from qa.cli import _seed_if_new
from qa.evaluation import runner
from qa.settings import Settings

from .conftest import SEED_IDS


@pytest.fixture
def empty_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("QA_CORPUS_DIR", raising=False)
    monkeypatch.delenv("QA_INDEX_DIR", raising=False)
    return tmp_path


def test_default_folders_are_those_of_the_current_folder(empty_folder: Path) -> None:
    settings = Settings.from_env()
    assert settings.corpus_dir.resolve() == empty_folder / "corpus"
    assert settings.index_dir.resolve() == empty_folder / "index"


def test_environment_and_options_move_them(
    empty_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QA_CORPUS_DIR", "/data/articles")
    assert Settings.from_env().corpus_dir == Path("/data/articles")
    assert Settings.from_env(corpus_dir=Path("mine")).corpus_dir == Path("mine")


def test_a_new_folder_starts_from_the_seed_articles(
    empty_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _seed_if_new(Settings.from_env(), corpus_given=False)
    assert sorted(p.name for p in (empty_folder / "corpus").iterdir()) == sorted(SEED_IDS)
    assert "seed articles" in capsys.readouterr().err
    (empty_folder / "corpus" / SEED_IDS[0]).unlink()
    _seed_if_new(Settings.from_env(), corpus_given=False)  # a user's corpus is left alone
    assert [p.name for p in (empty_folder / "corpus").iterdir()] == [SEED_IDS[1]]


def test_a_named_corpus_folder_is_never_created(
    empty_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _seed_if_new(Settings.from_env(corpus_dir=Path("corpus")), corpus_given=True)
    monkeypatch.setenv("QA_CORPUS_DIR", "corpus")
    _seed_if_new(Settings.from_env(), corpus_given=False)
    assert not (empty_folder / "corpus").exists()


def test_eval_runs_go_under_the_current_folder(empty_folder: Path) -> None:
    run = SimpleNamespace(name="seed", started_at=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC))
    out = runner.default_out_dir(run)  # type: ignore[arg-type]
    assert out.resolve() == empty_folder / "eval" / "runs" / "seed-20250102T030405Z"


def test_no_git_revision_is_claimed_outside_a_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "SOURCE_DIR", tmp_path)
    assert runner.git_revision() is None


def test_calibrate_asks_for_an_out_folder_when_installed(
    empty_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from qa.cli import app

    monkeypatch.setattr(runner, "SOURCE_DIR", empty_folder)  # as in site-packages: no .git
    (empty_folder / "data").mkdir()
    (empty_folder / "val.json").write_text("{}", encoding="utf-8")
    result = CliRunner().invoke(
        app, ["calibrate", "--data", "data", "--file", "x.json", "--val", "val.json"]
    )
    assert result.exit_code == 1 and "give --out DIR" in result.stderr
