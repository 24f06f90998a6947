"""The HTTP API beside the page: ``/ask`` and ``/feedback``, their options and errors.

``gradio_client.Client(url).predict(..., api_name="/ask")`` calls them. They answer through the
same handlers as the chat, so the same requests are refused (``qa.pipeline.check_request``);
here a refusal is the error of the call (``gradio.Error``), not a reply.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from qa.conversation import Turn, turns_from_json
from qa.filters import Filter
from qa.store import IndexProblem
from qa.types import Result
from qa.web.chat import ChatHandlers
from qa.web.feedback import ChatFeedback, request_span


class ApiEndpoints(ChatHandlers):
    """The API's part of :class:`qa.web.app.WebApp`: the functions ``/ask`` and ``/feedback``
    run."""

    feedback: ChatFeedback

    def api_ask(
        self,
        question: str,
        n_answers: int | None = None,
        threshold: float | None = None,
        mode: str | None = None,
        conversation: list[dict[str, Any]] | None = None,
        where: str | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> dict[str, Any]:
        """Answer a question; the answers (with sources and offsets) and passages as JSON.

        The JSON is :func:`api_payload` of the result: ``Result.to_dict()`` with each corpus
        path under ``file``. The default ``gradio_client.Client(url).predict(question,
        api_name="/ask")`` works with it (the client tries to download any dict with a
        ``path`` key).

        Args:
            question: The question, at most 1,000 characters.
            n_answers: How many answers at most, 1 to 20 (empty: the configured number).
            threshold: Score from 0 to 1 below which the system abstains (empty: the
                recommended value).
            mode: Retrieval mode: hybrid, dense or lexical (empty: the configured one).
            conversation: The earlier turns, oldest first, for a follow-up question ("And
                when?"): the ``turn`` object of each earlier reply (``question``,
                ``understood``, ``answer``, ``doc_id``); empty: the question stands alone.
                The reply's ``understood_as`` says how a follow-up was read.
            where: Search only documents matching these conditions, ``KEY=VALUE`` separated
                by ``;`` (``folder=business; author=Ann Smith``; ``date>=YYYY-MM-DD`` and
                ``date<=YYYY-MM-DD`` work too; see :mod:`qa.filters`). The reply's
                ``filter`` says what was applied.
            since: Only documents dated this day or later, ``YYYY-MM-DD``.
            until: Only documents dated this day or earlier, ``YYYY-MM-DD``.

        Raises:
            gradio.Error: Saying why the question or an option was refused, or that there
                is no index yet.
        """
        try:
            only = Filter.parse(where=where, since=since, until=until) or None
            result = self.ask(
                question,
                n_answers=self.qa.settings.n_answers if n_answers is None else n_answers,
                threshold=self.default_threshold() if threshold is None else threshold,
                mode=mode or self.qa.settings.retrieval_mode,  # type: ignore[arg-type]
                conversation=turns_from_json(conversation),
                filter=only,
            )
        except (IndexProblem, ValueError) as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        payload = api_payload(result)
        payload["turn"] = Turn.of(question, result).to_dict()
        if only:
            payload["filter"] = only.to_dict()
        return payload

    def api_feedback(
        self,
        question: str,
        answer: str,
        doc_id: str,
        start: int,
        end: int,
        verdict: str,
    ) -> dict[str, Any]:
        """Mark an answer right, wrong or "no answer" (kept as evaluation data beside the index).

        Args:
            question: The question as asked (1 to 1,000 characters).
            answer: The answer's text, exactly the document's text from ``start`` to ``end``
                (as ``/ask`` returns it); empty with ``right`` (the abstention was right) or
                ``no-answer``.
            doc_id: The answer's document id (``doc_id`` of ``/ask``).
            start: The answer's first character in the document.
            end: One past its last character.
            verdict: right, wrong or no-answer.

        Returns:
            ``{"recorded": the line written, "counts": {"right", "wrong", "no_answer",
            "total"}}``.

        Raises:
            gradio.Error: Saying why the mark was refused (an answer that is not at those
                offsets of the live index, an unknown verdict, a value too long...).
        """
        try:
            span = request_span(answer, doc_id, start, end, verdict)
            return self.feedback.api(question, verdict, span)
        except (IndexProblem, ValueError, OSError) as exc:
            raise gr.Error(str(exc), print_exception=False) from None


def api_payload(result: Result) -> dict[str, Any]:
    """``result`` as the HTTP API returns it: ``Result.to_dict()``, corpus paths as ``file``.

    ``gradio_client`` takes any dict with a ``path`` key for a file of the server and tries to
    download it, which fails (403) for a corpus path; under ``file`` the default client call
    returns the JSON as it is.
    """
    payload = result.to_dict()
    sources = [s for a in payload["answers"] for s in a["sources"]]
    for item in [*payload["answers"], *sources, *payload["passages"]]:
        item["file"] = item.pop("path")
    return payload
