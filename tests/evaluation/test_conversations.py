"""The follow-up conversation set, and how the runner asks and reports conversations."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from qa.conversation import Turn
from qa.evaluation.conversations import (
    TurnInfo,
    conversations,
    load_turns,
    sample_conversations,
)
from qa.evaluation.datasets import EvalQuestion, load_jsonl
from qa.evaluation.report import SUMMARY_KEYS, summary, write_run
from qa.evaluation.runner import (
    WARM_UP_QUESTION,
    EvalRun,
    _indexed,
    ask_conversations,
    corpus_documents,
)
from qa.ingest import load_corpus, load_file
from qa.settings import Settings
from qa.types import Answer, Chunk, Document, Passage, Result

from ..conftest import SEED_CORPUS, SEED_IDS, needs_shared
from .test_runner import _run

REPO = Path(__file__).resolve().parents[2]
CONVERSATIONS = REPO / "eval" / "conversations.jsonl"


@pytest.fixture(scope="module")
def questions() -> list[EvalQuestion]:
    return load_jsonl(CONVERSATIONS)


@pytest.fixture(scope="module")
def turns() -> dict[str, TurnInfo]:
    return load_turns(CONVERSATIONS)


def test_every_line_has_the_documented_fields() -> None:
    base = {"id", "question", "answers", "doc_id", "type", "answerable", "conversation", "turn"}
    for line in CONVERSATIONS.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        extra = {"full_question"} if record["turn"] > 1 else set()
        assert set(record) == base | extra, record["id"]


def test_conversations_have_two_to_four_turns_and_follow_ups_their_full_question(
    questions: list[EvalQuestion], turns: dict[str, TurnInfo]
) -> None:
    groups = conversations(questions, turns)
    assert len(groups) >= 40 and all(q.id in turns for q in questions)
    for group in groups:
        assert 2 <= len(group) <= 4, group[0].id
        assert [turns[q.id].turn for q in group] == list(range(1, len(group) + 1))
        assert len({turns[q.id].conversation for q in group}) == 1
    follow_ups = [turns[q.id] for q in questions if turns[q.id].follow_up]
    assert all(t.full_question for t in follow_ups)
    # Changes of subject (the follow-up stands alone) and unanswerable follow-ups are covered.
    stand_alone = [q for q in questions if turns[q.id].full_question == q.question]
    assert len(stand_alone) >= 5
    assert sum(not q.answerable for q in questions if turns[q.id].follow_up) >= 4
    # About half over the seed articles, half over BBC articles of several categories.
    seed = [g for g in groups if {q.doc_id for q in g} - {None} <= set(SEED_IDS)]
    assert 0.4 <= len(seed) / len(groups) <= 0.6
    categories = {q.doc_id.split("/")[0] for q in questions if q.doc_id and "/" in q.doc_id}
    assert len(categories) == 5


def test_every_seed_reference_is_verbatim_in_its_cleaned_article(
    questions: list[EvalQuestion],
) -> None:
    documents = {d.doc_id: d for d in load_corpus(SEED_CORPUS)}
    seed = [q for q in questions if q.doc_id in documents]
    assert len(seed) >= 40
    for q in seed:
        missing = [a for a in q.answers if a not in documents[q.doc_id].text]
        assert not missing, f"{q.id}: {missing} not in {q.doc_id}"


def test_every_bbc_reference_is_verbatim_in_its_cleaned_article(
    questions: list[EvalQuestion],
) -> None:
    root = needs_shared("data", "bbc-news")
    bbc = [q for q in questions if q.doc_id and "/" in q.doc_id]
    assert len(bbc) >= 40
    for q in bbc:
        [document] = load_file(root / q.doc_id, root)
        assert document.doc_id == q.doc_id  # the id `qa index` gives it under that root
        missing = [a for a in q.answers if a not in document.text]
        assert not missing, f"{q.id}: {missing} not in {q.doc_id}"


@pytest.mark.parametrize(
    ("lines", "problem"),
    [
        ([{"conversation": "c1", "turn": 2, "full_question": "x"}], "turn 1 comes next"),
        ([{"conversation": "c1"}], "turn number"),
        ([{"turn": 1}], "conversation id"),
        ([{"conversation": "c1", "turn": 1}, {"conversation": "c1", "turn": 2}], "full_question"),
        ([{"conversation": "c1", "turn": 1, "full_question": "x"}], "stands alone"),
    ],
)
def test_malformed_turns_name_their_line(tmp_path: Path, lines: list[dict], problem: str) -> None:
    path = tmp_path / "set.jsonl"
    path.write_text(
        "\n".join(json.dumps({"id": str(i), **r}) for i, r in enumerate(lines)), encoding="utf-8"
    )
    with pytest.raises(ValueError, match=problem) as error:
        load_turns(path)
    assert f"set.jsonl:{len(lines)}:" in str(error.value)


def test_a_plain_set_has_no_turns_and_samples_keep_whole_conversations(
    questions: list[EvalQuestion], turns: dict[str, TurnInfo]
) -> None:
    assert load_turns(REPO / "eval" / "seed.jsonl") == {}
    groups = conversations(questions, turns)
    chosen = sample_conversations(groups, 5)
    assert chosen == sample_conversations(groups, 5) and len(chosen) == 5
    assert all(group in groups for group in chosen)


DOC = Document("d1", "Round two", "d1.txt", "They met in Singapore. It was in June.", "h")
CHUNKS = [Chunk("d1:0", "d1", 0, 0, len(DOC.text), DOC.text)]
# A conversation of three turns, a second one, and a question outside any conversation.
SET = [
    EvalQuestion("a1", "Where did they meet?", ("Singapore",), "d1", "where", True),
    EvalQuestion("a2", "When?", ("June",), "d1", "when", True),
    EvalQuestion("a3", "Why?", (), None, "unanswerable", False),
    EvalQuestion("b1", "Where was it?", ("Singapore",), "d1", "where", True),
    EvalQuestion("b2", "And then?", ("June",), "d1", "when", True),
]
TURNS = {
    "a1": TurnInfo("a", 1),
    "a2": TurnInfo("a", 2, "When did they meet in Singapore?"),
    "a3": TurnInfo("a", 3, "Why did they meet in Singapore?"),
    "b1": TurnInfo("b", 1),
    "b2": TurnInfo("b", 2, "When was it?"),
}


class ConversationQA:
    """Answers from a table and records every question with the turns it was asked after.

    Given earlier turns, it "reads" the question as ``<question> after <last answer>`` and
    answers that from the table, so a test sees what the runner passed.
    """

    def __init__(self, answers: dict[str, tuple[str, float]]) -> None:
        self.answers = answers
        self.asked: list[tuple[str, tuple[Turn, ...]]] = []
        self.read_as: list[str] = []
        self.settings = Settings(threshold=0.5)
        self.index = SimpleNamespace(documents={"d1": DOC}, chunks=CHUNKS)

    def _result(self, question: str, asked: str | None = None) -> Result:
        found = self.answers.get(asked or question)
        answers = []
        if found:
            text, value = found
            start = DOC.text.index(text)
            answers = [Answer(text, value, start, start + len(text), "d1", "t", "p", DOC.text, 0)]
        passages = [Passage(CHUNKS[0], "t", "p", 1.0)]
        return Result(question, answers, not answers, passages, "sentence", understood_as=asked)

    def ask(
        self,
        question: str,
        *,
        threshold: float | None = None,
        exclude: frozenset[str] = frozenset(),
        conversation: tuple[Turn, ...] = (),
    ) -> Result:
        assert threshold == 0.0
        self.asked.append((question, tuple(conversation)))
        if not conversation:
            return self._result(question)
        return self._result(question, f"{question} after {conversation[-1].answer}")

    def read(
        self, question: str, passages: list[Passage], *, threshold: float | None = None
    ) -> Result:
        self.read_as.append(question)
        return self._result(question)


@pytest.fixture
def conversation_run() -> tuple[ConversationQA, EvalRun]:
    qa = ConversationQA(
        {
            "Where did they meet?": ("Singapore", 0.9),
            "When? after Singapore": ("June", 0.8),
            "When did they meet in Singapore?": ("June", 0.9),
            "Why? after June": ("Singapore", 0.6),
            "Why did they meet in Singapore?": ("June", 0.2),
            "Where was it?": ("Singapore", 0.3),  # below the threshold in use: not seen
            "When was it?": ("June", 0.9),
        }
    )
    mode, observations, full = ask_conversations(qa, SET, TURNS, progress=False)  # type: ignore[arg-type]
    run = replace(
        _run(observations),
        mode=mode,
        turns=TURNS,
        full_observations=full,
        notes=["skipped 1 of 3 conversations: the index lacks 1 of their articles (x.txt)"],
    )
    return qa, run


def test_turns_are_asked_after_the_earlier_ones_and_follow_ups_also_in_full(
    conversation_run: tuple[ConversationQA, EvalRun],
) -> None:
    qa, run = conversation_run
    asked = [
        (question, [(t.question, t.answer) for t in earlier]) for question, earlier in qa.asked
    ]
    assert asked == [
        (WARM_UP_QUESTION, []),
        ("Where did they meet?", []),
        ("When?", [("Where did they meet?", "Singapore")]),
        ("When did they meet in Singapore?", []),
        ("Why?", [("Where did they meet?", "Singapore"), ("When?", "June")]),
        ("Why did they meet in Singapore?", []),
        ("Where was it?", []),
        # b1's answer scored below the threshold in use: the user saw an abstention.
        ("And then?", [("Where was it?", None)]),
        ("When was it?", []),
    ]
    # The earlier turn carries the question as the system read it.
    assert qa.asked[4][1][1].understood == "When? after Singapore"
    # The gold passage is read with the question as the system read it.
    assert qa.read_as[1] == "When? after Singapore"
    assert [o.understood_as for o in run.observations] == [
        None,
        "When? after Singapore",
        "Why? after June",
        None,
        "And then? after None",
    ]
    assert set(run.full_observations) == {"a2", "a3", "b2"}


def test_follow_ups_are_reported_apart_from_first_turns_and_their_full_questions(
    conversation_run: tuple[ConversationQA, EvalRun], tmp_path: Path
) -> None:
    _, run = conversation_run
    apart = run.conversation_metrics()
    assert apart is not None
    # First turns: a1 right, b1 abstained (0.3 < 0.5). Follow-ups: a2 right, a3 answered
    # though unanswerable, b2 found nothing. In full: a2 right, a3 abstained (right), b2 right.
    assert (apart.first_turns.n, apart.first_turns.f1) == (2, 0.5)
    assert (apart.follow_ups.n, apart.follow_ups.f1) == (3, pytest.approx(1 / 3))
    assert (apart.full_questions.n, apart.full_questions.f1) == (3, 1.0)
    assert apart.f1_gap == pytest.approx(2 / 3)
    head = summary(run)
    assert tuple(head)[: len(SUMMARY_KEYS)] == SUMMARY_KEYS and head["n"] == 5.0
    assert head["follow_up_f1"] == pytest.approx(1 / 3) and head["full_question_f1"] == 1.0
    assert head["follow_up_f1_gap"] == pytest.approx(2 / 3) and head["n_follow_ups"] == 3.0

    files = write_run(run, tmp_path, "qa eval --set eval/conversations.jsonl")
    rows = {r["id"]: r for r in map(json.loads, files["predictions.jsonl"].open(encoding="utf-8"))}
    assert rows["a2"]["understood_as"] == "When? after Singapore"
    assert rows["a2"]["full_question"] == "When did they meet in Singapore?"
    assert (rows["a2"]["conversation"], rows["a2"]["turn"]) == ("a", 2)
    assert rows["a3"]["full_answer"] is None and rows["a3"]["full_f1"] == 1.0
    assert rows["a1"]["full_question"] is None and rows["a1"]["understood_as"] is None
    details = json.loads(files["summary.json"].read_text(encoding="utf-8"))
    assert details["conversations"]["f1_gap"] == pytest.approx(2 / 3)
    assert details["notes"] == run.notes
    report = files["report.md"].read_text(encoding="utf-8")
    assert "## Conversations" in report and "| full minus follow-up |" in report
    assert "**Note:** skipped 1 of 3 conversations" in report


def test_a_plain_run_reports_no_conversations(tmp_path: Path) -> None:
    qa = ConversationQA({"Where did they meet?": ("Singapore", 0.9)})
    _, observations, full = ask_conversations(qa, SET[:1], {}, progress=False)  # type: ignore[arg-type]
    assert full == {} and qa.asked[1] == ("Where did they meet?", ())
    run = _run(observations)
    assert run.conversation_metrics() is None and tuple(summary(run)) == SUMMARY_KEYS


def test_conversations_over_articles_not_indexed_are_skipped_with_a_note() -> None:
    first, second = conversations(SET, TURNS)
    elsewhere = [EvalQuestion("b1", "?", ("x",), "bbc/1.txt", "what", True), *second[1:]]
    notes: list[str] = []
    assert _indexed([first, elsewhere], {"d1": DOC}, notes) == [first]
    assert notes == [
        "skipped 1 of 2 conversations: the index lacks 1 of their articles (bbc/1.txt); "
        "index the corpus they come from, or name its folder with --corpus"
    ]


def test_corpus_folders_join_the_seed_articles_with_ids_relative_to_their_root(
    tmp_path: Path,
) -> None:
    (tmp_path / "bbc" / "business").mkdir(parents=True)
    (tmp_path / "bbc" / "business" / "001.txt").write_text(
        "Title\n\nSome business news.", encoding="utf-8"
    )
    notes: list[str] = []
    documents = corpus_documents([tmp_path / "bbc", tmp_path / "absent"], notes)
    assert sorted(d.doc_id for d in documents) == [*SEED_IDS, "business/001.txt"]
    assert notes == [f"corpus folder {tmp_path / 'absent'} does not exist: it is not indexed"]
