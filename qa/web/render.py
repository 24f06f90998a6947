"""HTML for the web page, built so that nothing taken from a document is ever markup.

Every string that comes from a document, a file name or a user (titles, paths, ids, text,
questions) goes through :func:`literal`: HTML-escaped, with the characters that start Markdown,
LaTeX or template syntax written as numeric character references, and newlines as ``<br>``. A
browser shows such a string exactly as it is written, whatever renders it: the chat shows
messages as HTML with Markdown switched off, and even a Markdown renderer leaves character
references as literal text. The only tags on the page are the ones written in this module.

Answers are highlighted at their real offsets (``answer.start - answer.context_start`` in the
context, ``answer.start`` in the document) and only after checking that the slice there is the
answer; text is never searched for the answer, which would mark the wrong occurrence of a
repeated phrase.

A chat reply carries the answer, its sentence and a "Show the article" button, never the
article: the chat history travels to the server and back on every turn, so a reply holding
whole articles made each turn slower as articles got longer. The button names the span (the
document id, offsets and a digest of the text there, as its ``value``); :func:`render_article`
renders the article when it is asked for, from the index as it is then, and marks the span
only if the article still holds the same text there.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from qa.text import counted
from qa.types import Answer, Document, DocumentRow, Passage, Result, Source

#: Every character that HTML gives a meaning (``& < > " '``, as ``html.escape`` escapes them) or
#: that opens Markdown (emphasis, links, images, code, headings, tables, escapes), LaTeX (``$``)
#: or template (``{{ }}``, ``${ }``) syntax, mapped to its numeric character reference. One
#: translation pass, so a reference is never escaped twice; a reference displays as the
#: character itself and is never parsed as syntax.
_LITERAL = {ord(c): f"&#{ord(c)};" for c in "&<>\"'\\`*_[]()!#|~${}+-:"}
#: The same for a quoted attribute value, where line breaks are kept as references too.
_ATTRIBUTE = {**_LITERAL, ord("\n"): "&#10;", ord("\r"): "&#13;"}

#: Longest excerpt of a passage shown as a lead of an abstention (the article opens on demand).
LEAD_CHARS = 320
#: Passages shown with an abstention: the closest, then the rest folded.
LEADS = 3
#: Agreeing articles shown under an answer; the rest are counted ("and 3 more").
MAX_SOURCES = 5
#: Shown in the article panel before any article is opened.
ARTICLE_HINT = "Press “Show the article” under an answer to read the whole article here."


def literal(text: str) -> str:
    """HTML that displays ``text`` literally: escaped, syntax made inert, newlines as ``<br>``.

    The result has no newline characters, so nothing downstream can re-indent or re-flow it.
    """
    escaped = text.translate(_LITERAL)
    return escaped.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "<br>")


def highlight(text: str, start: int, end: int) -> str:
    """``text`` as literal HTML with ``text[start:end]`` inside ``<mark>``.

    Raises:
        ValueError: If ``start``/``end`` are not a span of ``text``.
    """
    if not 0 <= start <= end <= len(text):
        raise ValueError(f"span {start}-{end} is outside a text of {len(text)} characters")
    return f"{literal(text[:start])}<mark>{literal(text[start:end])}</mark>{literal(text[end:])}"


def render_question(question: str) -> str:
    """The user's message as shown in the chat (their own text, shown literally)."""
    return f'<div class="qa-question">{literal(question)}</div>'


def render_error(message: str) -> str:
    """A chat reply saying that a question could not be answered, and why."""
    return f'<div class="qa-reply qa-error"><p>{literal(message)}</p></div>'


def render_result(result: Result, *, threshold: float) -> str:
    """The chat reply for ``result``: the best answer, its evidence and source, alternatives.

    Its size does not depend on the length of the articles: each answer brings its sentence,
    each lead at most ``LEAD_CHARS`` characters, and articles open on demand.

    Args:
        result: What ``QA.ask`` (or search + read) returned.
        threshold: The threshold the answers were selected with (named in an abstention).

    Returns:
        One line of HTML.
    """
    if result.abstained or not result.answers:
        return _render_abstention(result, threshold)
    best, *others = result.answers
    parts = ['<div class="qa-reply">', _read_as(result), _render_answer(best, primary=True)]
    if others:
        parts.append(
            _folded(
                "qa-alternatives",
                counted(len(others), "other possible answer"),
                [_render_answer(a, primary=False) for a in others],
            )
        )
    parts.append(f'<p class="qa-mode">{literal(_mode_line(result))}</p></div>')
    return "".join(parts)


def _read_as(result: Result) -> str:
    """How a follow-up was understood ("Read as: when did ...?"), or nothing."""
    if not result.understood_as:
        return ""
    return (
        '<p class="qa-read-as">Read as: <em>'
        f"{literal(result.understood_as)}</em> (from the conversation; press "
        "<em>New conversation</em> to ask afresh)</p>"
    )


def _folded(details_class: str, summary: str, items: list[str], list_class: str = "") -> str:
    """A folded, numbered list of already-rendered HTML ``items`` under a ``summary`` line."""
    attrs = f' class="{list_class}"' if list_class else ""
    rows = "".join(f"<li>{item}</li>" for item in items)
    return (
        f'<details class="{details_class}"><summary>{summary}</summary>'
        f"<ol{attrs}>{rows}</ol></details>"
    )


def _mode_line(result: Result) -> str:
    reading = "sentence matcher" if result.mode == "sentence" else result.mode
    return f"Answered by: {reading}. Every answer is quoted from an article, never generated."


def _render_answer(answer: Answer, *, primary: bool) -> str:
    cls = "qa-answer qa-best" if primary else "qa-answer"
    head = "Answer" if primary else "Alternative"
    whole_sentence = answer.text == answer.context
    parts = [f'<div class="{cls}">']
    if not whole_sentence:
        parts.append(
            f'<p class="qa-short"><span class="qa-label">{head}</span> '
            f"<strong>{literal(answer.text)}</strong> {_score(answer.score)}</p>"
        )
    else:
        parts.append(
            f'<p class="qa-short"><span class="qa-label">{head}</span> '
            f"the best-matching sentence {_score(answer.score)}</p>"
        )
    if len(answer.sources) > 1:
        parts.append(_render_sources(answer.sources))
    else:
        parts.append(f'<blockquote class="qa-context">{_context_html(answer)}</blockquote>')
        parts.append(
            _source_line(answer.title, answer.path, answer.doc_id, answer.start, answer.end)
        )
        parts.append(_open_button(answer.doc_id, answer.start, answer.end, answer.text))
    parts.append("</div>")
    return "".join(parts)


def _render_sources(sources: Sequence[Source]) -> str:
    """The articles that give one answer: their count, then each one's sentence with its span
    marked, its source line (with its own score) and its button; at most ``MAX_SOURCES``, the
    rest counted."""
    shown = sources[:MAX_SOURCES]
    items = "".join(
        f'<li class="qa-agreeing"><blockquote class="qa-context">{_context_html(s)}</blockquote>'
        + _source_line(s.title, s.path, s.doc_id, s.start, s.end, score=s.score)
        + _open_button(s.doc_id, s.start, s.end, s.text)
        + "</li>"
        for s in shown
    )
    more = len(sources) - len(shown)
    rest = f'<p class="qa-more-sources">and {counted(more, "more article")}</p>' if more else ""
    return (
        f'<p class="qa-agree">{len(sources)} articles say so</p>'
        f'<ol class="qa-sources">{items}</ol>{rest}'
    )


def _score(score: float) -> str:
    return f'<span class="qa-score" title="answer score, 0 to 1">score {score:.2f}</span>'


def _context_html(answer: Answer | Source) -> str:
    """The supporting context with the span marked at its offsets (unmarked if they disagree)."""
    start = answer.start - answer.context_start
    end = answer.end - answer.context_start
    if 0 <= start <= end <= len(answer.context) and answer.context[start:end] == answer.text:
        return highlight(answer.context, start, end)
    return literal(answer.context)


def _source_line(
    title: str, path: str, doc_id: str, start: int, end: int, *, score: float | None = None
) -> str:
    where = literal(path) if doc_id == path else f"{literal(path)} · id {literal(doc_id)}"
    scored = "" if score is None else f" · {_score(score)}"
    return (
        f'<p class="qa-source">From <cite>{literal(title)}</cite> · {where} · '
        f"characters {start}–{end}{scored}</p>"
    )


def span_check(text: str) -> str:
    """A short digest of a span's text: the article view marks the span only if it matches."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _attribute(text: str) -> str:
    """``text`` as a double-quoted attribute value that reads back as exactly ``text``."""
    return text.translate(_ATTRIBUTE)


def _open_button(doc_id: str, start: int, end: int, text: str) -> str:
    """The button that opens the article with ``[start, end)`` (holding ``text``) marked.

    Its ``value`` is the JSON list ``[doc_id, start, end, span_check(text)]``: the chat's HTML
    sanitiser keeps a button's ``value`` (it drops ``data-*`` attributes).
    """
    reference = json.dumps([doc_id, start, end, span_check(text)], ensure_ascii=False)
    return (
        f'<p class="qa-open-row"><button type="button" class="qa-open" '
        f'value="{_attribute(reference)}">Show the article</button></p>'
    )


def render_article(doc: Document | None, start: int, end: int, check: str) -> str:
    """The whole article for the article panel, with ``[start, end)`` marked.

    The span is marked only when the article still holds, at these offsets, the text whose
    :func:`span_check` is ``check``; after the article was changed and indexed again, it is
    shown unmarked with a note saying why.

    Args:
        doc: The article as the live index holds it now, or ``None`` if it is gone.
        start: First character of the span in ``doc.text``.
        end: One past the span's last character.
        check: :func:`span_check` of the span's text when the reply was made.

    Returns:
        One line of HTML.
    """
    if doc is None:
        return (
            '<div class="qa-article"><p class="qa-article-note">This article is no longer in '
            "the index.</p></div>"
        )
    same = 0 <= start <= end <= len(doc.text) and span_check(doc.text[start:end]) == check
    body = highlight(doc.text, start, end) if same else literal(doc.text)
    note = (
        ""
        if same
        else '<p class="qa-article-note">The article has changed since this reply, so the '
        "passage is not marked.</p>"
    )
    where = (
        literal(doc.path)
        if doc.doc_id == doc.path
        else (f"{literal(doc.path)} · id {literal(doc.doc_id)}")
    )
    return (
        f'<div class="qa-article"><p class="qa-article-title"><strong>{literal(doc.title)}'
        f'</strong></p><p class="qa-source">{where} · {len(doc.text):,} characters</p>{note}'
        f'<div class="qa-doctext">{body}</div></div>'
    )


def _render_abstention(result: Result, threshold: float) -> str:
    parts = [
        '<div class="qa-reply qa-abstain">',
        _read_as(result),
        "<p><strong>The corpus does not answer this question.</strong> "
        f"No passage held an answer scoring at least {threshold:.2f}.</p>",
    ]
    if result.passages:
        closest, *others = result.passages[:LEADS]
        parts.append(
            f'<p>The closest passage:</p><div class="qa-lead">{_render_lead(closest)}</div>'
        )
        if others:
            parts.append(
                _folded(
                    "qa-more-leads",
                    counted(len(others), "more close passage"),
                    [_render_lead(p) for p in others],
                    list_class="qa-leads",
                )
            )
    parts.append(f'<p class="qa-mode">{literal(_mode_line(result))}</p></div>')
    return "".join(parts)


def _render_lead(passage: Passage) -> str:
    chunk = passage.chunk
    text = chunk.text
    if len(text) > LEAD_CHARS:
        cut = text.rfind(" ", 0, LEAD_CHARS)
        text = text[: cut if cut > 0 else LEAD_CHARS] + " …"
    return (
        f'<blockquote class="qa-context">{literal(text)}</blockquote>'
        + _source_line(passage.title, passage.path, chunk.doc_id, chunk.start, chunk.end)
        + _open_button(chunk.doc_id, chunk.start, chunk.end, chunk.text)
    )


def render_filter_note(description: str) -> str:
    """The line above a reply that was searched in some documents only: ``Searched only:
    folder business, since 2005-01-01`` (``Filter.describe()``; folder names shown literally)."""
    return (
        '<div class="qa-reply qa-filtered"><p class="qa-filter-note">'
        f'<span class="qa-label">Searched only:</span>{literal(description)}</p></div>'
    )


def render_documents(rows: Sequence[DocumentRow], summary: str) -> str:
    """The documents table (titles, files, sizes, chunk counts) under a one-line summary."""
    if not rows:
        return f'<div class="qa-docs"><p>{literal(summary)}</p></div>'
    body = "".join(
        "<tr>"
        f"<td>{literal(r.title)}</td>"
        f"<td><code>{literal(r.path)}</code>"
        + ("" if r.doc_id == r.path else f"<br><small>id {literal(r.doc_id)}</small>")
        + "</td>"
        f'<td class="qa-num">{r.characters:,}</td>'
        f'<td class="qa-num">{r.chunks:,}</td>'
        "</tr>"
        for r in rows
    )
    return (
        f'<div class="qa-docs"><p>{literal(summary)}</p><div class="qa-docscroll">'
        '<table class="qa-doctable">'
        "<thead><tr><th>Title</th><th>File</th><th>Characters</th><th>Chunks</th></tr></thead>"
        f"<tbody>{body}</tbody></table></div></div>"
    )


def render_notices(lines: Sequence[tuple[bool, str]]) -> str:
    """Outcome lines (ok or refused) of an upload, removal or index update."""
    if not lines:
        return ""
    items = "".join(
        f'<li class="{"qa-ok" if ok else "qa-refused"}">{"✓" if ok else "✗"} {literal(text)}</li>'
        for ok, text in lines
    )
    return f'<ul class="qa-notices">{items}</ul>'
