"""The renderer shows document text literally and highlights answers at their real offsets."""

from __future__ import annotations

from html import unescape

import pytest
from bs4 import BeautifulSoup
from hypothesis import given
from hypothesis import strategies as st

from qa.types import Answer, Chunk, Document, Passage, Result
from qa.web.render import (
    LEAD_CHARS,
    DocumentRow,
    highlight,
    literal,
    render_documents,
    render_notices,
    render_question,
    render_result,
)

HOSTILE = [
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    "[click](javascript:alert(1))",
    "![pic](https://example.com/x.png)",
    "**bold** _it_ `code` # heading",
    "$$x^2$$ and $y$",
    "{{7*7}} ${7*7} {{constructor.constructor('alert(1)')()}}",
    "&lt;script&gt; &amp; &#x27;",
    '"><svg onload=alert(1)>',
    "<a href='javascript:alert(1)'>x</a>",
]


def shown(html: str) -> str:
    """The text a browser displays for ``html`` (``<br>`` as a newline)."""
    soup = BeautifulSoup(html, "html.parser")
    for br in soup.find_all("br"):
        br.replace_with("\n")
    return soup.get_text()


def assert_inert(html: str) -> None:
    """No element that runs code or links anywhere, and no event-handler attribute."""
    soup = BeautifulSoup(html, "html.parser")
    assert not soup.find_all(["script", "img", "svg", "a", "iframe", "style"])
    for tag in soup.find_all(True):
        assert not [name for name in tag.attrs if name.lower().startswith("on")], tag


@pytest.mark.parametrize("text", HOSTILE)
def test_literal_shows_hostile_text_as_written(text: str) -> None:
    html = literal(text)
    assert shown(html) == text
    assert_inert(html)
    # Nothing a Markdown, LaTeX or template engine would parse is left as a raw character.
    assert not set(html) & set("<>\"'[]()*_`$!{}")


@given(st.text())
def test_literal_round_trips_any_text(text: str) -> None:
    html = literal(text)
    expected = text.replace("\r\n", "\n").replace("\r", "\n")
    # Character references decode to exactly the text (the parser would also normalise
    # whitespace controls such as form feeds, which is the browser's business, not ours).
    assert unescape(html.replace("<br>", "\n")) == expected
    assert "\n" not in html
    assert "<" not in html.replace("<br>", "")


def test_literal_escapes_entities_once() -> None:
    # An apostrophe must show as an apostrophe, not as "&#x27;" (double escaping).
    assert shown(literal("'Security guarantees'")) == "'Security guarantees'"
    assert shown(literal("&#x27;")) == "&#x27;"


def test_highlight_marks_the_given_occurrence() -> None:
    text = "the cat saw the cat"
    soup = BeautifulSoup(highlight(text, 16, 19), "html.parser")
    assert soup.mark.get_text() == "cat"
    # The second "cat", not the first: the text before the mark holds the first one.
    assert soup.get_text().index("cat", 5) == 16
    assert str(soup).startswith("the cat saw the <mark>")


def test_highlight_rejects_a_span_outside_the_text() -> None:
    with pytest.raises(ValueError):
        highlight("short", 3, 9)


def _doc(text: str, title: str = "A title", doc_id: str = "a.txt") -> Document:
    return Document(doc_id, title, doc_id, text, "hash")


def _answer(doc: Document, start: int, end: int, cstart: int, cend: int, score: float) -> Answer:
    return Answer(
        text=doc.text[start:end],
        score=score,
        start=start,
        end=end,
        doc_id=doc.doc_id,
        title=doc.title,
        path=doc.path,
        context=doc.text[cstart:cend],
        context_start=cstart,
    )


REPEATED = (
    "Seven officers went first. Later, seven officers went to Hanoi. Then nobody went at all."
)


def test_answer_is_highlighted_at_its_offsets_not_the_first_match() -> None:
    doc = _doc(REPEATED)
    start = REPEATED.index("seven officers")  # the second occurrence (lower case)
    start = REPEATED.index("officers", start)
    cstart = REPEATED.index("Later")
    answer = _answer(doc, start, start + len("officers"), cstart, REPEATED.index(" Then"), 0.9)
    html = render_result(
        Result("q", [answer], False, [], "reader:x"), {doc.doc_id: doc}.get, threshold=0.2
    )
    soup = BeautifulSoup(html, "html.parser")
    context = soup.select_one(".qa-best blockquote.qa-context")
    assert context.mark.get_text() == "officers"
    assert context.get_text() == answer.context
    before = context.get_text()[: context.get_text().index("officers")]
    assert before == "Later, seven "
    # The whole-document view marks the same place in the document.
    view = soup.select_one(".qa-best details.qa-doc .qa-doctext")
    assert view.mark.get_text() == "officers"
    assert len(view.mark.previous_sibling) == start == REPEATED.index("officers", 30)
    assert soup.select_one(".qa-short strong").get_text() == "officers"
    assert "score 0.90" in soup.get_text()


def test_offsets_that_disagree_with_the_context_mark_nothing() -> None:
    doc = _doc(REPEATED)
    answer = _answer(doc, 6, 14, 0, 26, 0.5)
    answer.context_start = 3  # wrong: the slice there is not the answer
    html = render_result(
        Result("q", [answer], False, [], "sentence"), lambda _: None, threshold=0.1
    )
    soup = BeautifulSoup(html, "html.parser")
    assert soup.select_one("blockquote.qa-context").mark is None
    assert soup.select_one("details.qa-doc") is None  # no document to show


def test_hostile_document_renders_inert_in_every_part() -> None:
    text = " ".join(HOSTILE)
    title = "<script>alert('title')</script> [t](javascript:x)"
    doc = _doc(text, title=title, doc_id="<b>id</b>.txt")
    start = text.index("[click]")
    answer = _answer(doc, start, start + len(HOSTILE[2]), 0, len(text), 0.7)
    other = _answer(doc, 0, len(HOSTILE[0]), 0, len(text), 0.6)
    result = Result("q", [answer, other], False, [], "sentence")
    html = render_result(result, {doc.doc_id: doc}.get, threshold=0.1)
    assert_inert(html)
    page = shown(html)
    assert title in page
    assert "<b>id</b>.txt" in page
    for piece in HOSTILE:
        assert piece in page
    soup = BeautifulSoup(html, "html.parser")
    assert soup.select_one(".qa-best blockquote mark").get_text() == HOSTILE[2]


def test_alternatives_are_folded_below_the_best_answer() -> None:
    doc = _doc(REPEATED)
    answers = [_answer(doc, 0, 5, 0, 26, 0.8), _answer(doc, 27, 32, 27, 62, 0.5)]
    html = render_result(
        Result("q", answers, False, [], "reader:x"), {"a.txt": doc}.get, threshold=0.1
    )
    soup = BeautifulSoup(html, "html.parser")
    assert soup.select(".qa-best") and len(soup.select(".qa-answer")) == 2
    folded = soup.select_one("details.qa-alternatives")
    assert "1 other possible answer" in folded.summary.get_text()
    assert folded.select_one(".qa-answer strong").get_text() == "Later"


def test_abstention_says_so_and_lists_the_closest_passages() -> None:
    doc = _doc(REPEATED, title="<i>T</i>")
    starts = [0, 27, 64]
    passages = [
        Passage(
            Chunk(f"a.txt#{i}", "a.txt", i, a, a + 20, REPEATED[a : a + 20]),
            doc.title,
            "a.txt",
            0.3,
        )
        for i, a in enumerate(starts)
    ]
    html = render_result(
        Result("q", [], True, passages, "sentence"), {"a.txt": doc}.get, threshold=0.4
    )
    soup = BeautifulSoup(html, "html.parser")
    text = shown(html)
    assert text.startswith("The corpus does not answer this question.") and "0.40" in text
    lead = soup.select_one(".qa-lead")
    assert lead.blockquote.get_text() == REPEATED[:20]
    assert "<i>T</i>" in lead.get_text() and soup.find("i") is None
    assert lead.select_one("details.qa-doc mark").get_text() == REPEATED[:20]
    folded = soup.select_one("details.qa-more-leads")
    assert folded.summary.get_text() == "2 more close passages"
    assert [q.get_text() for q in folded.select("li > blockquote")] == [
        REPEATED[27:47],
        REPEATED[64:84],
    ]


def test_long_leads_are_cut_at_a_word() -> None:
    text = "word " * 200
    doc = _doc(text)
    passage = Passage(Chunk("a.txt#0", "a.txt", 0, 0, len(text), text), doc.title, "a.txt", 0.1)
    soup = BeautifulSoup(
        render_result(
            Result("q", [], True, [passage], "sentence"), {"a.txt": doc}.get, threshold=0.5
        ),
        "html.parser",
    )
    quoted = soup.select_one(".qa-lead blockquote").get_text()
    assert quoted.endswith("word …") and len(quoted) <= LEAD_CHARS + 2


def test_question_documents_and_notices_are_literal() -> None:
    assert shown(render_question("<b>hi</b> [x](y)")) == "<b>hi</b> [x](y)"
    rows = [DocumentRow("<img src=x onerror=alert(1)>", "p.txt", "p.txt#1", 1234, 5)]
    html = render_documents(rows, "1 document")
    assert_inert(html)
    cells = [td.get_text() for td in BeautifulSoup(html, "html.parser").select("tbody td")]
    assert cells[0] == "<img src=x onerror=alert(1)>"
    assert cells[1] == "p.txtid p.txt#1" and cells[2:] == ["1,234", "5"]
    notices = render_notices([(True, "a.txt: added"), (False, "<x>.exe: refused")])
    assert_inert(notices)
    assert "✗ <x>.exe: refused" in shown(notices)
