"""A reply shows an answer that several articles give once, with each article as a source."""

from __future__ import annotations

import json

from bs4 import BeautifulSoup

from qa.reading.answers import dedupe
from qa.types import Answer, Document, Result
from qa.web.render import MAX_SOURCES, render_article, render_result, span_check

from .test_render import HOSTILE, assert_inert, shown


def doc(doc_id: str, text: str, title: str = "A title") -> Document:
    return Document(doc_id, title, doc_id, text, "hash")


def answer(d: Document, text: str, score: float) -> Answer:
    """``text`` where it first occurs in ``d``, its context the sentence-like line holding it."""
    start = d.text.index(text)
    cstart = d.text.rfind("\n", 0, start) + 1
    cend = d.text.find("\n", start)
    cend = len(d.text) if cend < 0 else cend
    return Answer(
        text,
        score,
        start,
        start + len(text),
        d.doc_id,
        d.title,
        d.path,
        d.text[cstart:cend],
        cstart,
    )


DOCS = [
    doc("a.txt", "Ferry\n\nThe ferry was launched by Hollis Marrow in 1952.", "Ferry news"),
    doc("b.txt", "Museum\n\nIt says the ferry was launched by hollis marrow.", "Harbour history"),
    doc("c.txt", "Notes\n\nHollis Marrow, shipwright.\nHe launched it.", "Notes"),
]


def test_one_answer_with_three_sources_shows_the_count_and_each_source() -> None:
    spans = [
        answer(d, t, s)
        for d, t, s in zip(
            DOCS, ["Hollis Marrow", "hollis marrow", "Hollis Marrow"], [0.8, 0.6, 0.4], strict=True
        )
    ]
    (merged,) = dedupe(spans)
    html = render_result(Result("q", [merged], False, [], "reader:x"), threshold=0.3)
    assert_inert(html)
    soup = BeautifulSoup(html, "html.parser")
    best = soup.select_one(".qa-best")
    assert best.select_one(".qa-short strong").get_text() == "Hollis Marrow"  # shown once
    assert best.select_one(".qa-agree").get_text() == "3 articles say so"
    items = best.select(".qa-sources li")
    assert len(items) == 3
    for item, source, d in zip(items, merged.sources, DOCS, strict=True):
        # Each source: its own sentence, marked at its own offsets; its title and path; its
        # own score; its button naming its own span.
        assert item.select_one("blockquote.qa-context mark").get_text() == source.text
        assert item.select_one("blockquote.qa-context").get_text() == source.context
        line = item.select_one(".qa-source").get_text()
        assert d.title in line and d.doc_id in line
        assert f"characters {source.start}–{source.end}" in line
        assert f"score {source.score:.2f}" in line
        button = item.select_one("button.qa-open")
        sent = json.loads(button["value"])
        assert sent == [d.doc_id, source.start, source.end, span_check(source.text)]
        article = render_article(d, *sent[1:])
        assert BeautifulSoup(article, "html.parser").mark.get_text() == source.text
    assert len(best.select("button.qa-open")) == 3
    assert not best.select(".qa-more-sources")


def test_a_single_source_answer_renders_as_before() -> None:
    single = answer(DOCS[0], "Hollis Marrow", 0.8)
    html = render_result(Result("q", [single], False, [], "reader:x"), threshold=0.3)
    soup = BeautifulSoup(html, "html.parser")
    assert soup.select_one(".qa-agree") is None and soup.select_one(".qa-sources") is None
    assert len(soup.select(".qa-best button.qa-open")) == 1
    assert soup.select_one(".qa-best blockquote.qa-context mark").get_text() == "Hollis Marrow"


def test_many_sources_are_bounded_and_the_rest_counted() -> None:
    many = [
        answer(
            doc(f"d{i}.txt", f"Title {i}\n\nLaunched by Hollis Marrow, {i}.", f"T{i}"),
            "Hollis Marrow",
            0.9 - i / 100,
        )
        for i in range(MAX_SOURCES + 3)
    ]
    (merged,) = dedupe(many)
    assert len(merged.sources) == MAX_SOURCES + 3
    html = render_result(Result("q", [merged], False, [], "reader:x"), threshold=0.3)
    soup = BeautifulSoup(html, "html.parser")
    assert soup.select_one(".qa-agree").get_text() == f"{MAX_SOURCES + 3} articles say so"
    assert len(soup.select(".qa-sources li")) == MAX_SOURCES
    assert len(soup.select("button.qa-open")) == MAX_SOURCES
    assert soup.select_one(".qa-more-sources").get_text() == "and 3 more articles"
    assert "d7.txt" not in shown(html) and "d4.txt" in shown(html)


def test_hostile_sources_render_inert() -> None:
    title = "<script>alert('t')</script> [x](javascript:y)"
    hostile = [
        doc(
            f"<b>{i}</b>.txt", f"{HOSTILE[i]}\n\n{HOSTILE[i + 1]} said Zorb {HOSTILE[i + 2]}", title
        )
        for i in range(3)
    ]
    (merged,) = dedupe([answer(d, "Zorb", 0.5) for d in hostile])
    assert len(merged.sources) == 3
    html = render_result(Result("q", [merged], False, [], "reader:x"), threshold=0.3)
    assert_inert(html)
    page = shown(html)
    assert page.count(title) == 3
    for i in range(3):
        assert f"<b>{i}</b>.txt" in page and HOSTILE[i + 1] in page and HOSTILE[i + 2] in page
    marks = BeautifulSoup(html, "html.parser").select(".qa-sources mark")
    assert [m.get_text() for m in marks] == ["Zorb"] * 3
