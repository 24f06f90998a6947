"""The Gradio web page: a chat that answers from the corpus, and a documents tab.

The page only calls the Python API (``QA.ask``/``search``/``read``, ``build``, ``documents``)
and renders with :mod:`qa.web.render`, which shows every string taken from a document as
literal text. The chat shows messages as HTML with Markdown and LaTeX rendering switched off:
the renderer writes the only tags (``<mark>``, ``<details>``, ...) and escapes everything else.
A reply's "Show the article" button loads the article into the panel under the chat, on
demand, so the chat history (sent both ways on every turn) holds sentences, never articles.

The same requests are refused everywhere (``qa.pipeline.check_request``): the chat replies
with the reason, the HTTP API raises it as the error of the call.

Index updates run in the documents tab with a progress bar; questions asked meanwhile are
answered from the previous index, which ``QA.build`` replaces only when the new one is complete.
"""

from __future__ import annotations

import json
import logging
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import gradio as gr

from qa.conversation import Turn, add_turn, turns_from_json
from qa.filters import Filter, folders
from qa.pipeline import MAX_QUESTION_CHARS, QA, RETRIEVAL_MODES
from qa.settings import MAX_ANSWERS, RetrievalMode, Settings
from qa.store import IndexMissingError, IndexProblem
from qa.text import counted
from qa.types import Result
from qa.web.feedback import ChatFeedback, request_span
from qa.web.memory import limit_malloc_arenas, release_free_memory
from qa.web.render import (
    ARTICLE_HINT,
    DocumentRow,
    literal,
    render_article,
    render_documents,
    render_error,
    render_filter_note,
    render_notices,
    render_question,
    render_result,
)
from qa.web.uploads import Outcome, corpus_files, discard_uploaded, remove_files, save_uploads

log = logging.getLogger(__name__)

#: Questions over the seed articles that show an answer, another answer and an abstention.
EXAMPLES = (
    "How many liaison officers would each side have had under the 1994 plan?",
    "Where did Kim Jong-un and Trump agree to resume working-level talks?",
    "What is the capital of France?",
)
#: The folder choice of the filter row that searches every folder.
ALL_FOLDERS = "All folders"
#: Questions answered at once. Answering is CPU-bound, so more than a few only queue inside
#: the worker threads; a few keep a slow question from holding up the ones behind it.
ASK_CONCURRENCY = 4
#: Sessions whose state Gradio keeps (the oldest is dropped first). Every visitor's page and
#: every ``gradio_client.Client`` is a session, held until this many newer ones exist, even
#: after it closed; ~60 KiB each on this page (its copy of the components' settings), so
#: Gradio's default of 10,000 would let them reach ~600 MiB. A session's state only carries a
#: question from one step of a turn to the next (the chat history lives in the browser).
SESSION_CAPACITY = 1_000

INTRO = (
    "Ask a question about the news articles in the corpus. Every answer is an exact quote "
    "from an article, shown with the sentence around it and where it comes from; when no "
    "article answers, the chat says so."
)
PLACEHOLDER = (
    "<strong>Ask anything the articles might answer.</strong><br>"
    "Try one of the examples below the box, or add your own articles in the "
    "<em>Documents</em> tab."
)

DOCUMENTS_HELP = (
    "The articles the chat answers from. Files you add are saved into the corpus folder and "
    "indexed at once; questions asked meanwhile are answered from the current index until the "
    "new one is ready."
)

FEEDBACK_HELP = (
    "Answers marked in the chat (thumbs up: right; thumbs down: wrong, with the right answer "
    "if you choose it) are kept beside the index as an evaluation set: run it with "
    "`qa eval --set index/feedback.jsonl`. Only the question, the answers and the time are "
    "kept, nothing about who marked them."
)

CSS = """
.qa-reply p { margin: 0.25em 0; }
.qa-label { font-weight: 600; margin-right: 0.3em; }
.qa-score { font-size: 0.8em; padding: 0 0.45em; border-radius: 0.6em;
  background: var(--background-fill-secondary); color: var(--body-text-color-subdued);
  white-space: nowrap; }
blockquote.qa-context { margin: 0.35em 0; padding: 0.2em 0.8em;
  border-left: 3px solid var(--color-accent); }
.qa-reply mark, .qa-docs mark { background: #ffe58a; color: #1a1a1a; padding: 0 0.1em;
  border-radius: 2px; }
.qa-source, .qa-mode { font-size: 0.82em; color: var(--body-text-color-subdued); }
.qa-read-as { font-size: 0.86em; color: var(--body-text-color-subdued); }
.qa-reply details { margin: 0.3em 0; }
.qa-open-row { margin: 0.2em 0 0.4em; }
button.qa-open { font-size: 0.82em; padding: 0.1em 0.7em; border-radius: 0.6em; cursor: pointer;
  border: 1px solid var(--border-color-primary); background: var(--background-fill-secondary);
  color: var(--link-text-color); }
.qa-article-title { margin: 0.2em 0; }
.qa-article-note { font-size: 0.88em; color: var(--body-text-color-subdued); }
.qa-reply summary { cursor: pointer; font-size: 0.88em; color: var(--link-text-color); }
.qa-doctext { position: relative; max-height: 20em; overflow: auto; padding: 0.5em 0.8em;
  border: 1px solid var(--border-color-primary); border-radius: 6px; font-size: 0.9em; }
.qa-alternatives ol, .qa-leads { padding-left: 1.4em; }
.qa-answer + .qa-answer { margin-top: 0.6em; }
.qa-abstain > p:first-child strong { color: var(--body-text-color); }
.qa-error p { color: var(--error-text-color); }
.qa-docscroll { max-height: 26em; overflow: auto;
  border: 1px solid var(--border-color-primary); border-radius: 6px; }
.qa-doctable { width: 100%; border-collapse: collapse; font-size: 0.92em; margin: 0 !important; }
.qa-doctable thead th { position: sticky; top: 0; background: var(--background-fill-secondary); }
.qa-doctable th, .qa-doctable td { text-align: left; padding: 0.35em 0.6em;
  border-bottom: 1px solid var(--border-color-primary); vertical-align: top; }
.qa-doctable td.qa-num { text-align: right; font-variant-numeric: tabular-nums; }
.qa-doctable th:nth-child(n+3) { width: 7em; text-align: right; }
.qa-notices { list-style: none; padding-left: 0; margin: 0.3em 0; }
.qa-notices .qa-refused { color: var(--error-text-color); }
#qa-examples { gap: 0.5em; align-items: center; flex-wrap: wrap; }
#qa-examples > * { flex: 0 1 auto !important; width: auto !important; min-width: 0 !important; }
"""

#: The article panel's script: a "Show the article" button in the chat asks the server for the
#: article (``WebApp.article``) and the panel shows it, scrolled to the marked passage. One
#: listener on the document, replaced if the panel loads again, catches every button, those of
#: replies added later included.
ARTICLE_JS = """
const scrollToMark = (tries) => {
  const text = element.querySelector(".qa-doctext");
  if (!text) {
    if (tries > 0) setTimeout(() => scrollToMark(tries - 1), 50);  // not rendered yet
    return;
  }
  element.scrollIntoView({ block: "nearest" });
  const mark = text.querySelector("mark");
  if (mark) text.scrollTop = Math.max(0, mark.offsetTop - text.clientHeight / 3);
};
if (window.__qaOpenArticle) {
  document.removeEventListener("click", window.__qaOpenArticle, true);
}
window.__qaOpenArticle = async (event) => {
  const button = event.target instanceof Element ? event.target.closest("button.qa-open") : null;
  if (!button || !button.closest("#qa-chat")) return;
  event.preventDefault();
  props.value = '<p class="qa-article-note">Loading the article…</p>';
  props.value = await server.article(button.value);
  scrollToMark(100);
};
document.addEventListener("click", window.__qaOpenArticle, true);
"""


class WebApp:
    """The handlers of the page, over one ``QA`` object.

    Args:
        qa: The question-answering pipeline (its index is built or loaded on first use).
    """

    def __init__(self, qa: QA) -> None:
        self.qa = qa
        self.max_upload_bytes = qa.settings.max_upload_mb * 2**20
        self.feedback = ChatFeedback(qa)

    # Asking

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
            return [ALL_FOLDERS, *folders(self.qa.index.documents.values())]
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

    def _article_function(self) -> Any:
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

    # Documents

    def documents_html(self) -> str:
        """The documents table with a summary line (and what is not indexed yet)."""
        try:
            index = self.qa.index
        except IndexMissingError:
            return render_documents([], "There is no index yet: press Update index to build it.")
        counts = Counter(chunk.doc_id for chunk in index.chunks)
        docs = sorted(index.documents.values(), key=lambda d: (d.title.lower(), d.doc_id))
        rows = [DocumentRow(d.title, d.path, d.doc_id, len(d.text), counts[d.doc_id]) for d in docs]
        built = str(index.manifest.get("built_at", "")).replace("T", " ").replace("+00:00", " UTC")
        summary = (
            f"{counted(len(rows), 'document')}, {counted(len(index.chunks), 'chunk')} in the index"
        )
        summary += f" (built {built})." if built else "."
        on_disk = set(corpus_files(self.qa.settings.corpus_dir))
        indexed = {d.path for d in docs}
        new, gone = len(on_disk - indexed), len(indexed - on_disk)
        notes = [f"{counted(new, 'file')} in the corpus not indexed yet"] if new else []
        notes += [f"{counted(gone, 'indexed file')} no longer in the corpus"] if gone else []
        if notes:
            summary += " " + "; ".join(notes) + ": press Update index."
        return render_documents(rows, summary)

    def file_choices(self) -> list[tuple[str, str]]:
        """Corpus files for the removal list, labelled with the titles found in them."""
        titles: dict[str, list[str]] = {}
        try:
            for doc in self.qa.index.documents.values():
                titles.setdefault(doc.path, []).append(doc.title)
        except IndexMissingError:
            pass
        choices = []
        for path in corpus_files(self.qa.settings.corpus_dir):
            found = titles.get(path)
            if not found:
                label = f"{path} (not indexed yet)"
            elif len(found) == 1:
                label = f"{path}: {found[0]}"
            else:
                label = f"{path}: {len(found)} articles"
            choices.append((label, path))
        return choices

    def upload(self, files: list[str] | None) -> tuple[str, bool]:
        """Save uploaded files into the corpus; returns the outcome and whether it changed.

        Gradio's temporary copies of the uploads are deleted afterwards, saved or refused:
        the corpus holds what was accepted, and nothing else is kept.
        """
        if not files:
            return "", False
        try:
            outcomes = save_uploads(
                [(Path(f), Path(f).name) for f in files],
                self.qa.settings.corpus_dir,
                self.max_upload_bytes,
            )
        finally:
            discard_uploaded([Path(f) for f in files], Path(gr.utils.get_upload_folder()))
        return _notices(outcomes), any(o.ok for o in outcomes)

    def remove(self, paths: list[str] | None) -> tuple[str, bool]:
        """Delete the chosen files from the corpus; returns the outcome and whether it changed."""
        if not paths:
            return render_notices([(False, "Choose the files to remove first.")]), False
        outcomes = remove_files(paths, self.qa.settings.corpus_dir)
        return _notices(outcomes), any(o.ok for o in outcomes)

    def update_index(self, rebuild: bool = False, progress: Any = None) -> str:
        """Bring the index up to date with the corpus (or rebuild it), reporting progress.

        Args:
            rebuild: Re-embed every document instead of only added and changed ones.
            progress: A ``gr.Progress`` (or any callable taking ``(done, total)`` tuples).

        Returns:
            One line saying what changed.
        """

        def embedded(done: int, total: int) -> None:
            if progress is not None and total:
                progress((done, total), desc="Embedding text", unit="chunks")

        if progress is not None:
            progress(0.0, desc="Reading the corpus, embedding new text")
        try:
            report = self.qa.build(rebuild=rebuild, progress=embedded, show_progress=False)
        except (IndexProblem, OSError, ValueError) as exc:
            log.exception("index update failed")
            return render_notices([(False, f"The index could not be updated: {exc}")])
        finally:
            # The build's working memory is free now but held by this thread's malloc arena.
            release_free_memory()
        return render_notices([(True, report.describe())])

    # The page

    def blocks(self) -> gr.Blocks:
        """The page: a chat tab with folded settings, and a documents tab."""
        n_default = self.qa.settings.n_answers
        with gr.Blocks(title="News QA", analytics_enabled=False) as page:
            gr.Markdown(f"# News QA\n{INTRO}")
            with gr.Tabs():
                with gr.Tab("Ask", id="ask"):
                    chatbot = gr.Chatbot(
                        label="Conversation",
                        show_label=False,
                        elem_id="qa-chat",
                        height=560,
                        render_markdown=False,
                        sanitize_html=True,
                        latex_delimiters=[],
                        allow_tags=False,
                        buttons=[],
                        feedback_options=("Like", "Dislike"),
                        placeholder=PLACEHOLDER,
                        autoscroll=True,
                    )
                    with gr.Row(equal_height=True):
                        question = gr.Textbox(
                            show_label=False,
                            placeholder="Type a question and press Enter",
                            elem_id="qa-question",
                            scale=6,
                            max_lines=4,
                            max_length=MAX_QUESTION_CHARS,
                            autofocus=True,
                        )
                        ask = gr.Button("Ask", variant="primary", scale=1, elem_id="qa-ask")
                        new = gr.Button(
                            "New conversation", scale=1, elem_id="qa-new", variant="secondary"
                        )
                    with gr.Row(elem_id="qa-examples"):
                        gr.Markdown("Try:", elem_classes="qa-try")
                        examples = [
                            gr.Button(q, size="sm", variant="secondary", elem_classes="qa-example")
                            for q in EXAMPLES
                        ]
                    filters = self._filter_row()
                    correction = self._correction_row()
                    gr.HTML(
                        f'<p class="qa-article-note">{literal(ARTICLE_HINT)}</p>',
                        elem_id="qa-article",
                        server_functions=[self._article_function()],
                        js_on_load=ARTICLE_JS,
                        padding=False,
                    )
                    with gr.Accordion("Settings", open=False, elem_id="qa-settings"):
                        with gr.Row():
                            n_answers = gr.Slider(
                                1,
                                MAX_ANSWERS,
                                value=n_default,
                                step=1,
                                label="Answers to show",
                                info="The best answer, then alternatives folded below it.",
                            )
                            threshold = gr.Slider(
                                0.0,
                                1.0,
                                value=round(self.default_threshold(), 2),
                                step=0.01,
                                label="Threshold",
                                info="Answers scoring lower are not shown; if none is left, "
                                "the chat says the corpus does not answer.",
                            )
                            mode = gr.Radio(
                                list(RETRIEVAL_MODES),
                                value=self.qa.settings.retrieval_mode,
                                label="Retrieval",
                                info="hybrid: meaning + keywords; dense: meaning; "
                                "lexical: keywords (BM25).",
                            )
                with gr.Tab("Documents", id="documents"):
                    gr.Markdown(DOCUMENTS_HELP)
                    docs_view = gr.HTML(elem_id="qa-documents")
                    with gr.Row():
                        with gr.Column():
                            files = gr.File(
                                label="Add articles (" + ", ".join(_suffixes()) + "; at most "
                                f"{self.qa.settings.max_upload_mb} MB each)",
                                file_count="multiple",
                                file_types=list(_suffixes()),
                                type="filepath",
                                elem_id="qa-upload",
                            )
                        with gr.Column():
                            to_remove = gr.Dropdown(
                                multiselect=True,
                                label="Remove files from the corpus",
                                elem_id="qa-remove-choice",
                            )
                            remove = gr.Button(
                                "Remove chosen files", variant="stop", elem_id="qa-remove"
                            )
                    with gr.Row():
                        update = gr.Button("Update index", variant="primary", elem_id="qa-update")
                        rebuild = gr.Button("Rebuild from scratch", elem_id="qa-rebuild")
                    corpus_status = gr.HTML(elem_id="qa-corpus-status")
                    index_status = gr.HTML(elem_id="qa-index-status")
                feedback_tab = self._feedback_tab()
            self._wire_chat(
                chatbot, question, ask, new, examples, n_answers, threshold, mode, filters
            )
            # The folder list follows the index: filled whenever the documents table is.
            docs_view.change(
                lambda: gr.Dropdown(choices=self.folder_choices()),
                None,
                filters[0],
                queue=False,
                api_visibility="undocumented",
            )
            self._wire_feedback(chatbot, correction, feedback_tab)
            self._wire_documents(
                page,
                docs_view,
                files,
                to_remove,
                remove,
                update,
                rebuild,
                corpus_status,
                index_status,
            )
            gr.api(
                self.api_ask,
                api_name="ask",
                concurrency_limit=ASK_CONCURRENCY,
                concurrency_id="ask",
            )
        return page

    def _wire_chat(
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

    def _filter_row(self) -> tuple[gr.Dropdown, gr.Textbox, gr.Textbox]:
        """Under the question: search only a folder, or a range of days."""
        with gr.Row(equal_height=True, elem_id="qa-filters"):
            folder = gr.Dropdown(
                choices=self.folder_choices(),
                value=ALL_FOLDERS,
                label="Search only",
                elem_id="qa-filter-folder",
                scale=2,
                min_width=160,
            )
            since, until = (
                gr.Textbox(
                    label=label,
                    placeholder="YYYY-MM-DD",
                    elem_id=f"qa-filter-{name}",
                    max_lines=1,
                    scale=1,
                    min_width=120,
                )
                for name, label in (("since", "Dated from"), ("until", "Dated until"))
            )
        return folder, since, until

    def _wire_documents(
        self,
        page: gr.Blocks,
        docs_view: gr.HTML,
        files: gr.File,
        to_remove: gr.Dropdown,
        remove: gr.Button,
        update: gr.Button,
        rebuild: gr.Button,
        corpus_status: gr.HTML,
        index_status: gr.HTML,
    ) -> None:
        changed = gr.State(False)
        corpus: dict[str, Any] = {
            "concurrency_limit": 1,
            "concurrency_id": "corpus",
            "api_visibility": "undocumented",
        }

        def refresh() -> tuple[str, Any]:
            return self.documents_html(), gr.Dropdown(choices=self.file_choices(), value=[])

        # Filled on each page load, so a new visitor sees the corpus as it is now; outside the
        # corpus queue, so a page opened during an index update is not held up by it.
        page.load(refresh, None, [docs_view, to_remove], queue=False, api_visibility="undocumented")

        # Gradio finds the progress bar by a gr.Progress() default, hence the B008 waivers.
        def update_if_changed(was_changed: bool, progress: gr.Progress = gr.Progress()) -> Any:  # noqa: B008
            if not was_changed:
                return gr.skip()
            return self.update_index(progress=progress)

        def run_update(progress: gr.Progress = gr.Progress()) -> str:  # noqa: B008
            return self.update_index(progress=progress)

        def run_rebuild(progress: gr.Progress = gr.Progress()) -> str:  # noqa: B008
            return self.update_index(rebuild=True, progress=progress)

        def upload(paths: list[str] | None) -> tuple[str, bool, None]:
            status, was_changed = self.upload(paths)
            return status, was_changed, None

        # Uploading or removing files updates the index at once (only new text is embedded).
        files.upload(upload, files, [corpus_status, changed, files], **corpus).then(
            update_if_changed, changed, index_status, **corpus
        ).then(refresh, None, [docs_view, to_remove], **corpus)
        remove.click(self.remove, to_remove, [corpus_status, changed], **corpus).then(
            update_if_changed, changed, index_status, **corpus
        ).then(refresh, None, [docs_view, to_remove], **corpus)
        update.click(run_update, None, index_status, **corpus).then(
            refresh, None, [docs_view, to_remove], **corpus
        )
        rebuild.click(run_rebuild, None, index_status, **corpus).then(
            refresh, None, [docs_view, to_remove], **corpus
        )

    # Feedback

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

    def _correction_row(self) -> tuple[gr.Dropdown, gr.Button, gr.HTML]:
        """Under the chat: the right answer for the last reply, if it was wrong, and a status."""
        with gr.Row(equal_height=True, elem_id="qa-correction"):
            choice = gr.Dropdown(
                choices=[],
                value=None,
                label="Wrong answer? The right one is",
                info="Press the thumbs under a reply to mark it right or wrong; for the last "
                "reply, choose the right answer here.",
                elem_id="qa-correction-choice",
                scale=5,
            )
            save = gr.Button("Save correction", scale=1, elem_id="qa-correct")
        status = gr.HTML(elem_id="qa-feedback-status")
        return choice, save, status

    def _feedback_tab(self) -> tuple[gr.Tab, gr.HTML, gr.DownloadButton]:
        """The feedback tab: how many answers were marked, and the file to download."""
        with gr.Tab("Feedback", id="feedback") as tab:
            gr.Markdown(FEEDBACK_HELP)
            count = gr.HTML(self.feedback.counts_html, elem_id="qa-feedback-count")
            download = gr.DownloadButton(
                "Download feedback.jsonl",
                value=self.feedback.download,
                elem_id="qa-feedback-download",
            )
        return tab, count, download

    def _wire_feedback(
        self,
        chatbot: gr.Chatbot,
        correction: tuple[gr.Dropdown, gr.Button, gr.HTML],
        tab: tuple[gr.Tab, gr.HTML, gr.DownloadButton],
    ) -> None:
        choice, save, status = correction
        feedback_tab, count, download = tab
        # Which reply each of this session's marks was about: a later mark replaces it.
        marks = gr.State({})
        hidden: dict[str, Any] = {"api_visibility": "undocumented"}
        shown = [status, marks, count, download]

        def like(
            history: list[dict[str, Any]], kept: dict[int, str], data: gr.LikeData
        ) -> tuple[str, dict[int, str], str, str | None]:
            line, kept = self.feedback.like(history, data.index, data.liked, kept)
            return line, kept, self.feedback.counts_html(), self.feedback.download()

        def correct(
            history: list[dict[str, Any]], chosen: str | None, kept: dict[int, str]
        ) -> tuple[str, dict[int, str], str, str | None]:
            line, kept = self.feedback.correct(history, chosen, kept)
            return line, kept, self.feedback.counts_html(), self.feedback.download()

        def offer(history: list[dict[str, Any]]) -> Any:
            return gr.Dropdown(choices=self.feedback.choices(history), value=None)

        def refresh() -> tuple[str, str | None]:
            return self.feedback.counts_html(), self.feedback.download()

        chatbot.like(like, [chatbot, marks], shown, **hidden)
        save.click(correct, [chatbot, choice, marks], shown, **hidden)
        chatbot.change(offer, chatbot, choice, queue=False, **hidden)
        feedback_tab.select(refresh, None, [count, download], queue=False, **hidden)
        gr.api(self.api_feedback, api_name="feedback")


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


def _whole(n: float) -> int | float:
    """A slider's number as an ``int`` when it is whole (validation refuses anything else)."""
    return int(n) if isinstance(n, int | float) and float(n).is_integer() else n


def _notices(outcomes: list[Outcome]) -> str:
    return render_notices([(o.ok, o.message) for o in outcomes])


def _suffixes() -> tuple[str, ...]:
    from qa.ingest import SUPPORTED_SUFFIXES

    return SUPPORTED_SUFFIXES


def prepare(qa: QA) -> None:
    """Make ``qa`` ready to answer: build the index if there is none, load the models.

    The first build shows its progress in the terminal.
    """
    try:
        _ = qa.index
    except IndexProblem as exc:
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
