"""The seed evaluation set's format and references, and reading SQuAD files."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from qa.evaluation.datasets import (
    QUESTION_TYPES,
    EvalQuestion,
    load_jsonl,
    load_squad,
    question_type,
    sample,
)
from qa.ingest import load_corpus
from qa.types import Document

REPO = Path(__file__).resolve().parents[2]
SEED_SET = REPO / "eval" / "seed.jsonl"
ANCHORS = {
    "How many liaison officers would each side have had under the 1994 plan?": {
        "up to seven officers in each",
        "seven",
    },
    "Where did Kim Jong-un and Trump agree to resume working-level talks?": {"Panmunjom"},
}


@pytest.fixture(scope="module")
def seed() -> list[EvalQuestion]:
    return load_jsonl(SEED_SET)


@pytest.fixture(scope="module")
def documents() -> dict[str, Document]:
    return {d.doc_id: d for d in load_corpus(REPO / "corpus")}


def test_every_line_has_exactly_the_documented_fields() -> None:
    lines = SEED_SET.read_text(encoding="utf-8").splitlines()
    keys = {"id", "question", "answers", "doc_id", "type", "answerable"}
    assert all(set(json.loads(line)) == keys for line in lines)


def test_size_and_coverage_of_types(seed: list[EvalQuestion]) -> None:
    assert len(seed) >= 50
    kinds = Counter(q.type for q in seed)
    assert set(kinds) == set(QUESTION_TYPES)
    assert kinds["unanswerable"] >= 8
    assert all(q.question.startswith("Did ") for q in seed if q.type == "yes-no")
    assert len({q.question for q in seed}) == len(seed)


def test_anchor_questions_are_present(seed: list[EvalQuestion]) -> None:
    by_text = {q.question: q for q in seed}
    for question, references in ANCHORS.items():
        assert references <= set(by_text[question].answers)


def test_every_reference_is_verbatim_in_its_cleaned_document(
    seed: list[EvalQuestion], documents: dict[str, Document]
) -> None:
    for q in seed:
        if not q.answerable:
            continue
        text = documents[q.doc_id].text
        missing = [a for a in q.answers if a not in text]
        assert not missing, f"{q.id}: {missing} not in {q.doc_id}"


def test_every_paragraph_of_both_articles_is_asked_about(
    seed: list[EvalQuestion], documents: dict[str, Document]
) -> None:
    for doc_id, doc in documents.items():
        spans = [a for q in seed if q.doc_id == doc_id for a in q.answers]
        # Short lines are the title and section headings; every paragraph of prose counts.
        paragraphs = [p for p in doc.text.split("\n\n") if len(p) > 60]
        assert paragraphs
        unasked = [p[:50] for p in paragraphs if not any(a in p for a in spans)]
        assert not unasked, f"{doc_id}: no question about {unasked}"


def test_malformed_records_name_their_line(tmp_path: Path) -> None:
    good = {
        "id": "x1",
        "question": "Q?",
        "answers": ["a"],
        "doc_id": "d",
        "type": "what",
        "answerable": True,
    }
    cases = [
        ({**good, "type": "how"}, "type 'how'"),
        ({**good, "answerable": False}, "answerable false"),
        ({**good, "answers": []}, "needs answers"),
        ({**good, "type": "unanswerable", "answerable": False}, "no answers"),
    ]
    for record, message in cases:
        path = tmp_path / "set.jsonl"
        path.write_text(
            json.dumps(good) + "\n" + json.dumps(record | {"id": "x2"}) + "\n", encoding="utf-8"
        )
        with pytest.raises(ValueError, match=rf"set.jsonl:2: .*{message}"):
            load_jsonl(path)
    path.write_text(json.dumps(good) + "\n" + json.dumps(good) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="duplicate id 'x1'"):
        load_jsonl(path)


def test_squad_v2_becomes_an_open_corpus(tmp_path: Path) -> None:
    squad = {
        "version": "v2.0",
        "data": [
            {
                "title": "Moon_Landing",
                "paragraphs": [
                    {
                        "context": "Apollo 11 landed in 1969.",
                        "qas": [
                            {
                                "id": "a",
                                "question": "When did Apollo 11 land?",
                                "answers": [
                                    {"text": "1969", "answer_start": 21},
                                    {"text": "1969", "answer_start": 21},
                                ],
                            },
                            {
                                "id": "b",
                                "question": "Who flew Apollo 12?",
                                "answers": [],
                                "is_impossible": True,
                            },
                        ],
                    },
                    {
                        "context": "Apollo 11 landed in 1969.",
                        "qas": [
                            {
                                "id": "c",
                                "question": "What landed in 1969?",
                                "answers": [{"text": "Apollo 11", "answer_start": 0}],
                            },
                        ],
                    },
                ],
            },
        ],
    }
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(squad), encoding="utf-8")
    questions, docs = load_squad(path)
    assert [d.doc_id for d in docs] == ["Moon Landing#0"]  # identical paragraphs merge
    assert docs[0].text == "Apollo 11 landed in 1969."
    a, b, c = questions
    assert a.answers == ("1969",) and a.doc_id == "Moon Landing#0" and a.type == "when"
    assert not b.answerable and b.doc_id is None and b.type == "unanswerable"
    assert c.doc_id == "Moon Landing#0" and c.type == "what"


def test_articles_sharing_a_title_keep_distinct_paragraph_ids(tmp_path: Path) -> None:
    # TyDi QA gives each paragraph its own "article", and titles repeat.
    articles = [
        {
            "title": "Seoul",
            "paragraphs": [
                {
                    "context": text,
                    "qas": [{"id": f"q{i}", "question": "Which city?", "answers": []}],
                }
            ],
        }
        for i, text in enumerate(["Seoul is a city.", "Seoul hosted the Olympics."])
    ]
    path = tmp_path / "dup.json"
    path.write_text(json.dumps({"version": "1.1", "data": articles}), encoding="utf-8")
    _, docs = load_squad(path)
    assert [d.doc_id for d in docs] == ["Seoul#0", "Seoul#0~2"]
    assert len({d.path for d in docs}) == 2


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("How many officers were there?", "how many"),
        ("In what year did it end?", "when"),
        ("Whose idea was it?", "who"),
        ("Which city hosted it?", "which"),
        ("Did they meet?", "yes-no"),
        ("The treaty was signed where?", "where"),
        ("Name the ship.", "other"),
    ],
)
def test_question_type_heuristic(question: str, kind: str) -> None:
    assert question_type(question) == kind


def test_sample_is_deterministic_and_ordered(seed: list[EvalQuestion]) -> None:
    first, again = sample(seed, 10), sample(seed, 10)
    assert first == again and len(first) == 10
    positions = [seed.index(q) for q in first]
    assert positions == sorted(positions)
    assert positions != list(range(10))  # a spread sample, not the head of the file
    assert sample(seed, None) == seed and sample(seed, 10_000) == seed
