"""`qa eval` end to end with the real packaged embedder and the sentence extractor."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from qa.cli import app

pytestmark = pytest.mark.slow
runner = CliRunner()

REPO = Path(__file__).resolve().parents[2]
SUMMARY_KEYS = {
    "em",
    "f1",
    "sentence_hit",
    "recall_at_1",
    "recall_at_5",
    "recall_at_10",
    "mrr",
    "abstain_precision",
    "abstain_recall",
    "p50_ms",
    "p95_ms",
    "n",
}

# Three paragraphs on unrelated subjects; each question shares its distinctive words with one
# sentence only, so the sentence extractor's answer is that sentence whatever its exact scores.
WHALE = (
    "The blue whale is the largest animal known to have ever existed. "
    "An adult blue whale can reach a length of 30 metres. "
    "Blue whales feed almost exclusively on krill."
)
ETNA = (
    "Mount Etna is an active volcano on the east coast of Sicily. "
    "Its most recent major eruption began in 2021."
)
CHESS = "Chess is a board game for two players. Each player begins with sixteen pieces."

# (question, reference, the sentence that must be the answer, its F1 against the reference).
# F1 by hand: the reference is one or two tokens, all inside the sentence, so recall is 1 and
# precision is (reference tokens) / (sentence tokens after dropping punctuation and articles).
EXPECTED = {
    "q1": (
        "What do blue whales feed on?",
        "krill",
        "Blue whales feed almost exclusively on krill.",
        2 * (1 / 7) / (1 / 7 + 1),
    ),
    "q2": (
        "What length can an adult blue whale reach?",
        "30 metres",
        "An adult blue whale can reach a length of 30 metres.",
        2 * (2 / 9) / (2 / 9 + 1),
    ),
    "q3": (
        "On which island is Mount Etna?",
        "Sicily",
        "Mount Etna is an active volcano on the east coast of Sicily.",
        2 * (1 / 10) / (1 / 10 + 1),
    ),
    "q4": (
        "When did the most recent major eruption begin?",
        "2021",
        "Its most recent major eruption began in 2021.",
        2 * (1 / 8) / (1 / 8 + 1),
    ),
    "q5": (
        "How many pieces does each player begin with?",
        "sixteen",
        "Each player begins with sixteen pieces.",
        2 * (1 / 6) / (1 / 6 + 1),
    ),
}
GOLD = {
    "q1": "Blue whale#0",
    "q2": "Blue whale#0",
    "q3": "Mount Etna#0",
    "q4": "Mount Etna#0",
    "q5": "Chess#0",
}


def _qa(qid: str, context: str) -> dict[str, object]:
    question, reference, _, _ = EXPECTED[qid]
    start = context.index(reference)
    return {
        "id": qid,
        "question": question,
        "is_impossible": False,
        "answers": [{"text": reference, "answer_start": start}],
    }


@pytest.fixture(scope="module")
def squad_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = {
        "version": "v2.0",
        "data": [
            {
                "title": "Blue_whale",
                "paragraphs": [{"context": WHALE, "qas": [_qa("q1", WHALE), _qa("q2", WHALE)]}],
            },
            {
                "title": "Mount_Etna",
                "paragraphs": [
                    {
                        "context": ETNA,
                        "qas": [
                            _qa("q3", ETNA),
                            _qa("q4", ETNA),
                            {
                                "id": "q6",
                                "question": "What is the capital of France?",
                                "is_impossible": True,
                                "answers": [],
                                "plausible_answers": [{"text": "Sicily", "answer_start": 50}],
                            },
                        ],
                    }
                ],
            },
            {"title": "Chess", "paragraphs": [{"context": CHESS, "qas": [_qa("q5", CHESS)]}]},
        ],
    }
    path = tmp_path_factory.mktemp("squad") / "tiny-v2.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def squad_run(squad_file: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("run")
    untouched = out / "no-index-here"
    env = {"QA_THRESHOLD": "0", "QA_INDEX_DIR": str(untouched)}
    result = runner.invoke(
        app,
        ["eval", "--squad", str(squad_file), "--reader", "none", "--out", str(out), "--json"],
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert not untouched.exists()  # the open corpus lives in a temporary index
    return json.loads(result.stdout), out


def test_json_prints_exactly_the_summary_keys(squad_run: tuple[dict, Path]) -> None:
    summary, _ = squad_run
    assert set(summary) == SUMMARY_KEYS
    assert all(isinstance(v, float) for k, v in summary.items() if k != "abstain_precision")


def test_metrics_match_the_hand_computed_values(squad_run: tuple[dict, Path]) -> None:
    summary, out = squad_run
    rows = {r["id"]: r for r in map(json.loads, (out / "predictions.jsonl").open(encoding="utf-8"))}
    for qid, (_, _, sentence, f1) in EXPECTED.items():
        assert rows[qid]["answer"] == sentence, qid
        assert rows[qid]["gold_rank"] == 1 and rows[qid]["sentence_hit"] is True
        assert rows[qid]["f1"] == pytest.approx(f1)
    assert rows["q6"]["answer"] is not None and rows["q6"]["f1"] == 0.0  # threshold 0: answers

    expected_f1 = sum(f1 for *_, f1 in EXPECTED.values()) / 6
    assert summary["n"] == 6.0
    assert summary["em"] == 0.0  # a whole sentence never equals a short reference
    assert summary["f1"] == pytest.approx(expected_f1)
    assert summary["sentence_hit"] == 1.0
    assert summary["recall_at_1"] == summary["recall_at_10"] == summary["mrr"] == 1.0
    assert summary["abstain_precision"] is None  # nothing abstained at threshold 0
    assert summary["abstain_recall"] == 0.0
    assert 0 < summary["p50_ms"] <= summary["p95_ms"]

    details = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert details["index"]["documents"] == 3 and details["mode"] == "sentence"
    assert details["threshold"]["in_use"] == 0.0
    # The off-topic question's best sentence scores below every right answer, so the best
    # threshold abstains on it alone: F1 gains its 1.
    best = details["metrics_at_recommended"]
    assert best["f1"] == pytest.approx(expected_f1 + 1 / 6)
    assert best["abstain_precision"] == best["abstain_recall"] == 1.0
    assert best["f1_gold_passage"] == pytest.approx(sum(f1 for *_, f1 in EXPECTED.values()) / 5)


def test_run_folder_has_the_report_and_chart(squad_run: tuple[dict, Path]) -> None:
    _, out = squad_run
    report = (out / "report.md").read_text(encoding="utf-8")
    for heading in (
        "## Settings",
        "## Overall",
        "## By question type",
        "## Threshold sweep",
        "## Worst misses",
    ):
        assert heading in report
    assert "QA_THRESHOLD" in report  # says where the threshold in use came from
    assert (out / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_seed_set_against_an_index_and_threshold_guard(tmp_path: Path) -> None:
    index = tmp_path / "index"
    built = runner.invoke(
        app, ["index", "--corpus", str(REPO / "corpus"), "--index", str(index), "--json"]
    )
    assert built.exit_code == 0, built.output
    args = [
        "eval",
        "--reader",
        "none",
        "--index",
        str(index),
        "--limit",
        "4",
        "--out",
        str(tmp_path / "run"),
        "--json",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["n"] == 4.0 and set(summary) == SUMMARY_KEYS
    rows = [
        json.loads(line) for line in (tmp_path / "run" / "predictions.jsonl").open(encoding="utf-8")
    ]
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)
    assert all(r["gold_rank"] is not None for r in rows if r["answerable"])

    refused = runner.invoke(app, ["eval", "--without-gold", "0.5"])
    assert refused.exit_code == 1 and "go with --squad" in refused.output
    assert "Evaluating" not in refused.output  # refused before asking anything
    clash = runner.invoke(app, ["eval", "--set", "a.jsonl", "--squad", "b.json"])
    assert clash.exit_code == 1 and "not both" in clash.output
