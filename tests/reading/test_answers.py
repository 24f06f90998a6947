"""Answer assembly with hand-made candidates: offsets, dedup, threshold and abstention."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import pytest

from qa.reading import answers as answers_module
from qa.reading.answers import (
    THRESHOLDS_PATH,
    AnswerFinder,
    _Range,
    _reading_spans,
    _Text,
    dedupe,
    recommended_threshold,
    select,
)
from qa.reading.scoring import FEATURES, AnswerModel
from qa.reading.transformer import SpanCandidate
from qa.settings import Settings
from qa.types import Answer, Chunk, Document, Passage

from ..conftest import HashEmbedder

TEXT = (
    "Round two\n\n"
    "The US and North Korea are considering exchanging liaison officers. "
    'A similar agreement was made in 1994, with the "Agreed Framework" leading to talks over '
    "liaison offices, beginning with up to seven officers in each. "
    "North Korea cancelled the plan.\n\n"
    "Kim Jong-un and Trump agreed to resume talks at Panmunjom on 30 June. "
    "The talks have not resumed."
)
DOC = Document("doc.txt", "Round two", "news/doc.txt", TEXT, "hash")


def answer(text: str, score: float, start: int, doc_id: str = "doc.txt") -> Answer:
    return Answer(text, score, start, start + len(text), doc_id, "T", doc_id, text, start)


def passage(start: int, end: int, doc: Document = DOC, index: int = 0) -> Passage:
    chunk = Chunk(f"{doc.doc_id}::{index}", doc.doc_id, index, start, end, doc.text[start:end])
    return Passage(chunk=chunk, title=doc.title, path=doc.path, score=1.0)


class FakeReader:
    """Answers with fixed phrases wherever they occur in the contexts it is given."""

    model_name = "/nowhere/fake-reader"

    def __init__(self, phrases: dict[str, float]) -> None:
        self.phrases = phrases
        self.contexts: list[str] = []

    def warm_up(self) -> None:
        pass

    def read(self, question: str, contexts: Sequence[str], top_n: int = 5) -> list[SpanCandidate]:
        self.contexts = list(contexts)
        found = []
        for i, context in enumerate(contexts):
            for phrase, score in self.phrases.items():
                at = context.find(phrase)
                if at >= 0:
                    found.append(SpanCandidate(i, at, at + len(phrase), phrase, score, 0.1))
        return sorted(found, key=lambda c: -c.score)[:top_n]


def finder(
    reader: FakeReader | None = None, model: AnswerModel | None = None, **settings: object
) -> AnswerFinder:
    """A finder whose answer model ranks by span probability alone, unless one is given."""
    base = {"reader_model": "none", "threshold": 0.0, **settings}
    return AnswerFinder(
        HashEmbedder(),  # type: ignore[arg-type]
        Settings(**base),  # type: ignore[arg-type]
        reader=reader,  # type: ignore[arg-type]
        answer_model=model or AnswerModel.neutral(),
    )


def assert_located(a: Answer, doc: Document = DOC) -> None:
    assert doc.text[a.start : a.end] == a.text
    assert doc.text[a.context_start : a.context_start + len(a.context)] == a.context
    assert a.context_start <= a.start and a.end <= a.context_start + len(a.context)


def test_the_same_span_from_overlapping_chunks_appears_once_with_its_best_score() -> None:
    kept = dedupe([answer("Panmunjom", 0.4, 100), answer("Panmunjom", 0.7, 100)])
    assert [(a.text, a.score) for a in kept] == [("Panmunjom", 0.7)]


def test_overlapping_spans_in_one_document_keep_the_best() -> None:
    kept = dedupe(
        [
            answer("the Agreed Framework", 0.3, 50),
            answer("Agreed Framework", 0.6, 54),
            answer("Framework leading", 0.5, 62),
            answer("seven officers", 0.2, 120),
        ]
    )
    assert [a.text for a in kept] == ["Agreed Framework", "seven officers"]


def test_same_normalised_text_in_two_places_appears_once() -> None:
    kept = dedupe(
        [
            answer("Panmunjom", 0.3, 10, doc_id="a"),
            answer("panmunjom.", 0.5, 900, doc_id="b"),
            answer("Singapore", 0.4, 10, doc_id="b"),
        ]
    )
    assert [(a.text, a.doc_id) for a in kept] == [("panmunjom.", "b"), ("Singapore", "b")]


def test_adjacent_spans_and_other_documents_are_distinct() -> None:
    kept = dedupe(
        [answer("seven", 0.5, 10), answer("officers", 0.4, 15), answer("seven x", 0.3, 10, "b")]
    )
    assert len(kept) == 3


def test_select_applies_threshold_then_limit() -> None:
    candidates = [
        answer(t, s, 20 * i)
        for i, (t, s) in enumerate([("a1", 0.9), ("b2", 0.5), ("c3", 0.45), ("d4", 0.1)])
    ]
    assert [a.text for a in select(candidates, 2, 0.4)] == ["a1", "b2"]
    assert [a.text for a in select(candidates, 5, 0.4)] == ["a1", "b2", "c3"]
    assert select(candidates, 3, 0.95) == []


def test_thresholds_file_records_a_value_and_how_for_each_mode() -> None:
    table = json.loads(THRESHOLDS_PATH.read_text(encoding="utf-8"))
    for kind in ("reader", "sentence"):
        assert 0.0 < table[kind]["value"] < 1.0
        assert table[kind]["how"].strip()
        assert recommended_threshold(kind) == table[kind]["value"]


@pytest.mark.parametrize(
    ("span", "expected"),
    [
        ("trivial’", "trivial"),
        ("‘gift", "gift"),
        ("‘trivial’", "‘trivial’"),
        ("Singapore,", "Singapore"),
        ('"Agreed Framework', "Agreed Framework"),
        ("(DMZ)", "(DMZ)"),
        ("DMZ)", "DMZ"),
        ("’", "’"),
        ("1994.", "1994"),
        ("at the end of 1994.", "at the end of 1994"),
        ("Pyongyang.", "Pyongyang"),
        ("the U.S.", "the U.S."),
        ("Kim Jong-un Jr.", "Kim Jong-un Jr."),
        ("John F.", "John F."),
        ("5 p.m.", "5 p.m."),
        (".", "."),
    ],
)
def test_spans_lose_half_pairs_of_quotes_and_trailing_commas(span: str, expected: str) -> None:
    text = f"He said {span} today."
    start = text.index(span)
    a, b = answers_module.trim_span(text, start, start + len(span))
    assert text[a:b] == expected and start <= a <= b <= start + len(span)


def test_passages_are_widened_to_sentences_and_merged_where_they_touch() -> None:
    text = _Text(DOC.doc_id, DOC.title, DOC.path, TEXT, 0, True)
    other = _Text("b", "B", "b", "One. Two.", 0, True)
    in_each = TEXT.index("in each")
    ranges = [
        _Range(0, in_each, in_each + 7, 1, passage(0, 1)),  # mid-sentence
        _Range(1, 0, 4, 2, passage(0, 1)),
        _Range(0, TEXT.index("North Korea cancelled"), TEXT.index("Kim Jong-un"), 3, passage(0, 1)),
    ]
    spans = _reading_spans([text, other], ranges)
    first = TEXT.index("A similar agreement")
    # The first passage grows to its whole sentence and touches the third, which joins it.
    assert spans[0][0] == 0 and spans[0][1] == first
    assert TEXT[spans[0][1] : spans[0][2]].endswith("North Korea cancelled the plan.")
    assert spans[1] == (1, 0, 4)
    assert len(spans) == 2


def test_reader_spans_map_to_document_offsets_with_their_sentence() -> None:
    reader = FakeReader({"up to seven officers in each": 0.8, "Panmunjom": 0.6})
    chunk_start = TEXT.index("The US")
    result = finder(reader).find(
        "How many officers?", [passage(chunk_start, len(TEXT))], {DOC.doc_id: DOC}
    )
    assert result.mode == "reader:fake-reader" and not result.abstained
    assert [a.text for a in result.answers] == ["up to seven officers in each", "Panmunjom"]
    for a in result.answers:
        assert_located(a)
        assert (a.doc_id, a.title, a.path) == (DOC.doc_id, DOC.title, DOC.path)
    assert result.answers[0].context.startswith("A similar agreement was made in 1994")
    assert result.answers[0].context.endswith("in each.")
    assert (
        result.answers[1].context
        == "Kim Jong-un and Trump agreed to resume talks at Panmunjom on 30 June."
    )
    # What is read is the passage widened to whole sentences, not the whole document.
    assert reader.contexts == [TEXT[chunk_start:].strip()]


def test_the_reader_reads_every_sentence_of_the_passages_it_is_given() -> None:
    # "Round two" is no sentence the extractor would pick for this question; a reader that
    # reads only around the best sentences would never see it.
    reader = FakeReader({"Round two": 0.9})
    result = finder(reader).find(
        "Where did Kim Jong-un and Trump agree to resume talks?",
        [passage(0, len(TEXT))],
        {DOC.doc_id: DOC},
    )
    assert [a.text for a in result.answers] == ["Round two"]
    assert_located(result.answers[0])


def test_a_passage_unknown_to_the_index_is_read_on_its_own_text() -> None:
    reader = FakeReader({"Panmunjom": 0.6})
    start = TEXT.index("Kim Jong-un")
    result = finder(reader).find("Where?", [passage(start, start + 80)], documents={})
    (a,) = result.answers
    assert_located(a)
    assert a.context == "Kim Jong-un and Trump agreed to resume talks at Panmunjom on 30 June."
    # Without the document, nothing outside the passage can be read or quoted.
    assert start <= a.context_start and a.context_start + len(a.context) <= start + 80
    short = finder(reader).find("Where?", [passage(start + 20, start + 60)], documents={})
    assert short.answers[0].context == TEXT[start + 20 : start + 60].strip()


def test_a_passage_that_disagrees_with_its_document_is_read_on_its_own_text() -> None:
    stale = Document(DOC.doc_id, DOC.title, DOC.path, "Completely different text now.", "h2")
    result = finder(FakeReader({"Panmunjom": 0.6})).find(
        "Where did Trump and Kim agree to resume talks?",
        [passage(0, len(TEXT))],
        {DOC.doc_id: stale},
    )
    assert result.answers and all(TEXT[a.start : a.end] == a.text for a in result.answers)


def test_sentence_mode_answers_with_whole_located_sentences() -> None:
    result = finder(n_answers=2).find(
        "Where did Kim Jong-un and Trump agree to resume talks?",
        [
            passage(0, TEXT.index("North Korea cancelled")),
            passage(TEXT.index("North Korea"), len(TEXT)),
        ],
        {DOC.doc_id: DOC},
    )
    assert result.mode == "sentence" and len(result.answers) == 2
    best = result.answers[0]
    assert best.text == best.context and best.start == best.context_start
    assert "Panmunjom" in best.text
    for a in result.answers:
        assert_located(a)
    assert result.answers[0].score >= result.answers[1].score


def test_overlapping_passages_do_not_duplicate_answers() -> None:
    reader = FakeReader({"Panmunjom": 0.6, "seven officers": 0.5})
    passages = [passage(0, len(TEXT), index=0), passage(20, len(TEXT), index=1)]
    result = finder(reader, n_answers=5).find("q?", passages, {DOC.doc_id: DOC})
    assert [a.text for a in result.answers] == ["Panmunjom", "seven officers"]


def test_span_score_is_the_answer_models_probability_of_its_signals() -> None:
    question = "Where did Kim Jong-un and Trump agree to resume talks?"
    # A model that trusts only the sentence score: the reader's surer span loses.
    coef = [0.0] * len(FEATURES)
    coef[FEATURES.index("sentence_score")] = 5.0
    n = len(FEATURES)
    model = AnswerModel([0.0] * n, [1.0] * n, coef, -1.0, {})  # type: ignore[arg-type]
    f = finder(FakeReader({"Panmunjom": 0.2, "1994": 0.9}), model=model, n_answers=5)
    kind, candidates = f.candidates(question, [passage(0, len(TEXT))], {DOC.doc_id: DOC})
    assert kind == "reader"
    for c in candidates:
        expected = float(model.probability(c.signals.features()[None, :])[0])
        assert c.answer.score == pytest.approx(expected)
        assert 0.0 < c.answer.score < 1.0
    by_text = {c.answer.text: c for c in candidates}
    assert by_text["Panmunjom"].signals.sentence_score > by_text["1994"].signals.sentence_score
    assert by_text["1994"].signals.span_prob == pytest.approx(0.9)
    assert by_text["1994"].signals.rank == 1
    result = f.find(question, [passage(0, len(TEXT))], {DOC.doc_id: DOC})
    assert [a.text for a in result.answers] == ["Panmunjom", "1994"]


def test_the_same_words_found_twice_support_each_other() -> None:
    reader = FakeReader({"North Korea": 0.3})
    other = Document("other.txt", "Other", "other.txt", "North Korea said no.", "h")
    passages = [passage(0, len(TEXT)), passage(0, len(other.text), doc=other)]
    documents = {DOC.doc_id: DOC, other.doc_id: other}
    _, candidates = finder(reader).candidates("Who?", passages, documents)
    # FakeReader finds the first occurrence in each of the two texts read.
    assert {c.answer.doc_id for c in candidates} == {DOC.doc_id, other.doc_id}
    assert all(c.signals.support == pytest.approx(0.3) for c in candidates)
    assert sorted(c.signals.rank for c in candidates) == [1, 2]


def test_below_threshold_abstains_and_keeps_passages() -> None:
    reader = FakeReader({"Panmunjom": 0.2})
    passages = [passage(0, len(TEXT))]
    everything = finder(reader).find("q?", passages, {DOC.doc_id: DOC})
    best = everything.answers[0].score
    assert not everything.abstained and 0 < best < 1
    above = finder(reader, threshold=best + 1e-6).find("q?", passages, {DOC.doc_id: DOC})
    assert above.abstained and above.answers == [] and above.passages == passages
    at = finder(reader, threshold=best + 1e-6).find(
        "q?", passages, {DOC.doc_id: DOC}, threshold=best
    )
    assert [a.text for a in at.answers] == ["Panmunjom"]


def test_no_passages_abstains() -> None:
    result = finder(FakeReader({"x": 1.0})).find("q?", [], {})
    assert result.abstained and result.answers == [] and result.passages == []


def test_unset_threshold_comes_from_the_thresholds_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    question = "Where did Kim Jong-un and Trump agree to resume talks?"
    passages = [passage(0, len(TEXT))]
    reader = FakeReader({"Panmunjom": 0.8, "seven officers": 0.6})
    scores = [a.score for a in finder(reader).find(question, passages, {DOC.doc_id: DOC}).answers]
    assert len(scores) == 2 and scores[0] > scores[1]
    table = tmp_path / "thresholds.json"
    entries = {"reader": (scores[0] + scores[1]) / 2, "sentence": 0.999}
    table.write_text(
        json.dumps({k: {"value": v, "how": "test"} for k, v in entries.items()}), encoding="utf-8"
    )
    monkeypatch.setattr(answers_module, "THRESHOLDS_PATH", table)
    result = finder(reader, threshold=None).find(question, passages, {DOC.doc_id: DOC})
    assert [a.text for a in result.answers] == ["Panmunjom"]
    assert finder(threshold=None).find(question, passages, {DOC.doc_id: DOC}).abstained


def test_unloadable_reader_warns_once_and_answers_with_sentences(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-reader"
    f = AnswerFinder(HashEmbedder(), Settings(reader_model=str(missing), threshold=0.0))  # type: ignore[arg-type]
    passages = [passage(0, len(TEXT))]
    with caplog.at_level(logging.WARNING, logger="qa.reading.answers"):
        first = f.find("Where did they agree to resume talks?", passages, {DOC.doc_id: DOC})
        second = f.find("What was cancelled?", passages, {DOC.doc_id: DOC})
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and str(missing) in warnings[0].getMessage()
    assert first.mode == second.mode == "sentence"
    assert first.answers and second.answers


class CallsReader(FakeReader):
    """A FakeReader that keeps the contexts of every call."""

    def __init__(self, phrases: dict[str, float]) -> None:
        super().__init__(phrases)
        self.calls: list[list[str]] = []

    def read(self, question: str, contexts: Sequence[str], top_n: int = 5) -> list[SpanCandidate]:
        self.calls.append(list(contexts))
        return super().read(question, contexts, top_n)


# The best-ranked passage lies after the second one in the document, apart from it.
KIM = TEXT.index("Kim Jong-un")
APART = [passage(KIM, len(TEXT), index=2), passage(0, len("Round two"), index=0)]
# The neutral answer model scores a span of probability p as p / (1 + p): 0.9 -> 0.474.
PHRASES = {"Panmunjom": 0.9, "Round two": 0.4}


def test_a_sure_answer_in_the_best_passage_leaves_the_others_unread() -> None:
    reader = CallsReader(PHRASES)
    result = finder(reader, stop_reading_at=0.45, n_answers=5).find(
        "Where?", APART, {DOC.doc_id: DOC}
    )
    assert reader.calls == [[TEXT[KIM:]]]
    assert [a.text for a in result.answers] == ["Panmunjom"]
    assert_located(result.answers[0])


def test_an_unsure_answer_reads_on_and_ranks_as_one_reading_of_everything() -> None:
    def found(stop_reading_at: float) -> tuple[CallsReader, list[tuple[object, ...]]]:
        reader = CallsReader(PHRASES)
        _, candidates = finder(reader, stop_reading_at=stop_reading_at).candidates(
            "Where?", APART, {DOC.doc_id: DOC}
        )
        return reader, [
            (c.answer.text, c.answer.start, c.answer.score, c.signals) for c in candidates
        ]

    unsure, in_turn = found(0.5)
    assert unsure.calls == [[TEXT[KIM:]], ["Round two"]]
    whole, at_once = found(1.0)
    assert whole.calls == [["Round two", TEXT[KIM:]]]
    assert in_turn == at_once and [c[0] for c in in_turn] == ["Panmunjom", "Round two"]


@pytest.mark.parametrize("value", [-0.1, 1.5, float("nan")])
def test_stop_reading_at_must_be_a_probability(value: float) -> None:
    with pytest.raises(ValueError, match="stop_reading_at"):
        Settings(stop_reading_at=value)


def test_a_best_passage_left_with_no_text_to_read_reads_everything_at_once() -> None:
    from qa.reading.answers import _first_read

    ranges = [_Range(0, 30, 35, 1, passage(0, 1)), _Range(1, 0, 4, 2, passage(0, 1))]
    assert _first_read([(0, 0, 20), (1, 0, 4)], ranges) is None
    assert _first_read([(0, 0, 20), (0, 28, 40), (1, 0, 4)], ranges) == 1
    # Its whitespace trimmed away, the best passage is not read; the others are, in one call.
    spaced = Document("s.txt", "S", "s.txt", "Far off.      " + "x" * 40 + " Panmunjom.", "h")
    reader = CallsReader(PHRASES)
    passages = [passage(8, 14, spaced), *APART]
    result = finder(reader, stop_reading_at=0.1).find(
        "Where?", passages, {DOC.doc_id: DOC, spaced.doc_id: spaced}
    )
    assert len(reader.calls) == 1 and result.answers
