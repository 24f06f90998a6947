"""Follow-up questions: the rules of ``qa.conversation`` and ``QA.ask(conversation=...)``."""

from __future__ import annotations

import pytest

from qa import QA, Settings
from qa.conversation import MAX_TURNS, Turn, prefer_documents, turns_from_json, understand
from qa.reading.transformer import DEFAULT_READER_DIR
from qa.types import Answer, Chunk, Passage, Result


def after(previous: str, answer: str | None, question: str, doc: str | None = "d1") -> str:
    """How ``question`` is read after ``previous`` answered by ``answer``."""
    turn = Turn(previous, previous, answer, doc if answer else None)
    return understand(question, [turn]).question


@pytest.mark.parametrize(
    ("previous", "answer", "question", "expected"),
    [
        # Ellipsis: only a question word.
        ("Where did Trump and Kim meet?", "Singapore", "And when?", "When did Trump and Kim meet?"),
        ("Where did Trump and Kim meet?", "Singapore", "Why?", "Why did Trump and Kim meet?"),
        ("How much did profits rise?", "76%", "Why exactly?", "Why did profits rise?"),
        ("How much did profits rise?", "76%", "Why then?", "Why did profits rise?"),
        ("Did they sign a deal?", None, "When?", "When did they sign a deal?"),
        # The question word was the subject: its answer takes its place.
        (
            "Who wrote the commentary?",
            "Mark Fitzpatrick",
            "And when?",
            "When Mark Fitzpatrick wrote the commentary?",
        ),
        # "What about X?": X replaces what it matches.
        (
            "What is the capital of North Korea?",
            "Pyongyang",
            "What about South Korea?",
            "What is the capital of South Korea?",
        ),
        (
            "How many officers would each side have had in 1994?",
            "seven",
            "What about in 2019?",
            "How many officers would each side have had in 2019?",
        ),
        (
            "Where was the first summit held?",
            "Singapore",
            "What about the second one?",
            "Where was the second summit held?",
        ),
        (
            "Where was the first summit held?",
            "Singapore",
            "And the second?",
            "Where was the second summit held?",
        ),
        ("What did Trump say?", None, "And Kim?", "What did Kim say?"),
        # References.
        (
            "Who wrote the commentary?",
            "Mark Fitzpatrick",
            "What does he argue?",
            "What does Mark Fitzpatrick argue?",
        ),
        (
            "Where did Trump and Kim meet?",
            "Singapore",
            "What did they sign there?",
            "What did Trump and Kim sign in Singapore?",
        ),
        (
            "What did both leaders sign in Singapore?",
            "a joint statement",
            "When was it signed?",
            "When was a joint statement signed?",
        ),
        (
            "When did the helicopter incident happen?",
            "at the end of 1994",
            "What happened then?",
            "What happened at the end of 1994?",
        ),
        (
            "Who is the chief executive of Yukos?",
            "Steven Theede",
            "And his salary?",
            "What is Steven Theede's salary?",
        ),
        ("Who won the match?", "Arsenal", "Who scored for them?", "Who scored for Arsenal?"),
        # A question phrase with its preposition, or with "that": the previous question asked
        # with it.
        (
            "What did Kim call lifting sanctions?",
            "trivial",
            "In which speech?",
            "In which speech did Kim call lifting sanctions?",
        ),
        (
            "What did Trump and Kim sign in Singapore?",
            "a joint statement",
            "Which year was that?",
            "Which year did Trump and Kim sign in Singapore?",
        ),
        # "he" is the answer to "who", named or not; "he ... them" are two different ones.
        (
            "Who would lead the US liaison office?",
            "a senior foreign service officer",
            "What language does he speak?",
            "What language does a senior foreign service officer speak?",
        ),
        (
            "Who told the Senate that Pyongyang would keep its weapons?",
            "Dan Coats",
            "When did he tell them?",
            "When did Dan Coats tell Senate?",
        ),
        # "it" after "when was X?" is X; an acronym is a name ("US" -> "North Korea").
        (
            "When was the failed summit in Hanoi?",
            "February",
            "What did Trump say before it?",
            "What did Trump say before the failed summit in Hanoi?",
        ),
        (
            "Where did the US sign a lease in 1994?",
            "the German mission",
            "What about North Korea?",
            "Where did North Korea sign a lease in 1994?",
        ),
        (
            "When did Dan Coats tell the Senate about the weapons?",
            "late last month",
            "And the top US commander on the Korean Peninsula?",
            "When did the top US commander on the Korean Peninsula tell the Senate about the "
            "weapons?",
        ),
    ],
)
def test_a_follow_up_is_rewritten_from_words_of_the_conversation(
    previous: str, answer: str | None, question: str, expected: str
) -> None:
    assert after(previous, answer, question) == expected


@pytest.mark.parametrize(
    ("previous", "question"),
    [
        ("Where did Trump and Kim meet?", "What is the capital of France?"),
        ("Who is Mark Fitzpatrick?", "Who is Kim Jong-un?"),
        ("Where did Trump and Kim meet?", "How many liaison officers would each side have had?"),
        ("Who wrote the commentary?", "Then what happened to the 1994 plan?"),
    ],
)
def test_a_question_that_stands_alone_is_not_dragged_back(previous: str, question: str) -> None:
    understood = understand(question, [Turn(previous, previous, "Singapore", "d1")])
    assert understood.question == question
    assert not understood.used_context and not understood.prefer


def test_the_first_question_and_an_unresolvable_reference_stay_as_asked() -> None:
    assert understand("And when?") == understand("And when?", [])
    assert not understand("And when?").used_context
    # Nothing earlier to refer to: the question stays as it is.
    turn = Turn("Why?", "Why?", None, None)
    assert not understand("When did it start?", [turn]).used_context


def test_a_question_leaning_back_that_no_rule_rewrites_is_searched_with_the_topic() -> None:
    turn = Turn(
        "Who did Tottenham beat in the cup?", "Who did Tottenham beat in the cup?", "Forest", "d1"
    )
    understood = understand("What was the score?", [turn])
    assert understood.question == "What was the score?"  # read as asked
    assert understood.search == "What was the score? Tottenham beat in the cup"
    assert understood.shown == "What was the score? (about: Tottenham beat in the cup)"
    assert understood.used_context and understood.prefer == frozenset({"d1"})
    # A question of its own is searched for as it is.
    alone = understand("What is the capital of France?", [turn])
    assert alone.search == alone.shown == alone.question


def test_follow_ups_chain_through_the_rewritten_questions() -> None:
    first = "Where did Trump and Kim meet?"
    turns = [Turn(first, first, "Singapore", "d1")]
    second = understand("And when?", turns)
    turns.append(Turn("And when?", second.question, "June 2018", "d1"))
    third = understand("Why?", turns)
    assert third.question == "Why did Trump and Kim meet?"
    assert third.prefer == frozenset({"d1"})


def test_only_the_last_turns_count_and_turns_round_trip_through_json() -> None:
    turns = [Turn(f"Question {i}?", f"Question {i}?", None, None) for i in range(10)]
    data = [t.to_dict() for t in turns]
    assert turns_from_json(data) == turns[-MAX_TURNS:]
    assert turns_from_json(None) == []
    with pytest.raises(ValueError, match="list of turns"):
        turns_from_json({"question": "x"})
    with pytest.raises(ValueError, match="question"):
        turns_from_json([{"answer": "x"}])
    with pytest.raises(ValueError, match="answer"):
        turns_from_json([{"question": "Who?", "answer": 3}])


def test_turn_of_a_result_keeps_the_best_answer_and_how_it_was_read() -> None:
    answer = Answer("Singapore", 0.9, 10, 19, "d1", "t", "p", "in Singapore", 7)
    result = Result("And where?", [answer], False, [], "reader", understood_as="Where did X?")
    assert Turn.of("And where?", result) == Turn("And where?", "Where did X?", "Singapore", "d1")
    abstained = Result("Why?", [], True, [], "reader")
    assert Turn.of("Why?", abstained) == Turn("Why?", "Why?", None, None)


def _passage(doc: str, i: int) -> Passage:
    return Passage(Chunk(f"{doc}#{i}", doc, i, 0, 1, "x"), doc, doc, 1.0 / (i + 1))


def test_the_previous_answer_article_is_read_even_below_the_cut() -> None:
    passages = [_passage("a", 0), _passage("b", 1), _passage("c", 2), _passage("d1", 3)]
    assert [p.chunk.doc_id for p in prefer_documents(passages, frozenset({"d1"}), 3)] == [
        "a",
        "b",
        "d1",
    ]
    # Already among the best: retrieval order unchanged; nothing preferred: the best n.
    assert prefer_documents(passages, frozenset({"b"}), 3) == passages[:3]
    assert prefer_documents(passages, frozenset(), 2) == passages[:2]
    assert prefer_documents(passages, frozenset({"zz"}), 2) == passages[:2]


SHIPPED = DEFAULT_READER_DIR / "model.safetensors"


@pytest.mark.slow
@pytest.mark.skipif(not SHIPPED.exists(), reason="the trained reader is not shipped")
def test_a_two_turn_conversation_on_the_seed_articles(
    seed_index_settings: Settings,
    embedder,  # noqa: ANN001 - the session's Embedder
) -> None:
    qa = QA(seed_index_settings.replace(reader_model="default"), embedder=embedder)
    first = qa.ask("Where was the failed February summit held?")
    assert "Hanoi" in first.answers[0].text and first.understood_as is None
    turns = [Turn.of(first.question, first)]
    second = qa.ask("And when?", conversation=turns)
    assert second.question == "And when?"
    assert second.understood_as == "When was the failed February summit held?"
    assert not second.abstained and "27–28" in second.answers[0].text
    doc = qa.document(second.answers[0].doc_id)
    assert doc.text[second.answers[0].start : second.answers[0].end] == second.answers[0].text
    # Alone, "And when?" means nothing the corpus answers.
    assert qa.ask("And when?").understood_as is None
    # A change of subject is answered as if asked first.
    france = qa.ask("What is the capital of France?", conversation=turns)
    assert france.understood_as is None and france.abstained
