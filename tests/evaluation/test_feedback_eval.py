"""`qa eval --set <index>/feedback.jsonl`: marks made through the Python API, run as a set
against the seed index (real embedder, sentence extractor)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from qa.cli import app
from qa.feedback import FeedbackLog
from qa.pipeline import QA
from qa.settings import Settings

pytestmark = pytest.mark.slow

LIKED = "How many liaison officers would each side have had under the 1994 plan?"
OFF_TOPIC = "What is the capital of France?"


def test_feedback_runs_as_an_evaluation_set(
    seed_index_settings: Settings, embedder: object, tmp_path: Path
) -> None:
    qa = QA(seed_index_settings, embedder=embedder)
    log = FeedbackLog(tmp_path / "feedback.jsonl", index=lambda: qa.index)
    liked = qa.ask(LIKED, threshold=0.0)
    log.mark(liked, "right")  # the best answer becomes the reference
    log.mark(liked, "wrong")  # a negative: not part of the set
    log.mark(qa.ask(OFF_TOPIC, threshold=0.0), "no-answer")  # the corpus does not answer
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app,
        ["eval", "--set", str(log.path), "--index", str(seed_index_settings.index_dir)]
        + ["--reader", "none", "--out", str(out), "--json"],
        env={"QA_THRESHOLD": "0"},
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    # At threshold 0 the liked answer comes back exactly (EM 1) and the unanswerable question
    # is answered anyway (EM 0).
    assert summary["n"] == 2
    assert summary["em"] == pytest.approx(0.5)
    assert summary["recall_at_1"] == pytest.approx(1.0)
    predictions = [json.loads(line) for line in (out / "predictions.jsonl").open(encoding="utf-8")]
    assert [p["question"] for p in predictions] == [LIKED, OFF_TOPIC]
    assert predictions[0]["answer"] == liked.answers[0].text


def test_a_file_of_negatives_only_is_refused_with_a_reason(
    seed_index_settings: Settings, embedder: object, tmp_path: Path
) -> None:
    qa = QA(seed_index_settings, embedder=embedder)
    log = FeedbackLog(tmp_path / "feedback.jsonl", index=lambda: qa.index)
    log.mark(qa.ask(LIKED, threshold=0.0), "wrong")
    result = CliRunner().invoke(
        app, ["eval", "--set", str(log.path), "--index", str(seed_index_settings.index_dir)]
    )
    assert result.exit_code != 0
    assert "no questions" in result.output
