"""The runner's bookkeeping with a stand-in QA: what is asked, read, recorded and written."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from qa.evaluation.datasets import EvalQuestion
from qa.evaluation.report import SUMMARY_KEYS, markdown_table, summary, write_run
from qa.evaluation.runner import (
    WARM_UP_QUESTION,
    EvalRun,
    ask_all,
    default_out_dir,
    gold_passages,
    threshold_in_use,
    without_gold,
)
from qa.settings import Settings
from qa.types import Answer, Chunk, Document, Passage, Result

DOC = Document("d1", "Round two", "d1.txt", "Up to seven officers. They met at Panmunjom.", "h")
OTHER = Document("d2", "Other", "d2.txt", "Nothing to see here.", "h2")
CHUNKS = [
    Chunk("d1:0", "d1", 0, 0, 21, DOC.text[0:21]),
    Chunk("d1:1", "d1", 1, 22, 44, DOC.text[22:44]),
    Chunk("d2:0", "d2", 0, 0, 20, OTHER.text),
]


class FakeQA:
    """Answers from a table, ranks d2 before d1, and records every call."""

    def __init__(self, answers: dict[str, tuple[str, float]]) -> None:
        self.answers = answers
        self.asked: list[tuple[str, float | None]] = []
        self.read_calls: list[tuple[str, list[str], float | None]] = []
        self.excluded: list[frozenset[str]] = []
        self.settings = Settings(threshold=None)
        self.index = SimpleNamespace(
            documents={"d1": DOC, "d2": OTHER},
            chunks=CHUNKS,
            manifest={"embedding_model": "fake", "chunking": {}, "faiss_index": "flat"},
        )

    def _result(self, question: str, passages: list[Passage]) -> Result:
        found = self.answers.get(question)
        answers = []
        if found:
            text, value = found
            start = DOC.text.index(text)
            answers = [
                Answer(
                    text, value, start, start + len(text), "d1", DOC.title, DOC.path, DOC.text, 0
                )
            ]
        return Result(question, answers, not answers, passages, "sentence")

    def ask(
        self,
        question: str,
        *,
        threshold: float | None = None,
        exclude: frozenset[str] = frozenset(),
        conversation: tuple = (),
    ) -> Result:
        self.asked.append((question, threshold))
        self.excluded.append(exclude)
        ranked = [Passage(c, "t", "p", 1.0) for c in (CHUNKS[2], CHUNKS[1], CHUNKS[0])]
        return self._result(question, ranked)

    def read(
        self, question: str, passages: list[Passage], *, threshold: float | None = None
    ) -> Result:
        self.read_calls.append((question, [p.chunk.chunk_id for p in passages], threshold))
        return self._result(question, passages)


QUESTIONS = [
    EvalQuestion("a", "Where did they meet?", ("Panmunjom",), "d1", "where", True),
    EvalQuestion("b", "How many officers?", ("seven officers",), "d1", "how many", True),
    EvalQuestion("c", "Capital of France?", (), None, "unanswerable", False),
]


@pytest.fixture
def observed() -> tuple[FakeQA, list]:
    qa = FakeQA({"Where did they meet?": ("Panmunjom", 0.8), "Capital of France?": ("seven", 0.3)})
    mode, observations = ask_all(qa, QUESTIONS, progress=False)  # type: ignore[arg-type]
    assert mode == "sentence"
    return qa, observations


def test_every_question_is_asked_once_at_threshold_zero_after_a_warm_up(observed) -> None:
    qa, observations = observed
    assert qa.asked == [(WARM_UP_QUESTION, 0.0)] + [(q.question, 0.0) for q in QUESTIONS]
    a, b, c = observations
    assert (a.text, a.score, a.doc_id) == ("Panmunjom", 0.8, "d1")
    assert b.text is None and b.score is None  # the stand-in found nothing for b
    assert a.ranked_doc_ids == ("d2", "d1", "d1") and a.rank == 2
    assert c.rank is None


def test_questions_asked_without_their_gold_leave_it_out_and_count_as_unanswerable() -> None:
    hidden = without_gold(QUESTIONS, 1.0)
    assert hidden == {"a", "b"}, "only answerable questions can be asked without their gold"
    assert (
        without_gold(QUESTIONS, 0.5) == without_gold(QUESTIONS, 0.5)
        and len(without_gold(QUESTIONS, 0.5)) == 1
    )
    with pytest.raises(ValueError):
        without_gold(QUESTIONS, 1.5)
    qa = FakeQA({"Where did they meet?": ("Panmunjom", 0.8)})
    _, observations = ask_all(qa, QUESTIONS, progress=False, hidden={"a"})  # type: ignore[arg-type]
    assert qa.excluded[1:] == [frozenset({"d1"}), frozenset(), frozenset()]
    a, b, _ = observations
    assert not a.question.answerable and a.question.answers == () and a.question.doc_id is None
    assert b.question.answerable
    assert [r[0] for r in qa.read_calls] == ["How many officers?"], "no gold read for hidden a"


def test_the_reader_gets_the_gold_chunk_holding_the_reference(observed) -> None:
    qa, observations = observed
    # Only answerable questions are read on their gold passage, never abstaining.
    assert qa.read_calls == [
        ("Where did they meet?", ["d1:1"], 0.0),
        ("How many officers?", ["d1:0"], 0.0),
    ]
    assert observations[0].gold_passage_text == "Panmunjom"
    # A reference cut by a chunk boundary is in no chunk whole: every chunk is read.
    split = replace(QUESTIONS[0], answers=("officers. They met",))
    assert [p.chunk.chunk_id for p in gold_passages(split, CHUNKS[:2], DOC)] == ["d1:0", "d1:1"]


def _run(observations: list, kind: str = "jsonl", limit: int | None = None) -> EvalRun:
    return EvalRun(
        name="seed",
        source=Path("eval/seed.jsonl"),
        kind=kind,
        settings=Settings(),
        mode="sentence",
        threshold=0.5,
        threshold_source="test",
        observations=observations,
        index_info={
            "documents": 2,
            "chunks": 3,
            "embedding_model": "fake",
            "chunking": {},
            "faiss_index": "flat",
        },
        started_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        seconds=1.0,
        limit=limit,
        total_questions=3,
    )


def test_recommendation(observed) -> None:
    _, observations = observed
    run = _run(observations)
    # At 0: a right (1), b nothing (0), c answered (0). Above 0.3 c abstains: F1 2/3.
    assert run.metrics(0.0).f1 == pytest.approx(1 / 3)
    assert run.recommended.threshold == pytest.approx(0.55) and run.recommended.f1 == 2 / 3


def test_threshold_in_use_prefers_settings() -> None:
    assert threshold_in_use(Settings(threshold=0.3), "reader:x") == (
        0.3,
        pytest.approx("settings (QA_THRESHOLD or an explicit override)"),
    )
    value, source = threshold_in_use(Settings(), "reader:qa-minilm-l6")
    assert isinstance(value, float) and "'reader'" in source


def test_outputs(observed, tmp_path: Path) -> None:
    _, observations = observed
    run = _run(observations)
    files = write_run(run, tmp_path, "qa eval")
    rows = [json.loads(line) for line in files["predictions.jsonl"].open(encoding="utf-8")]
    assert [r["id"] for r in rows] == ["a", "b", "c"]
    assert {
        "id",
        "question",
        "type",
        "references",
        "answerable",
        "answer",
        "score",
        "abstained",
        "doc_id",
        "context",
        "em",
        "f1",
        "sentence_hit",
        "gold_rank",
        "latency_ms",
    } <= set(rows[0])
    assert rows[0]["answer"] == "Panmunjom" and rows[0]["em"] == 1.0 and rows[0]["gold_rank"] == 2
    assert rows[2]["abstained"] and rows[2]["answer"] is None and rows[2]["f1"] == 1.0  # 0.3 < 0.5
    head = summary(run)
    assert tuple(head) == SUMMARY_KEYS and head["n"] == 3.0
    assert head["f1"] == pytest.approx(2 / 3) and head["mrr"] == pytest.approx(0.5)
    assert head["abstain_precision"] == pytest.approx(1 / 2) and head["abstain_recall"] == 1.0
    report = files["report.md"].read_text(encoding="utf-8")
    assert "| where | 1 |" in report and "0.5500 (recommended)" in report
    assert files["chart.png"].stat().st_size > 10_000
    assert default_out_dir(run).name == "seed-20260102T030405Z"


def test_markdown_cells_keep_one_row_per_line() -> None:
    table = markdown_table(["a", "b"], [("x | y", "one\n\ntwo"), (0.5, None)])
    assert table.splitlines() == [
        "| a | b |",
        "|---|---|",
        "| x \\| y | one<br><br>two |",
        "| 0.500 | n/a |",
    ]
