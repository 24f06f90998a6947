"""Agreeing sources: one answer given by several articles is shown once with every article."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qa.reading.answers import agreement_score, dedupe, select
from qa.settings import Settings
from qa.types import Answer, Document, Result, Source

from .test_answers import FakeReader, finder, passage

KIM = "Kim Jong-un and Trump agreed to resume talks at Panmunjom on 30 June."
DOCS = {
    "a.txt": Document(
        "a.txt", "Round two", "news/a.txt", f"Round two\n\n{KIM} Little moved.", "h1"
    ),
    "b.txt": Document(
        "b.txt", "Crisis stability", "b.txt", f"Summit\n\nIn June, {KIM.lower()}", "h2"
    ),
    "c.txt": Document("c.txt", "Hanoi", "c.txt", "Talks failed in Hanoi, not PANMUNJOM .", "h3"),
}


def span(doc_id: str, text: str, score: float, nth: int = 0, doc: Document | None = None) -> Answer:
    """The answer ``text`` at its ``nth`` occurrence in document ``doc_id`` (or ``doc``)."""
    doc = doc or DOCS[doc_id]
    start = -1
    for _ in range(nth + 1):
        start = doc.text.index(text, start + 1)
    end = start + len(text)
    return Answer(text, score, start, end, doc_id, doc.title, doc.path, doc.text, 0)


def assert_exact(source: Source) -> None:
    doc = DOCS[source.doc_id]
    assert doc.text[source.start : source.end] == source.text
    assert doc.text[source.context_start :].startswith(source.context)
    assert source.context_start <= source.start <= source.end
    assert source.end <= source.context_start + len(source.context)
    assert (source.title, source.path) == (doc.title, doc.path)


def test_an_answer_alone_is_its_own_single_source() -> None:
    a = span("a.txt", "Panmunjom", 0.7)
    assert a.sources == [a.own_source()]
    assert (a.sources[0].doc_id, a.sources[0].start, a.sources[0].score) == ("a.txt", a.start, 0.7)


def test_same_answer_in_three_articles_is_one_answer_with_three_sources() -> None:
    kept = dedupe(
        [
            span("b.txt", "panmunjom", 0.4),
            span("a.txt", "Panmunjom", 0.7),
            span("a.txt", "30 June", 0.5),
            span("c.txt", "PANMUNJOM", 0.1),
        ]
    )
    assert [(a.text, a.doc_id, a.score) for a in kept] == [
        ("Panmunjom", "a.txt", 0.7),
        ("30 June", "a.txt", 0.5),
    ]
    best = kept[0]
    # Best first, the answer's own span first, each source its own wording and offsets.
    assert [(s.doc_id, s.text, s.score) for s in best.sources] == [
        ("a.txt", "Panmunjom", 0.7),
        ("b.txt", "panmunjom", 0.4),
        ("c.txt", "PANMUNJOM", 0.1),
    ]
    assert best.sources[0] == best.own_source()
    for source in best.sources:
        assert_exact(source)
    assert kept[1].sources == [kept[1].own_source()]


def test_two_spans_of_one_article_are_one_source() -> None:
    text = DOCS["a.txt"].text
    twice = Document("a.txt", "Round two", "news/a.txt", f"{text} Panmunjom again.", "h1")
    first = span("a.txt", "Panmunjom", 0.6, doc=twice)
    second = span("a.txt", "Panmunjom", 0.5, nth=1, doc=twice)
    assert second.start > first.end
    kept = dedupe([first, second, span("b.txt", "panmunjom", 0.3)])
    assert len(kept) == 1
    assert [(s.doc_id, s.start) for s in kept[0].sources] == [
        ("a.txt", first.start),
        ("b.txt", DOCS["b.txt"].text.index("panmunjom")),
    ]


def test_an_overlapping_span_joins_no_group() -> None:
    # "talks at Panmunjom" overlaps the kept "Panmunjom" of a.txt: the same place read twice,
    # so it is neither an alternative nor a source; b.txt's copy of it is its own answer.
    kept = dedupe(
        [
            span("a.txt", "Panmunjom", 0.7),
            span("a.txt", "talks at Panmunjom", 0.6),
            span("b.txt", "talks at panmunjom", 0.5),
            span("b.txt", "panmunjom", 0.4),
        ]
    )
    assert [(a.text, [s.doc_id for s in a.sources]) for a in kept] == [
        ("Panmunjom", ["a.txt"]),
        ("talks at panmunjom", ["b.txt"]),
    ]


def test_select_keeps_every_source_and_the_best_score_when_agreement_is_off() -> None:
    answers = [span("a.txt", "Panmunjom", 0.5), span("b.txt", "panmunjom", 0.5)]
    assert select(answers, 3, 0.6) == []
    (kept,) = select(answers, 3, 0.4)
    assert kept.score == 0.5 and len(kept.sources) == 2


def test_noisy_or_scores_an_answer_by_its_agreeing_sources() -> None:
    assert agreement_score([0.5]) == pytest.approx(0.5)
    assert agreement_score([0.5, 0.5]) == pytest.approx(0.75)
    assert agreement_score([0.5, 0.4, 0.0]) == pytest.approx(0.7)
    assert agreement_score([1.2, -1.0]) == 1.0  # clipped into [0, 1]
    answers = [
        span("a.txt", "30 June", 0.6),
        span("a.txt", "Panmunjom", 0.5),
        span("b.txt", "panmunjom", 0.5),
    ]
    kept = select(answers, 3, 0.7, agreement="noisy-or")
    assert [(a.text, a.score) for a in kept] == [("Panmunjom", pytest.approx(0.75))]
    # Each source keeps its own score; the answer's own span is still the first.
    assert [s.score for s in kept[0].sources] == [0.5, 0.5]
    assert kept[0].sources[0].doc_id == kept[0].doc_id == "a.txt"
    assert [a.text for a in select(answers, 3, 0.0)] == ["30 June", "Panmunjom"]
    assert [a.text for a in select(answers, 3, 0.0, agreement="noisy-or")] == [
        "Panmunjom",
        "30 June",
    ]


def test_finder_applies_the_agreement_setting_to_reader_answers() -> None:
    reader = FakeReader({"Panmunjom": 0.5, "30 June": 0.6, "panmunjom": 0.5})
    passages = [passage(0, len(DOCS["a.txt"].text), DOCS["a.txt"])]
    passages.append(passage(0, len(DOCS["b.txt"].text), DOCS["b.txt"], index=1))
    off = finder(reader).find("Where?", passages, DOCS)
    on = finder(reader, agreement="noisy-or").find("Where?", passages, DOCS)
    assert off.answers[0].text == "30 June"
    assert [s.doc_id for s in off.answers[1].sources] == ["a.txt", "b.txt"]
    # The neutral answer model scores p / (1 + p): two sources at 1/3 each give 5/9.
    assert on.answers[0].text == "Panmunjom"
    assert on.answers[0].score == pytest.approx(1 - (2 / 3) ** 2)
    for a in on.answers:
        for source in a.sources:
            assert_exact(source)


def test_to_dict_lists_the_sources() -> None:
    (kept,) = dedupe([span("a.txt", "Panmunjom", 0.7), span("b.txt", "panmunjom", 0.4)])
    payload = json.loads(json.dumps(Result("q", [kept], False, [], "reader:x").to_dict()))
    answer = payload["answers"][0]
    assert answer["text"] == "Panmunjom" and answer["doc_id"] == "a.txt"
    assert [s["doc_id"] for s in answer["sources"]] == ["a.txt", "b.txt"]
    second = answer["sources"][1]
    assert set(second) == {
        "doc_id",
        "title",
        "path",
        "text",
        "start",
        "end",
        "context",
        "context_start",
        "score",
    }
    assert DOCS["b.txt"].text[second["start"] : second["end"]] == second["text"] == "panmunjom"
    assert second["score"] == 0.4


def test_agreement_setting_is_checked_and_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings().agreement == "off"
    monkeypatch.setenv("QA_AGREEMENT", "noisy-or")
    assert Settings.from_env().agreement == "noisy-or"
    with pytest.raises(ValueError, match="agreement must be one of"):
        Settings(agreement="sum")  # type: ignore[arg-type]


SAME_FACT = {
    "ferry.txt": (
        "Ferry news\n\n"
        "The Gleebworth ferry was launched by the shipwright Hollis Marrow in 1952. "
        "It carries forty cars and sails twice a day."
    ),
    "harbour.txt": (
        "Harbour history\n\n"
        "Visitors to the harbour museum learn that the Gleebworth ferry was launched by "
        "the shipwright Hollis Marrow. The museum opens at noon."
    ),
}


@pytest.mark.slow
def test_the_packaged_reader_gives_two_sources_for_a_fact_two_articles_state(
    tmp_path: Path,
    embedder,  # noqa: ANN001 - the session's Embedder
) -> None:
    from qa.pipeline import QA

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, text in SAME_FACT.items():
        (corpus / name).write_text(text, encoding="utf-8")
    # Every passage read: a sure answer from the first article would leave the other unread.
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", stop_reading_at=1.0)
    qa = QA(settings, embedder=embedder)
    qa.build(show_progress=False)
    result = qa.ask("Who launched the Gleebworth ferry?", threshold=0.0)
    best = result.answers[0]
    assert "Hollis Marrow" in best.text
    assert sorted(s.doc_id for s in best.sources) == ["ferry.txt", "harbour.txt"]
    assert best.sources[0].doc_id == best.doc_id and best.sources[0].start == best.start
    for source in best.sources:
        doc = qa.document(source.doc_id)
        assert doc.text[source.start : source.end] == source.text
        assert "Hollis Marrow" in source.text
        assert doc.text[source.context_start :].startswith(source.context)
        assert source.context_start <= source.start and source.end <= (
            source.context_start + len(source.context)
        )
    assert {a["doc_id"] for a in result.to_dict()["answers"][0]["sources"]} == set(SAME_FACT)
