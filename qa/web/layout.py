"""The page's layout: its tabs, components, texts and look, over the handlers of ``WebApp``.

The chat shows messages as HTML with Markdown and LaTeX rendering switched off: the renderer
(:mod:`qa.web.render`) writes the only tags (``<mark>``, ``<details>``, ...) and escapes
everything else. A reply's "Show the article" button loads the article into the panel under the
chat, on demand (``ARTICLE_JS``), so the chat history (sent both ways on every turn) holds
sentences, never articles. Each part's events are wired by its module: :mod:`qa.web.chat`,
:mod:`qa.web.documents`, :mod:`qa.web.feedback`; the API functions are in :mod:`qa.web.api`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import gradio as gr

from qa.pipeline import MAX_QUESTION_CHARS, RETRIEVAL_MODES
from qa.settings import MAX_ANSWERS
from qa.web.chat import ALL_FOLDERS, ASK_CONCURRENCY
from qa.web.documents import upload_suffixes
from qa.web.feedback import ChatFeedback, wire_feedback
from qa.web.render import ARTICLE_HINT, literal

if TYPE_CHECKING:
    from qa.web.app import WebApp

#: Questions over the seed articles that show an answer, another answer and an abstention.
EXAMPLES = (
    "How many liaison officers would each side have had under the 1994 plan?",
    "Where did Kim Jong-un and Trump agree to resume working-level talks?",
    "What is the capital of France?",
)

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


def build_page(web: WebApp) -> gr.Blocks:
    """The page: a chat tab with folded settings, and a documents tab."""
    n_default = web.qa.settings.n_answers
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
                filters = filter_row(web.folder_choices())
                correction = correction_row()
                gr.HTML(
                    f'<p class="qa-article-note">{literal(ARTICLE_HINT)}</p>',
                    elem_id="qa-article",
                    server_functions=[web.article_function()],
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
                            value=round(web.default_threshold(), 2),
                            step=0.01,
                            label="Threshold",
                            info="Answers scoring lower are not shown; if none is left, "
                            "the chat says the corpus does not answer.",
                        )
                        mode = gr.Radio(
                            list(RETRIEVAL_MODES),
                            value=web.qa.settings.retrieval_mode,
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
                            label="Add articles (" + ", ".join(upload_suffixes()) + "; at most "
                            f"{web.qa.settings.max_upload_mb} MB each)",
                            file_count="multiple",
                            file_types=list(upload_suffixes()),
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
            feedback = feedback_tab(web.feedback)
        web.wire_chat(chatbot, question, ask, new, examples, n_answers, threshold, mode, filters)
        # The folder list follows the index: filled whenever the documents table is.
        docs_view.change(
            lambda: gr.Dropdown(choices=web.folder_choices()),
            None,
            filters[0],
            queue=False,
            api_visibility="undocumented",
        )
        wire_feedback(web.feedback, chatbot, correction, feedback)
        gr.api(web.api_feedback, api_name="feedback")
        web.wire_documents(
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
            web.api_ask,
            api_name="ask",
            concurrency_limit=ASK_CONCURRENCY,
            concurrency_id="ask",
        )
    return page


def filter_row(choices: list[str]) -> tuple[gr.Dropdown, gr.Textbox, gr.Textbox]:
    """Under the question: search only a folder, or a range of days."""
    with gr.Row(equal_height=True, elem_id="qa-filters"):
        folder = gr.Dropdown(
            choices=choices,
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


def correction_row() -> tuple[gr.Dropdown, gr.Button, gr.HTML]:
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


def feedback_tab(feedback: ChatFeedback) -> tuple[gr.Tab, gr.HTML, gr.DownloadButton]:
    """The feedback tab: how many answers were marked, and the file to download."""
    with gr.Tab("Feedback", id="feedback") as tab:
        gr.Markdown(FEEDBACK_HELP)
        count = gr.HTML(feedback.counts_html, elem_id="qa-feedback-count")
        download = gr.DownloadButton(
            "Download feedback.jsonl",
            value=feedback.download,
            elem_id="qa-feedback-download",
        )
    return tab, count, download
