"""The chat's feedback: a like or dislike on a reply, a correction, the ``/feedback`` API.

A mark needs the question and the spans of the reply it is about. Both travel in the chat
history already, so nothing more is kept per session: the user's message holds the question
(as literal HTML) and each answer and lead of a reply names its span in its "Show the
article" button (``[doc_id, start, end, span_check(text)]``, see :mod:`qa.web.render`). The
server reads the span's text from the live index and takes it only when its digest matches, so
a mark can only ever name text an index really holds; a reply whose article changed since
cannot be marked. The session keeps only which reply each of its marks was about (so a later
mark on the same reply replaces the earlier one), bounded to the last ``KEPT_MARKS`` replies.

Marks are written by :class:`qa.feedback.FeedbackLog` beside the index.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr
from bs4 import BeautifulSoup, Tag

from qa.feedback import FEEDBACK_FILE, MAX_DOC_ID_CHARS, VERDICTS, FeedbackCounts, FeedbackLog, Span
from qa.pipeline import QA
from qa.store import IndexProblem
from qa.types import Document
from qa.web.render import literal, span_check

#: Replies whose mark a session remembers (to replace it when the same reply is marked again).
KEPT_MARKS = 50
#: The correction choice that says the corpus does not answer the question.
NO_ANSWER = "no-answer"
#: Longest label of a correction choice, in characters of the span.
CHOICE_CHARS = 90


@dataclass(frozen=True)
class SpanRef:
    """A span as a reply names it: document, offsets and the digest of its text."""

    doc_id: str
    start: int
    end: int
    check: str

    @classmethod
    def parse(cls, value: object) -> SpanRef | None:
        """From a button's ``value`` (the JSON list), or None if it is not one."""
        try:
            doc_id, start, end, check = json.loads(value) if isinstance(value, str) else value  # type: ignore[misc]
        except (TypeError, ValueError):
            return None
        ints = all(isinstance(x, int) and not isinstance(x, bool) for x in (start, end))
        if not (isinstance(doc_id, str) and isinstance(check, str) and ints):
            return None
        return cls(doc_id, start, end, check)

    def resolve(self, documents: Mapping[str, Document]) -> Span | None:
        """The span with its text from ``documents``, if it still holds the same text there."""
        doc = documents.get(self.doc_id)
        if doc is None or not 0 <= self.start < self.end <= len(doc.text):
            return None
        text = doc.text[self.start : self.end]
        return (
            Span(text, self.doc_id, self.start, self.end)
            if span_check(text) == self.check
            else None
        )


@dataclass
class ReplySpans:
    """What a chat reply offers to mark: its answers (best first) or, abstaining, its leads."""

    abstained: bool = False
    answers: list[SpanRef] = field(default_factory=list)
    leads: list[SpanRef] = field(default_factory=list)
    #: How a follow-up was read (the reply's "Read as: ..."), a question that stands alone.
    read_as: str | None = None

    @property
    def alternatives(self) -> list[SpanRef]:
        """What a correction may choose: the other answers, or the leads of an abstention."""
        return self.leads if self.abstained else self.answers[1:]


def message_html(message: object) -> str:
    """A chat message's HTML, whatever shape Gradio hands it in (a string, text parts)."""
    content = message.get("content") if isinstance(message, Mapping) else message
    if isinstance(content, str):
        return content
    if isinstance(content, Mapping):
        return str(content.get("text") or "")
    if isinstance(content, Sequence):
        return "".join(message_html({"content": part}) for part in content)
    return ""


def parse_reply(html: str) -> ReplySpans | None:
    """The spans a reply's HTML names, or None if it is no answer or abstention (an error).

    Each answer and lead gives the first "Show the article" button inside it (an answer that
    several articles give has one per article; its own comes first).
    """
    soup = BeautifulSoup(html, "html.parser")
    replies = [t for t in soup.find_all(recursive=False) if "qa-reply" in _classes(t)]
    if not replies:
        return None
    spans = ReplySpans(abstained="qa-abstain" in _classes(replies[-1]))
    taken: set[int] = set()
    for button in soup.select("button.qa-open"):
        holder = button.find_parent(class_=["qa-answer", "qa-lead"])
        ref = SpanRef.parse(button.get("value"))
        if holder is None or ref is None or id(holder) in taken:
            continue
        taken.add(id(holder))
        is_answer = "qa-answer" in _classes(holder)
        (spans.answers if is_answer else spans.leads).append(ref)
    read_as = soup.select_one(".qa-read-as em")
    spans.read_as = (read_as.get_text().strip() or None) if read_as else None
    if not spans.answers and not spans.abstained:
        return None
    return spans


def _classes(tag: Tag) -> list[str]:
    return [str(c) for c in tag.get_attribute_list("class") if c]


def question_text(html: str) -> str:
    """The question a user message shows (its literal HTML read back, ``<br>`` a newline)."""
    soup = BeautifulSoup(html, "html.parser")
    for line_break in soup.find_all("br"):
        line_break.replace_with("\n")
    return soup.get_text().strip()


def _role(message: object) -> str:
    return str(message.get("role", "")) if isinstance(message, Mapping) else ""


class ChatFeedback:
    """The page's feedback handlers over one ``QA``: marks, corrections, counts, the API.

    Args:
        qa: The pipeline whose live index every span is checked against, and beside whose
            index the marks are kept.
    """

    def __init__(self, qa: QA) -> None:
        self.qa = qa
        self.log = FeedbackLog.of(qa)
        self._copies: Path | None = None
        self._copy_lock = threading.Lock()

    def reply_at(self, history: Sequence[object], index: object) -> tuple[str, ReplySpans]:
        """The question and spans of the reply at ``index`` of the chat history.

        The question is the user's message before the reply, or how the reply says a
        follow-up was read (a question that stands alone, as an evaluation set needs).

        Raises:
            ValueError: If there is no reply with answers there, or no question before it.
        """
        if isinstance(index, list | tuple):  # Gradio gives (message, part) for some layouts
            index = index[0] if index else None
        if not isinstance(index, int) or isinstance(index, bool):
            raise ValueError("no reply was named")
        if not 0 < index < len(history) or _role(history[index]) != "assistant":
            raise ValueError("there is no reply there to mark")
        spans = parse_reply(message_html(history[index]))
        asked = [m for m in history[:index] if _role(m) == "user"]
        if spans is None or not asked:
            raise ValueError("only a reply with an answer or with no answer can be marked")
        question = spans.read_as or question_text(message_html(asked[-1]))
        return question, spans

    def _resolve(self, ref: SpanRef | None) -> Span | None:
        if ref is None:
            return None
        span = ref.resolve(self.qa.index.documents)
        if span is None:
            raise ValueError("the article has changed since this reply, so it cannot be marked")
        return span

    def like(
        self,
        history: Sequence[object],
        index: object,
        liked: object,
        marks: Mapping[int, str] | None,
    ) -> tuple[str, dict[int, str]]:
        """Record a like (``liked`` True), dislike (False) or either taken back (``""``).

        A like marks the best answer right (an abstention: that the corpus has no answer);
        a dislike marks it wrong (an abstention: that the corpus does answer it), which a
        correction may then complete. A mark replaces this session's earlier mark of the
        same reply.

        Returns:
            A status line (HTML) and the session's marks, updated.
        """
        kept = dict(marks or {})
        try:
            question, spans = self.reply_at(history, index)
            key = int(index[0] if isinstance(index, list | tuple) else index)  # type: ignore[arg-type]
            earlier = kept.get(key)
            if liked is True or liked is False:
                best = None if spans.abstained else self._resolve(spans.answers[0])
                verdict = "right" if liked else "wrong"
                record = self.log.record(question, verdict, answer=best, replaces=earlier)
            elif earlier is not None:
                record = self.log.withdraw(question, earlier)
            else:
                return "", kept
        except (IndexProblem, ValueError, OSError) as exc:
            return _status(f"Not saved: {exc}.", ok=False), kept
        kept[key] = record["id"]
        kept = dict(list(kept.items())[-KEPT_MARKS:])
        return _status(_saved(record, spans.alternatives), ok=True), kept

    def choices(self, history: Sequence[object]) -> list[tuple[str, str]]:
        """Corrections for the last reply: its alternatives (or leads), then "no answer".

        Each value is the JSON ``[reply index, doc_id, start, end, check]`` (``[reply index]``
        for "no answer"), so a correction names the reply it corrects.
        """
        last = next(
            (i for i in range(len(history) - 1, -1, -1) if _role(history[i]) == "assistant"),
            None,
        )
        if last is None:
            return []
        try:
            _, spans = self.reply_at(history, last)
            documents = self.qa.index.documents
        except Exception:  # noqa: BLE001 - no choices is the safe answer to any odd history
            return []
        choices = []
        for ref in spans.alternatives:
            span = ref.resolve(documents)
            if span is not None:
                value = json.dumps([last, ref.doc_id, ref.start, ref.end, ref.check])
                choices.append((_label(span, documents[span.doc_id]), value))
        choices.append(("The corpus does not answer this question", json.dumps([last])))
        return choices

    def correct(
        self, history: Sequence[object], choice: object, marks: Mapping[int, str] | None
    ) -> tuple[str, dict[int, str]]:
        """Record a correction chosen in the correction row (see :meth:`choices`).

        Returns:
            A status line (HTML) and the session's marks, updated.
        """
        kept = dict(marks or {})
        try:
            chosen = json.loads(choice) if isinstance(choice, str) else None
            if not isinstance(chosen, list) or not chosen:
                raise ValueError("choose the right answer first")
            question, spans = self.reply_at(history, chosen[0])
            best = None if spans.abstained else self._resolve(spans.answers[0])
            earlier = kept.get(chosen[0])
            if len(chosen) == 1:
                record = self.log.record(question, "no-answer", answer=best, replaces=earlier)
            else:
                ref = SpanRef.parse(chosen[1:])
                if ref is None or ref not in spans.alternatives:
                    raise ValueError("that choice is not one this reply offered")
                record = self.log.record(
                    question, "wrong", answer=best, correction=self._resolve(ref), replaces=earlier
                )
        except (IndexProblem, ValueError, OSError) as exc:
            return _status(f"Not saved: {exc}.", ok=False), kept
        kept[chosen[0]] = record["id"]
        kept = dict(list(kept.items())[-KEPT_MARKS:])
        return _status(_saved(record, []), ok=True), kept

    def api(self, question: str, verdict: str, span: Span | None) -> dict[str, Any]:
        """Record a mark sent over HTTP (:func:`request_span` reads its span).

        Returns:
            The line written and the counts so far (:meth:`counts_dict`).

        Raises:
            ValueError: Saying why the mark is refused.
        """
        record = self.log.record(question, verdict, answer=span)
        return {"recorded": record, "counts": self.counts_dict()}

    def counts(self) -> FeedbackCounts:
        return self.log.counts()

    def counts_dict(self) -> dict[str, int]:
        counts = self.counts()
        return {
            "right": counts.right,
            "wrong": counts.wrong,
            "no_answer": counts.no_answer,
            "total": counts.total,
        }

    def counts_html(self) -> str:
        """The feedback tab's line: how many marks say what."""
        counts = self.counts()
        if not counts.total:
            return "<p>No answers marked yet.</p>"
        line = (
            f"{counts.total} marked: {counts.right} right, {counts.wrong} wrong, "
            f"{counts.no_answer} with no answer in the corpus."
        )
        return f"<p>{literal(line)}</p>"

    def download(self) -> str | None:
        """A copy of the feedback file for the download button (None while there is none).

        A copy in a temporary folder of this page, because Gradio serves files only from
        there (or the current folder), wherever the index lives. The folder goes with the
        page's handlers (or with the process, at exit): no copy outlives the server.
        """
        data = self.log.read_bytes()
        if not data:
            return None
        with self._copy_lock:
            if self._copies is None:
                self._copies = Path(tempfile.mkdtemp(prefix="qa-feedback-"))
                weakref.finalize(self, shutil.rmtree, self._copies, ignore_errors=True)
            target = self._copies / FEEDBACK_FILE
            partial = self._copies / f".{FEEDBACK_FILE}.partial"
            partial.write_bytes(data)
            os.replace(partial, target)
        return str(target)


def wire_feedback(
    feedback: ChatFeedback,
    chatbot: gr.Chatbot,
    correction: tuple[gr.Dropdown, gr.Button, gr.HTML],
    tab: tuple[gr.Tab, gr.HTML, gr.DownloadButton],
) -> None:
    """Wire the chat's likes and dislikes, the correction row and the feedback tab's counts."""
    choice, save, status = correction
    feedback_tab, count, download = tab
    # Which reply each of this session's marks was about: a later mark replaces it.
    marks = gr.State({})
    hidden: dict[str, Any] = {"api_visibility": "undocumented"}
    shown = [status, marks, count, download]

    def like(
        history: list[dict[str, Any]], kept: dict[int, str], data: gr.LikeData
    ) -> tuple[str, dict[int, str], str, str | None]:
        line, kept = feedback.like(history, data.index, data.liked, kept)
        return line, kept, feedback.counts_html(), feedback.download()

    def correct(
        history: list[dict[str, Any]], chosen: str | None, kept: dict[int, str]
    ) -> tuple[str, dict[int, str], str, str | None]:
        line, kept = feedback.correct(history, chosen, kept)
        return line, kept, feedback.counts_html(), feedback.download()

    def offer(history: list[dict[str, Any]]) -> Any:
        return gr.Dropdown(choices=feedback.choices(history), value=None)

    def refresh() -> tuple[str, str | None]:
        return feedback.counts_html(), feedback.download()

    chatbot.like(like, [chatbot, marks], shown, **hidden)
    save.click(correct, [chatbot, choice, marks], shown, **hidden)
    chatbot.change(offer, chatbot, choice, queue=False, **hidden)
    feedback_tab.select(refresh, None, [count, download], queue=False, **hidden)


def request_span(
    answer: object, doc_id: object, start: object, end: object, verdict: object
) -> Span | None:
    """The span a ``/feedback`` request names (None: no answer, an abstention marked).

    Raises:
        ValueError: If the verdict is unknown, a value is of the wrong kind or too long, or a
            wrong answer comes without its text.
    """
    if verdict not in VERDICTS:
        raise ValueError(f"the verdict must be one of {', '.join(VERDICTS)}, got {verdict!r}")
    if not isinstance(answer, str | type(None)) or not isinstance(doc_id, str | type(None)):
        raise ValueError("the answer and the document id must be text")
    if len(doc_id or "") > MAX_DOC_ID_CHARS:
        raise ValueError(f"the document id is longer than {MAX_DOC_ID_CHARS:,} characters")
    if answer:
        return Span(answer, doc_id or "", _integer(start, "start"), _integer(end, "end"))
    if verdict == "wrong":
        raise ValueError("a wrong answer needs its text, document and offsets")
    return None


def _integer(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise ValueError(f"{name} must be a whole number")
    return int(value)


def _label(span: Span, doc: Document) -> str:
    """A correction choice as the dropdown shows it: the span and its article, both cut short."""
    return (
        f"“{_clip(span.text, CHOICE_CHARS)}” ({_clip(doc.title, CHOICE_CHARS // 2)}, "
        f"characters {span.start}–{span.end})"
    )


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " …"


def _saved(record: Mapping[str, Any], alternatives: Sequence[SpanRef]) -> str:
    verdict = record["verdict"]
    if verdict == "withdrawn":
        return "Mark taken back."
    if verdict == "right":
        said = "right" if record["answerable"] else "right: the corpus does not answer it"
        return f"Saved: marked {said}. Thank you."
    if verdict == "no-answer":
        return "Saved: the corpus does not answer this question. Thank you."
    if record["answerable"]:
        return "Saved: marked wrong, with the right answer. Thank you."
    if alternatives:
        return (
            "Saved: marked wrong. If one of the choices under the chat is right, or the "
            "corpus has no answer, choose it there and press Save correction."
        )
    return (
        "Saved: marked wrong. If the corpus has no answer, choose that under the chat and "
        "press Save correction."
    )


def _status(text: str, *, ok: bool) -> str:
    return f'<p class="{"qa-ok" if ok else "qa-refused"}">{literal(text)}</p>'
