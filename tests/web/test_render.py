"""The renderer shows document text literally and highlights answers at their real offsets."""

from __future__ import annotations

import json
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
    render_article,
    render_documents,
    render_notices,
    render_question,
    render_result,
    span_check,
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
    # The only buttons are the renderer's own "Show the article" ones.
    for button in soup.find_all("button"):
        assert button.get("class") == ["qa-open"] and button.get_text() == "Show the article"
        assert set(button.attrs) == {"type", "class", "value"}


def open_button(html: str, selector: str) -> dict[str, object]:
    """The reference a "Show the article" button sends, as the browser reads it."""
    button = BeautifulSoup(html, "html.parser").select_one(f"{selector} button.qa-open")
    assert button is not None, html
    doc, start, end, check = json.loads(button["value"])
    return {"doc": doc, "start": start, "end": end, "check": check}


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
    html = render_result(Result("q", [answer], False, [], "reader:x"), threshold=0.2)
    soup = BeautifulSoup(html, "html.parser")
    context = soup.select_one(".qa-best blockquote.qa-context")
    assert context.mark.get_text() == "officers"
    assert context.get_text() == answer.context
    before = context.get_text()[: context.get_text().index("officers")]
    assert before == "Later, seven "
    # The article, opened from the reply's button, marks the same place in the document.
    sent = open_button(html, ".qa-best")
    assert sent == {
        "doc": "a.txt",
        "start": start,
        "end": answer.end,
        "check": span_check("officers"),
    }
    article = render_article(doc, sent["start"], sent["end"], sent["check"])
    view = BeautifulSoup(article, "html.parser").select_one(".qa-doctext")
    assert view.mark.get_text() == "officers"
    assert len(view.mark.previous_sibling) == start == REPEATED.index("officers", 30)
    assert soup.select_one(".qa-short strong").get_text() == "officers"
    assert "score 0.90" in soup.get_text()


def test_offsets_that_disagree_with_the_context_mark_nothing() -> None:
    doc = _doc(REPEATED)
    answer = _answer(doc, 6, 14, 0, 26, 0.5)
    answer.context_start = 3  # wrong: the slice there is not the answer
    html = render_result(Result("q", [answer], False, [], "sentence"), threshold=0.1)
    soup = BeautifulSoup(html, "html.parser")
    assert soup.select_one("blockquote.qa-context").mark is None


def test_article_changed_since_the_reply_is_shown_unmarked() -> None:
    doc = _doc(REPEATED)
    check = span_check(REPEATED[6:14])
    assert BeautifulSoup(render_article(doc, 6, 14, check), "html.parser").mark is not None
    changed = _doc("Breaking: " + REPEATED)  # the same offsets now hold other text
    soup = BeautifulSoup(render_article(changed, 6, 14, check), "html.parser")
    assert soup.mark is None and "has changed since this reply" in soup.get_text()
    assert soup.select_one(".qa-doctext").get_text() == changed.text
    for start, end in [(-1, 3), (5, 4), (0, 10_000)]:
        assert BeautifulSoup(render_article(doc, start, end, check), "html.parser").mark is None
    gone = BeautifulSoup(render_article(None, 6, 14, check), "html.parser").get_text()
    assert gone == "This article is no longer in the index."


def test_hostile_document_renders_inert_in_every_part() -> None:
    text = " ".join(HOSTILE)
    title = "<script>alert('title')</script> [t](javascript:x)"
    doc = _doc(text, title=title, doc_id="<b>id</b>.txt")
    start = text.index("[click]")
    answer = _answer(doc, start, start + len(HOSTILE[2]), 0, len(text), 0.7)
    other = _answer(doc, 0, len(HOSTILE[0]), 0, len(text), 0.6)
    result = Result("q", [answer, other], False, [], "sentence")
    html = render_result(result, threshold=0.1)
    assert_inert(html)
    page = shown(html)
    assert title in page
    assert "<b>id</b>.txt" in page
    for piece in HOSTILE:
        assert piece in page
    soup = BeautifulSoup(html, "html.parser")
    assert soup.select_one(".qa-best blockquote mark").get_text() == HOSTILE[2]
    # The button names the hostile id exactly, as an attribute value, not as markup.
    assert open_button(html, ".qa-best")["doc"] == "<b>id</b>.txt"
    article = render_article(doc, answer.start, answer.end, span_check(answer.text))
    assert_inert(article)
    assert title in shown(article) and text in shown(article)
    assert BeautifulSoup(article, "html.parser").mark.get_text() == HOSTILE[2]


def test_alternatives_are_folded_below_the_best_answer() -> None:
    doc = _doc(REPEATED)
    answers = [_answer(doc, 0, 5, 0, 26, 0.8), _answer(doc, 27, 32, 27, 62, 0.5)]
    html = render_result(Result("q", answers, False, [], "reader:x"), threshold=0.1)
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
    html = render_result(Result("q", [], True, passages, "sentence"), threshold=0.4)
    soup = BeautifulSoup(html, "html.parser")
    text = shown(html)
    assert text.startswith("The corpus does not answer this question.") and "0.40" in text
    lead = soup.select_one(".qa-lead")
    assert lead.blockquote.get_text() == REPEATED[:20]
    assert "<i>T</i>" in lead.get_text() and soup.find("i") is None
    sent = open_button(str(lead), ".qa-lead")
    article = render_article(doc, sent["start"], sent["end"], sent["check"])
    assert BeautifulSoup(article, "html.parser").mark.get_text() == REPEATED[:20]
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
        render_result(Result("q", [], True, [passage], "sentence"), threshold=0.5), "html.parser"
    )
    quoted = soup.select_one(".qa-lead blockquote").get_text()
    assert quoted.endswith("word …") and len(quoted) <= LEAD_CHARS + 2


@pytest.mark.parametrize("paragraphs", [1, 1_000])
def test_reply_size_does_not_grow_with_the_article(paragraphs: int) -> None:
    """An answer and three leads from an article of any length make a reply under 4 KB."""
    sentence = "The Zorblat festival takes place in Quenton every May. "
    text = "The Zorblat festival\n\n" + "\n\n".join([sentence * 3] * paragraphs)
    doc = _doc(text)
    start = text.index("Quenton")
    answer = _answer(doc, start, start + 7, start - 36, start + 18, 0.8)
    chunks = [Chunk(f"a.txt#{i}", "a.txt", i, 0, len(text), text) for i in range(3)]
    passages = [Passage(c, doc.title, doc.path, 0.3) for c in chunks]
    assert len(text) > 150_000 or paragraphs == 1
    answered = render_result(Result("q", [answer] * 3, False, passages, "sentence"), threshold=0)
    abstained = render_result(Result("q", [], True, passages, "sentence"), threshold=0.5)
    assert len(answered.encode()) < 4096 and len(abstained.encode()) < 4096


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
