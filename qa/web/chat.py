"""The chat: a question and its earlier turns made into a reply, and the chat's events.

A turn runs in two steps: the question shows in the chat at once (outside the queue), then the
reply comes when the question has been answered (at most ``ASK_CONCURRENCY`` at once). The
filter row's fields become a :class:`qa.filters.Filter`; a refused question or option gets a
reply saying why. The article panel asks :meth:`ChatHandlers.article` for an article when a
reply's "Show the article" button is pressed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, cast

import gradio as gr

from qa.conversation import Turn, add_turn
from qa.filters import Filter, folders
from qa.pipeline import MAX_QUESTION_CHARS, QA
from qa.settings import RetrievalMode
from qa.store import IndexMissingError, IndexProblem
from qa.types import Result
from qa.web.render import (
    render_article,
    render_error,
    render_filter_note,
    render_question,
    render_result,
)

#: The folder choice of the filter row that searches every folder.
ALL_FOLDERS = "All folders"
#: Questions answered at once. Answering is CPU-bound, so more than a few only queue inside
#: the worker threads; a few keep a slow question from holding up the ones behind it.
ASK_CONCURRENCY = 4


class ChatHandlers:
    """The chat's part of :class:`qa.web.app.WebApp`: answering, the filter row, the article
    panel, and the chat's events."""

    qa: QA

    def default_threshold(self) -> float:
        """The threshold the settings name, else the one recommended for the reading mode."""
        from qa.reading.answers import threshold_in_use

        return threshold_in_use(self.qa.settings, self.qa.reading.mode)[0]

    def ask(
        self,
        question: str,
        *,
        n_answers: int,
        threshold: float,
        mode: RetrievalMode,
        conversation: Sequence[Turn] = (),
        filter: Filter | None = None,
    ) -> Result:
        """Answer ``question`` retrieving with ``mode`` (hybrid, dense or lexical), read after
        the earlier turns of its ``conversation`` (see :mod:`qa.conversation`), from the
        documents that pass ``filter`` (all without one).

        Raises:
            ValueError: If the question or an option is refused (``qa.pipeline.check_request``).
        """
        return self.qa.ask(
            question,
            n_answers=n_answers,
            threshold=threshold,
            mode=mode,
            conversation=conversation,
            filter=filter,
        )

    def reply(self, question: str, *options: Any) -> str:
        """The chat reply (HTML) alone: :meth:`converse` without the turns."""
        return self.converse(question, *options)[0]

    def converse(
        self,
        question: str,
        n_answers: float,
        threshold: float,
        mode: RetrievalMode,
        turns: Sequence[Turn] = (),
        folder: str | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> tuple[str, list[Turn]]:
        """The chat reply (HTML) to ``question`` after ``turns``, or a message saying why there
        is none; and the conversation's turns with this one added (unchanged on a refusal).
        ``folder``, ``since`` and ``until`` are the filter row's fields (:meth:`filter_of`)."""
        try:
            only = self.filter_of(folder, since, until)
            # A number that is not whole goes through as it is, for check_request to refuse.
            n = cast(int, _whole(n_answers))
            result = self.ask(
                question,
                n_answers=n,
                threshold=threshold,
                mode=mode,
                conversation=turns,
                filter=only,
            )
        except IndexMissingError:
            message = "There is no index yet: open the Documents tab and press Update index."
            return render_error(message), list(turns)
        except (IndexProblem, ValueError) as exc:
            return render_error(f"This question cannot be answered: {exc}."), list(turns)
        kept = add_turn(turns, question, result)
        html = render_result(result, threshold=float(threshold))
        return (render_filter_note(only.describe()) + html if only else html), kept

    def filter_of(
        self, folder: str | None = None, since: str | None = None, until: str | None = None
    ) -> Filter | None:
        """The filter row's fields as a filter (``None`` when they restrict nothing).

        Raises:
            ValueError: For a day that is not ``YYYY-MM-DD`` or a range that is empty.
        """
        where = {} if folder in (None, "", ALL_FOLDERS) else {"folder": str(folder)}
        found = Filter.parse(since=since, until=until)
        return Filter(where, found.since, found.until) or None

    def folder_choices(self) -> list[str]:
        """The filter row's folder choices: all folders, then each folder of the index."""
        try:
            return [ALL_FOLDERS, *folders(self.qa.index.catalog())]
        except IndexProblem:
            return [ALL_FOLDERS]

    def article(self, doc_id: str, start: int, end: int, check: str) -> str:
        """The article panel's HTML for a "Show the article" button of a reply.

        Read from the live index as it is now; :func:`qa.web.render.render_article` marks the
        span only if the article still holds the reply's text there.
        """
        try:
            doc = self.qa.index.documents.get(str(doc_id))
        except IndexProblem:
            doc = None
        try:
            start, end = int(start), int(end)
        except (TypeError, ValueError):
            start = end = -1
        return render_article(doc, start, end, str(check))

    def article_function(self) -> Any:
        """:meth:`article` as the article panel's server function.

        The panel's script calls it by name with one argument, a button's ``value``: the JSON
        list ``[doc_id, start, end, check]``.
        """

        def article(reference: str) -> str:
            try:
                doc_id, start, end, check = json.loads(reference)
            except (TypeError, ValueError):
                doc_id, start, end, check = "", -1, -1, ""
            return self.article(doc_id, start, end, check)

        return article

    def wire_chat(
        self,
        chatbot: gr.Chatbot,
        question: gr.Textbox,
        ask: gr.Button,
        new: gr.Button,
        examples: list[gr.Button],
        n_answers: gr.Slider,
        threshold: gr.Slider,
        mode: gr.Radio,
        filters: tuple[gr.Dropdown, gr.Textbox, gr.Textbox],
    ) -> None:
        """Wire the chat's events: a question (typed, or an example's) and its reply, a new
        conversation, the chat cleared."""
        pending = gr.State("")
        # The conversation's last turns (question, how it was read, best answer, its
        # document): a few short strings per session, what follow-up questions lean on.
        turns = gr.State([])

        def add_question(text: str, history: list[dict[str, Any]]) -> tuple[str, list, str]:
            text = (text or "").strip()
            if not text:
                return "", history, ""
            # The history shows at most the accepted length; the reply says the rest is refused.
            shown = text if len(text) <= MAX_QUESTION_CHARS else text[:MAX_QUESTION_CHARS] + " …"
            return "", [*history, {"role": "user", "content": render_question(shown)}], text

        def add_reply(
            text: str,
            history: list[dict[str, Any]],
            n: float,
            t: float,
            m: RetrievalMode,
            earlier: list[Turn],
            *only: str | None,
        ) -> tuple[list[dict[str, Any]], list[Turn]]:
            if not text:
                return history, earlier
            html, kept = self.converse(text, n, t, m, earlier or [], *only)
            return [*history, {"role": "assistant", "content": html}], kept

        hidden: dict[str, Any] = {"api_visibility": "undocumented"}
        # An example button's value is its question, so it feeds the same two steps.
        sources: list[tuple[Any, gr.Textbox | gr.Button]] = [
            (question.submit, question),
            (ask.click, question),
        ]
        sources += [(example.click, example) for example in examples]
        for trigger, source in sources:
            trigger(
                add_question,
                [source, chatbot],
                [question, chatbot, pending],
                queue=False,
                **hidden,
            ).then(
                add_reply,
                [pending, chatbot, n_answers, threshold, mode, turns, *filters],
                [chatbot, turns],
                concurrency_limit=ASK_CONCURRENCY,
                concurrency_id="ask",
                **hidden,
            )

        def start_over() -> tuple[list, list, str]:
            return [], [], ""

        # A new conversation: the chat empties and no earlier turn shapes the next question.
        new.click(start_over, None, [chatbot, turns, question], queue=False, **hidden)
        # The chat's own clear button empties the chat: the conversation ends with it.
        chatbot.clear(lambda: [], None, turns, queue=False, **hidden)


def _whole(n: float) -> int | float:
    """A slider's number as an ``int`` when it is whole (validation refuses anything else)."""
    return int(n) if isinstance(n, int | float) and float(n).is_integer() else n
