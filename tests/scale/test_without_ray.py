"""Without the scale extra, the ray engine says what to install (one line, no stack trace)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from qa.cli import app
from qa.scale import ScaleExtraMissing
from qa.settings import Settings
from tests.conftest import SEED_CORPUS


@pytest.fixture
def no_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails


@pytest.mark.parametrize("command", [["index", "--engine", "ray"], ["deploy"]])
def test_commands_name_the_extra(no_ray, tmp_path: Path, command: list[str]) -> None:
    args = [*command, "--index", str(tmp_path / "index")]
    if command[0] == "index":
        args += ["--corpus", str(SEED_CORPUS)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert "pip install 'qa[scale]'" in result.output
    assert not (tmp_path / "index").exists()


def test_asking_names_the_extra(no_ray, tmp_path: Path) -> None:
    from qa.pipeline import QA

    qa = QA(Settings(index_dir=tmp_path, engine="ray"))
    with pytest.raises(ScaleExtraMissing, match=r"qa\[scale\]"):
        qa.search("Who bought the brewery?")


def test_replicas_are_validated_in_settings_and_on_the_command_line(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="replicas must be positive"):
        Settings(replicas=0)
    assert Settings.from_env(replicas=3).replicas == 3
    result = CliRunner().invoke(app, ["deploy", "--replicas", "0", "--index", str(tmp_path)])
    assert result.exit_code == 2 and "--replicas" in result.output
