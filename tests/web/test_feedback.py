"""The chat's feedback handlers called directly (hash embedder, sentence reading): likes and
dislikes on replies as the chat history holds them, corrections, the /feedback API, the
feedback tab's count and file."""

from __future__ import annotations

import gc
import json
from html import unescape
from pathlib import Path
from typing import Any

import gradio as gr
import pytest

from qa.evaluation.datasets import load_jsonl
from qa.feedback import FeedbackCounts
from qa.pipeline import QA
from qa.settings import Settings
from qa.web.app import WebApp
from qa.web.feedback import ChatFeedback, parse_reply, question_text
from qa.web.layout import EXAMPLES
from qa.web.render import render_question, render_result
from tests.conftest import HashEmbedder

SEED_QUESTION = EXAMPLES[0]
NO_ANSWER = EXAMPLES[2]


@pytest.fixture
def web(seed_corpus: Path, tmp_path: Path) -> WebApp:
    settings = Settings(corpus_dir=seed_corpus, index_dir=tmp_path / "index", reader_model="none")
    qa = QA(settings, embedder=HashEmbedder())
    qa.build(show_progress=False)
    return WebApp(qa)


def chat(web: WebApp, *questions: str, threshold: float = 0.0) -> list[dict[str, Any]]:
    """A chat history as the page holds it, with Gradio's text parts as content."""
    history: list[dict[str, Any]] = []
    for q in questions:
        reply = web.reply(q, 3, threshold, "hybrid")
        for role, html in (("user", render_question(q)), ("assistant", reply)):
            history.append({"role": role, "content": [{"type": "text", "text": html}]})
    return history


def lines(web: WebApp) -> list[dict[str, Any]]:
    return web.feedback.log.lines()


def test_a_reply_names_its_spans_and_its_question(web: WebApp) -> None:
    result = web.qa.ask(SEED_QUESTION, threshold=0.0)
    spans = parse_reply(render_result(result, threshold=0.0))
    assert spans is not None and not spans.abstained
    assert [(r.doc_id, r.start, r.end) for r in spans.answers] == [
        (a.doc_id, a.start, a.end) for a in result.answers
    ]
    documents = web.qa.index.documents
    assert [r.resolve(documents).text for r in spans.answers] == [a.text for a in result.answers]
    # A line above the reply (the filter row's note) changes nothing.
    note = '<div class="qa-reply qa-filtered"><p class="qa-filter-note">Searched only</p></div>'
    assert parse_reply(note + render_result(result, threshold=0.0)) == spans
    question = 'Is <b>x</b> & "y"\nwhere?'
    assert question_text(render_question(question)) == question
    assert parse_reply('<div class="qa-reply qa-error"><p>no</p></div>') is None


def test_like_and_dislike_write_a_line_each_and_a_second_mark_replaces_the_first(
    web: WebApp,
) -> None:
    history = chat(web, SEED_QUESTION, NO_ANSWER)
    status, kept = web.feedback.like(history, 1, True, {})
    assert "marked right" in status and list(kept) == [1]
    best = web.qa.ask(SEED_QUESTION, threshold=0.0).answers[0]
    [liked] = lines(web)
    assert liked["question"] == SEED_QUESTION and liked["answers"] == [best.text]
    assert (liked["doc_id"], liked["start"], liked["end"]) == (best.doc_id, best.start, best.end)
    status, kept = web.feedback.like(history, 1, False, kept)  # changed to a dislike
    assert "Save correction" in status
    disliked = lines(web)[-1]
    assert disliked["replaces"] == liked["id"] and disliked["wrong"] == [best.text]
    assert web.feedback.counts() == FeedbackCounts(right=0, wrong=1, no_answer=0)
    _, kept = web.feedback.like(history, 1, "", kept)  # taken back
    assert web.feedback.counts().total == 0 and len(lines(web)) == 3
    assert load_jsonl(web.feedback.log.path) == []


def test_a_dislike_corrected_by_an_alternative_becomes_its_reference(web: WebApp) -> None:
    history = chat(web, SEED_QUESTION)
    _, kept = web.feedback.like(history, 1, False, {})
    choices = web.feedback.choices(history)
    assert choices[-1][0] == "The corpus does not answer this question"
    alternatives = web.qa.ask(SEED_QUESTION, threshold=0.0).answers[1:]
    assert len(choices) == len(alternatives) + 1 >= 2
    title = web.qa.document(alternatives[0].doc_id).title
    assert choices[0][0].startswith(f"“{alternatives[0].text[:40]}")
    assert f"({title[:30]}" in choices[0][0] and len(choices[0][0]) < 200
    status, kept = web.feedback.correct(history, choices[0][1], kept)
    assert "with the right answer" in status
    [question] = load_jsonl(web.feedback.log.path)
    assert question.answers == (alternatives[0].text,)
    assert (question.doc_id, question.start) == (alternatives[0].doc_id, alternatives[0].start)
    assert web.feedback.counts() == FeedbackCounts(right=0, wrong=1, no_answer=0)


def test_no_answer_and_abstentions(web: WebApp) -> None:
    history = chat(web, NO_ANSWER, threshold=1.0)  # abstains
    assert web.feedback.choices(history)[-1][1] == json.dumps([1])
    web.feedback.like(history, 1, True, {})  # right to abstain
    assert lines(web)[-1]["answerable"] is False
    history = chat(web, SEED_QUESTION)
    web.feedback.correct(history, web.feedback.choices(history)[-1][1], {})
    record = lines(web)[-1]
    assert record["verdict"] == "no-answer" and record["type"] == "unanswerable"
    assert web.feedback.counts() == FeedbackCounts(right=1, wrong=0, no_answer=1)
    assert "2 marked: 1 right, 0 wrong, 1 with no answer" in unescape(web.feedback.counts_html())


@pytest.mark.parametrize(
    ("index", "choice", "message"),
    [
        (0, None, "there is no reply there to mark"),
        (7, None, "there is no reply there to mark"),
        ("1", None, "no reply was named"),
        (None, '[1, "003_bd4e093a9656d3e9.txt", 0, 5, "0000"]', "not one this reply offered"),
        (None, "not json", "Expecting value"),
        (None, None, "choose the right answer first"),
    ],
)
def test_marks_that_name_nothing_marked_are_refused(
    web: WebApp, index: object, choice: str | None, message: str
) -> None:
    history = chat(web, SEED_QUESTION)
    if index is not None:
        status, kept = web.feedback.like(history, index, True, {})
    else:
        status, kept = web.feedback.correct(history, choice, {})
    assert unescape(status).startswith('<p class="qa-refused">Not saved: ') and kept == {}
    assert message in unescape(status)
    assert not web.feedback.log.path.exists()


def test_a_reply_whose_article_changed_cannot_be_marked(web: WebApp) -> None:
    history = chat(web, SEED_QUESTION)
    path = web.qa.settings.corpus_dir / "000_4b3a89178ec270f5.txt"
    path.write_text(
        "Round two\n\nSomething else entirely, with seven words in it.\n", encoding="utf-8"
    )
    web.qa.build(show_progress=False)
    status, _ = web.feedback.like(history, 1, True, {})
    assert "article has changed since this reply" in status
    assert not web.feedback.log.path.exists()


def test_the_api_checks_offsets_against_the_live_index(web: WebApp) -> None:
    best = web.qa.ask(SEED_QUESTION, threshold=0.0).answers[0]
    where = (best.doc_id, best.start, best.end)
    out = web.api_feedback(SEED_QUESTION, best.text, *where, "right")
    assert out["counts"] == {"right": 1, "wrong": 0, "no_answer": 0, "total": 1}
    assert out["recorded"]["answers"] == [best.text]
    refused = [
        ((SEED_QUESTION, best.text, best.doc_id, best.start + 1, best.end + 1, "right"), "hold"),
        ((SEED_QUESTION, best.text, "nowhere.txt", best.start, best.end, "right"), "no doc"),
        ((SEED_QUESTION, best.text, *where, "maybe"), "verdict must be one of"),
        ((SEED_QUESTION, "", "", 0, 0, "wrong"), "needs its text"),
        (("", best.text, *where, "right"), "question is empty"),
        ((SEED_QUESTION, best.text, best.doc_id, 1.5, best.end, "right"), "whole number"),
    ]
    for args, message in refused:
        with pytest.raises(gr.Error, match=message):
            web.api_feedback(*args)  # type: ignore[arg-type]
    assert web.api_feedback(NO_ANSWER, "", "", 0, 0, "no-answer")["counts"]["total"] == 2
    assert len(lines(web)) == 2


def test_the_feedback_tab_offers_a_copy_of_the_file(web: WebApp) -> None:
    assert web.feedback.download() is None
    assert "No answers marked yet" in web.feedback.counts_html()
    history = chat(web, SEED_QUESTION)
    web.feedback.like(history, 1, True, {})
    copy = Path(web.feedback.download() or "")
    assert copy.name == "feedback.jsonl" and copy != web.feedback.log.path
    assert copy.read_bytes() == web.feedback.log.path.read_bytes()
    assert web.feedback.log.path == web.qa.settings.index_dir / "feedback.jsonl"


def test_the_copies_folder_goes_with_the_handlers(web: WebApp) -> None:
    feedback = ChatFeedback(web.qa)
    feedback.like(chat(web, SEED_QUESTION), 1, True, {})
    folder = Path(feedback.download() or "").parent
    assert folder.is_dir() and folder != web.qa.settings.index_dir
    del feedback
    gc.collect()
    assert not folder.exists()
    assert web.feedback.log.path.exists()  # the marks themselves stay beside the index


def test_the_page_has_the_feedback_parts(web: WebApp) -> None:
    page = web.blocks()
    ids = {getattr(b, "elem_id", None) for b in page.blocks.values()}
    assert {"qa-feedback-count", "qa-feedback-download", "qa-correction-choice"} <= ids
    chatbot = next(b for b in page.blocks.values() if getattr(b, "elem_id", None) == "qa-chat")
    assert tuple(chatbot.feedback_options) == ("Like", "Dislike")
    assert "/feedback" in {f"/{d.api_name}" for d in page.fns.values() if d.api_name}
