"""Feedback marks (qa/feedback.py): the lines written, read back as an evaluation set, appends
from many threads, and the marks refused."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from qa.evaluation.datasets import load_jsonl
from qa.feedback import (
    MAX_SPAN_CHARS,
    FeedbackCounts,
    FeedbackLog,
    Span,
    feedback_path,
    mark_record,
)
from qa.pipeline import QA
from qa.settings import Settings
from qa.types import Result
from tests.conftest import SEED_CORPUS, HashEmbedder

QUESTION = "How many liaison officers would each side have had under the 1994 plan?"
OFF_TOPIC = "What is the capital of France?"
#: Every key a mark may have: nothing about the user (no address, agent or session).
KEYS = {"id", "question", "answers", "doc_id", "type", "answerable", "verdict", "marked_at"}
KEYS |= {"index_build", "start", "end", "wrong", "replaces"}


@pytest.fixture(scope="module")
def qa(tmp_path_factory: pytest.TempPathFactory) -> QA:
    index = tmp_path_factory.mktemp("feedback") / "index"
    settings = Settings(corpus_dir=SEED_CORPUS, index_dir=index, reader_model="none")
    built = QA(settings, embedder=HashEmbedder())
    built.build(show_progress=False)
    return built


@pytest.fixture(scope="module")
def answered(qa: QA) -> Result:
    result = qa.ask(QUESTION, threshold=0.0, n_answers=3)
    assert not result.abstained and len(result.answers) >= 2
    return result


@pytest.fixture
def log(qa: QA, tmp_path: Path) -> FeedbackLog:
    return FeedbackLog(tmp_path / "feedback.jsonl", index=lambda: qa.index)


def test_the_file_lies_beside_the_index(qa: QA) -> None:
    assert feedback_path(qa.settings) == qa.settings.index_dir / "feedback.jsonl"
    assert FeedbackLog.of(qa).path == qa.settings.index_dir / "feedback.jsonl"


def test_a_right_answer_becomes_a_reference_with_its_offsets(
    qa: QA, answered: Result, log: FeedbackLog
) -> None:
    best = answered.answers[0]
    record = log.mark(answered, "right")
    [line] = log.path.read_text(encoding="utf-8").splitlines()
    assert json.loads(line) == record
    assert set(record) <= KEYS
    assert record["question"] == QUESTION
    assert record["answers"] == [best.text] and record["doc_id"] == best.doc_id
    assert (record["start"], record["end"]) == (best.start, best.end)
    assert record["type"] == "how many" and record["answerable"] is True
    assert record["verdict"] == "right" and "wrong" not in record
    assert record["index_build"] == qa.index.path.name
    stamp = datetime.strptime(record["marked_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - stamp).total_seconds()) < 60


def test_each_verdict_makes_the_documented_record(answered: Result) -> None:
    best, other = (Span.of(a) for a in answered.answers[:2])
    wrong = mark_record(QUESTION, "wrong", answer=best, correction=other)
    assert wrong["answers"] == [other.text] and wrong["doc_id"] == other.doc_id
    assert wrong["start"] == other.start and wrong["wrong"] == [best.text]
    negative = mark_record(QUESTION, "wrong", answer=best)
    assert negative["answerable"] is None and negative["answers"] == []
    assert negative["wrong"] == [best.text] and negative["doc_id"] is None
    nothing = mark_record(QUESTION, "no-answer", answer=best)
    assert (nothing["answerable"], nothing["type"]) == (False, "unanswerable")
    assert nothing["answers"] == [] and nothing["wrong"] == [best.text] and "start" not in nothing
    abstention_right = mark_record(OFF_TOPIC, "right")
    assert abstention_right["answerable"] is False and abstention_right["answers"] == []
    assert len({r["id"] for r in (wrong, negative, nothing, abstention_right)}) == 4


def test_marks_read_back_as_an_evaluation_set(qa: QA, answered: Result, log: FeedbackLog) -> None:
    liked = log.mark(answered, "right")
    corrected = log.mark(answered, "wrong", correction=answered.answers[1])
    log.mark(answered, "wrong")  # a negative: skipped by the loader
    nothing = log.mark(qa.ask(OFF_TOPIC, threshold=1.0), "right")  # the abstention was right
    taken_back = log.mark(answered, "no-answer")
    log.withdraw(QUESTION, taken_back["id"])
    changed = log.mark(answered, "right", answer=1)
    log.mark(answered, "wrong", correction=answered.answers[0], replaces=changed["id"])
    questions = load_jsonl(log.path)
    by_id = {q.id: q for q in questions}
    assert len(questions) == 4 and liked["id"] in by_id and nothing["id"] in by_id
    assert taken_back["id"] not in by_id and changed["id"] not in by_id
    alternative = answered.answers[1]
    assert by_id[corrected["id"]].answers == (alternative.text,)
    assert by_id[corrected["id"]].start == alternative.start
    assert by_id[liked["id"]].end == answered.answers[0].end
    assert not by_id[nothing["id"]].answerable and by_id[nothing["id"]].doc_id is None
    assert log.counts() == FeedbackCounts(right=2, wrong=3, no_answer=0)
    assert log.counts().total == 5 and len(log.lines()) == 8


def test_the_loader_refuses_offsets_that_do_not_span_the_answer(tmp_path: Path) -> None:
    record = mark_record(QUESTION, "right", answer=Span("seven", "d.txt", 10, 15))
    path = tmp_path / "set.jsonl"
    path.write_text(json.dumps({**record, "end": 16}) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=":1: start and end must span the first answer"):
        load_jsonl(path)
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    assert load_jsonl(path)[0].start == 10


def test_appends_from_many_threads_stay_whole_lines(answered: Result, tmp_path: Path) -> None:
    log = FeedbackLog(tmp_path / "deep" / "feedback.jsonl")  # its folder is created
    long_question = "Why " + "x" * 990 + "?"  # long lines, so interleaving would show
    span = Span.of(answered.answers[0])
    barrier = threading.Barrier(8)

    def mark(worker: int) -> None:
        barrier.wait()
        for _ in range(25):
            log.record(long_question, "right" if worker % 2 else "no-answer", answer=span)

    threads = [threading.Thread(target=mark, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    raw = log.path.read_text(encoding="utf-8").splitlines()
    assert len(raw) == 200
    records = [json.loads(line) for line in raw]  # every line whole
    assert len({r["id"] for r in records}) == 200
    assert log.counts() == FeedbackCounts(right=100, wrong=0, no_answer=100)
    assert len(load_jsonl(log.path)) == 200


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"start": 1}, "do not hold the answer"),
        ({"doc_id": "nowhere.txt"}, "no document 'nowhere.txt'"),
        ({"end": 10**9}, "are not a span of"),
        ({"start": True}, "whole numbers"),
        ({"text": ""}, "1 to 2,000 characters"),
        ({"text": "x" * (MAX_SPAN_CHARS + 1)}, "1 to 2,000 characters"),
    ],
)
def test_spans_not_in_the_live_index_are_refused(
    answered: Result, log: FeedbackLog, change: dict, message: str
) -> None:
    fields = {**Span.of(answered.answers[0]).__dict__, **change}
    with pytest.raises(ValueError, match=message):
        log.record(QUESTION, "right", answer=Span(**fields))
    assert not log.path.exists()


@pytest.mark.parametrize(
    ("question", "verdict", "correction", "message"),
    [
        (QUESTION, "great", False, "the verdict must be one of right, wrong, no-answer"),
        ("  ", "right", False, "the question is empty"),
        ("x" * 1001, "right", False, "longer than 1,000 characters"),
        (QUESTION, "right", True, "only an answer marked wrong takes a correction"),
        (QUESTION, "withdrawn", False, "names the mark it takes back"),
    ],
)
def test_marks_that_make_no_sense_are_refused(
    answered: Result,
    log: FeedbackLog,
    question: str,
    verdict: str,
    correction: bool,
    message: str,
) -> None:
    other = Span.of(answered.answers[1]) if correction else None
    with pytest.raises(ValueError, match=message):
        log.record(question, verdict, correction=other)
    assert log.lines() == [] and log.counts().total == 0


def test_a_damaged_line_is_skipped_not_fatal(answered: Result, log: FeedbackLog) -> None:
    log.mark(answered, "right")
    with log.path.open("a", encoding="utf-8") as fh:
        fh.write("{not json\n")
    log.mark(answered, "no-answer")
    assert log.counts() == FeedbackCounts(right=1, wrong=0, no_answer=1)
