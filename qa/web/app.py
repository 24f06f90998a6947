"""The Gradio web page: a chat that answers from the corpus, a documents tab, a feedback tab.

This module puts the page together and serves it; each part has its own module:

* :mod:`qa.web.layout`: the page's tabs, components, texts and look (``build_page``);
* :mod:`qa.web.chat`: a question and its earlier turns made into a reply, the chat's events;
* :mod:`qa.web.api`: the HTTP API beside the page, ``/ask`` and ``/feedback``;
* :mod:`qa.web.documents`: the documents tab, files added and removed, index updates;
* :mod:`qa.web.feedback`: likes, dislikes and corrections of replies, kept as evaluation data;
* :mod:`qa.web.render`: the HTML of replies, articles and tables;
* :mod:`qa.web.uploads` (files saved into the corpus), :mod:`qa.web.memory` (memory given back).

The page only calls the Python API (``QA.ask``/``search``/``read``, ``build``, ``documents``)
and renders with :mod:`qa.web.render`, which shows every string taken from a document as
literal text. The same requests are refused everywhere (``qa.pipeline.check_request``): the
chat replies with the reason, the HTTP API raises it as the error of the call.
"""

from __future__ import annotations

import sys
from typing import Any

import gradio as gr

from qa.pipeline import QA
from qa.settings import Settings
from qa.store import IndexMissingError, IndexProblem
from qa.web.api import ApiEndpoints
from qa.web.chat import ASK_CONCURRENCY
from qa.web.documents import DocumentHandlers
from qa.web.feedback import ChatFeedback
from qa.web.layout import CSS, build_page
from qa.web.memory import limit_malloc_arenas

#: Sessions whose state Gradio keeps (the oldest is dropped first). Every visitor's page and
#: every ``gradio_client.Client`` is a session, held until this many newer ones exist, even
#: after it closed; ~60 KiB each on this page (its copy of the components' settings), so
#: Gradio's default of 10,000 would let them reach ~600 MiB. A session's state only carries a
#: question from one step of a turn to the next (the chat history lives in the browser).
SESSION_CAPACITY = 1_000


class WebApp(ApiEndpoints, DocumentHandlers):
    """The handlers of the page, over one ``QA`` object: the chat's (:mod:`qa.web.chat`), the
    API's (:mod:`qa.web.api`) and the documents tab's (:mod:`qa.web.documents`); the chat's
    feedback is ``feedback`` (:mod:`qa.web.feedback`), the page's layout :mod:`qa.web.layout`.

    Args:
        qa: The question-answering pipeline (its index is built or loaded on first use).
    """

    def __init__(self, qa: QA) -> None:
        self.qa = qa
        self.max_upload_bytes = qa.settings.max_upload_mb * 2**20
        self.feedback = ChatFeedback(qa)

    def blocks(self) -> gr.Blocks:
        """The page (:func:`qa.web.layout.build_page`), its events wired to these handlers."""
        return build_page(self)


def prepare(qa: QA) -> None:
    """Make ``qa`` ready to answer: build the index if there is none, load the models.

    The first build shows its progress in the terminal.
    """
    try:
        _ = qa.index
    except IndexProblem as exc:
        if qa.settings.engine == "ray":
            raise  # the cluster's index is built and deployed by `qa index` and `qa deploy`
        why = "There is no index yet" if isinstance(exc, IndexMissingError) else str(exc)
        print(f"{why}; building it from {qa.settings.corpus_dir}.", file=sys.stderr)
        report = qa.build(show_progress=True)
        print(report.describe(), file=sys.stderr)
    qa.reading.warm_up()


def create_app(qa: QA) -> gr.Blocks:
    """The page over ``qa``, ready to launch: index built, models loaded, queue configured."""
    prepare(qa)
    page = WebApp(qa).blocks()
    page.queue(default_concurrency_limit=ASK_CONCURRENCY)
    return page


def launch_options(settings: Settings) -> dict[str, Any]:
    """``Blocks.launch`` arguments: upload limit, look, sessions kept, no run history or SSR."""
    return {
        "max_file_size": settings.max_upload_mb * 2**20,
        "css": CSS,
        "theme": gr.themes.Soft(),
        "footer_links": ["api"],
        "run_history": False,
        "state_session_capacity": SESSION_CAPACITY,
        "ssr_mode": False,
        "show_error": True,
    }


def serve(
    settings: Settings | None = None, *, host: str = "127.0.0.1", port: int | None = None
) -> None:
    """Serve the page until interrupted (port ``None``: ``GRADIO_SERVER_PORT`` or 7860)."""
    limit_malloc_arenas()  # before any model loads or worker thread starts
    qa = QA(settings or Settings.from_env())
    page = create_app(qa)
    page.launch(server_name=host, server_port=port, **launch_options(qa.settings))
