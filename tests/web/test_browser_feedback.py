"""Feedback in a real browser: a like and a dislike in the chat become two lines of the
feedback file beside the index, which `qa eval --set` then runs. Sentence reading (the
``reader_model`` default of the web tests): the marks, not the answers, are under test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from qa.cli import app
from qa.pipeline import QA
from qa.web.layout import EXAMPLES
from tests.web.test_browser import ask, browser, page, pytestmark, shot  # noqa: F401


def test_like_and_dislike_become_an_evaluation_set(
    page,  # noqa: ANN001, F811
    served: tuple[str, QA],
    tmp_path: Path,
) -> None:
    qa = served[1]
    status = page.locator("#qa-feedback-status")
    ask(page, EXAMPLES[0])
    page.locator("#qa-chat").get_by_role("button", name="Like", exact=True).last.click()
    status.get_by_text("Saved: marked right.").wait_for()
    ask(page, EXAMPLES[1])
    page.locator("#qa-chat").get_by_role("button", name="Dislike", exact=True).last.click()
    status.get_by_text("Saved: marked wrong.").wait_for()
    shot(page, "11-feedback-marked")
    page.get_by_role("tab", name="Feedback").click()
    count = page.locator("#qa-feedback-count")
    count.get_by_text("2 marked: 1 right, 1 wrong").wait_for()
    assert page.locator("#qa-feedback-download").is_visible()

    path = qa.settings.index_dir / "feedback.jsonl"
    liked, disliked = (json.loads(line) for line in path.read_text(encoding="utf-8").splitlines())
    assert (liked["question"], liked["verdict"]) == (EXAMPLES[0], "right")
    assert liked["answerable"] is True
    # The answer the chat showed, as the product gives it (which sentence the extractor picks
    # for this question is not what is under test here).
    assert liked["answers"][0] == qa.ask(EXAMPLES[0]).answers[0].text
    assert disliked["question"] == EXAMPLES[1]
    assert disliked["verdict"] == "wrong" and disliked["wrong"] and disliked["answerable"] is None
    result = CliRunner().invoke(
        app,
        ["eval", "--set", str(path), "--index", str(qa.settings.index_dir), "--reader", "none"]
        + ["--out", str(tmp_path / "run"), "--json"],
        env={"QA_THRESHOLD": "0"},
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["n"] == 1  # the dislike says only what was wrong


def test_the_feedback_api_checks_the_span(served: tuple[str, QA]) -> None:
    from gradio_client import Client

    url, qa = served
    client = Client(url, verbose=False, httpx_kwargs={"timeout": 120})
    answer = client.predict(EXAMPLES[1], api_name="/ask")["answers"][0]
    where = (answer["doc_id"], answer["start"], answer["end"])
    out = client.predict(EXAMPLES[1], answer["text"], *where, "right", api_name="/feedback")
    assert out["recorded"]["answers"] == [answer["text"]] and out["counts"]["right"] >= 1
    with pytest.raises(Exception, match="do not hold the answer"):
        client.predict(EXAMPLES[1], "Panmunjom", *where, "right", api_name="/feedback")
