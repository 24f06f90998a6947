"""The web page's filter row and the JSON API's filter parameters (no browser)."""

from __future__ import annotations

import shutil
from pathlib import Path

import gradio as gr
import pytest
from bs4 import BeautifulSoup

from qa.pipeline import QA
from qa.settings import Settings
from qa.web.app import WebApp
from qa.web.chat import ALL_FOLDERS
from qa.web.render import render_filter_note
from tests.conftest import SEED_CORPUS, SEED_IDS, HashEmbedder

LIAISON = "How many liaison officers would each side have had under the 1994 plan?"
ZORBLAT = "The Zorblat festival\n\nThe Zorblat festival takes place in Quenton every May.\n"


@pytest.fixture
def web(tmp_path: Path) -> WebApp:
    corpus = tmp_path / "corpus"
    for folder, name in zip(("korea", "korea/talks"), SEED_IDS, strict=True):
        (corpus / folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(SEED_CORPUS / name, corpus / folder / name)
    (corpus / "Events").mkdir()
    (corpus / "Events" / "zorblat.txt").write_text(ZORBLAT, encoding="utf-8")
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", reader_model="none")
    qa = QA(settings, embedder=HashEmbedder())
    qa.build(show_progress=False)
    return WebApp(qa)


def paths_in(html: str) -> list[str]:
    soup = BeautifulSoup(html, "html.parser")
    return [s.get_text() for s in soup.select(".qa-source code")] or [soup.get_text()]


def test_folder_choices_follow_the_index(web: WebApp) -> None:
    assert web.folder_choices() == [ALL_FOLDERS, "Events", "korea", "korea/talks"]


def test_a_filtered_reply_says_so_and_answers_from_the_folder(web: WebApp) -> None:
    threshold = 0.0  # every candidate shows, so any answer from outside the folder would
    html, _ = web.converse("Where does the festival take place?", 3, threshold, "hybrid")
    assert "Searched only" not in html and "Events/zorblat.txt" in html
    html, _ = web.converse(
        "Where does the festival take place?", 3, threshold, "hybrid", [], "korea"
    )
    soup = BeautifulSoup(html, "html.parser")
    note = soup.select_one(".qa-filter-note")
    assert note is not None and note.get_text() == "Searched only:folder korea"
    assert "zorblat" not in html.lower()
    assert "korea/" in html
    # All folders and empty days restrict nothing.
    html, _ = web.converse(LIAISON, 3, threshold, "hybrid", [], ALL_FOLDERS, "", " ")
    assert "Searched only" not in html


def test_a_filter_on_days_the_articles_lack_finds_nothing(web: WebApp) -> None:
    html, _ = web.converse(LIAISON, 3, 0.0, "hybrid", [], ALL_FOLDERS, "2018-01-01", None)
    text = BeautifulSoup(html, "html.parser").get_text()
    assert "Searched only:since 2018-01-01" in text
    assert "liaison" not in text.lower().replace(LIAISON.lower(), "")


@pytest.mark.parametrize(
    ("since", "until", "message"),
    [
        ("2018-02-30", "", "since must be a date YYYY-MM-DD, got '2018-02-30'"),
        ("", "tomorrow", "until must be a date YYYY-MM-DD"),
        ("2019-01-01", "2018-01-01", "since 2019-01-01 is after until 2018-01-01"),
    ],
)
def test_the_chat_refuses_bad_days_with_the_reason(
    web: WebApp, since: str, until: str, message: str
) -> None:
    html, turns = web.converse(LIAISON, 3, 0.3, "hybrid", [], ALL_FOLDERS, since, until)
    soup = BeautifulSoup(html, "html.parser")
    assert soup.select_one(".qa-error") is not None and message in soup.get_text()
    assert turns == []


def test_api_ask_takes_where_since_and_until(web: WebApp) -> None:
    payload = web.api_ask("Where does the festival take place?", 3, 0.0, where="folder=KOREA")
    assert payload["filter"] == {"where": {"folder": "korea"}, "since": None, "until": None}
    assert payload["passages"] and all(p["file"].startswith("korea/") for p in payload["passages"])
    assert all(a["file"].startswith("korea/") for a in payload["answers"])
    talks = web.api_ask(LIAISON, 3, 0.0, where="folder=korea/talks")
    assert {p["file"] for p in talks["passages"]} == {f"korea/talks/{SEED_IDS[1]}"}
    dated = web.api_ask(LIAISON, 3, 0.0, since="2000-01-01", until="2100-01-01")
    assert dated["passages"] == [] and dated["answers"] == []
    assert "filter" not in web.api_ask(LIAISON, 3, 0.0)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"where": "korea"}, "a condition must be KEY=VALUE"),
        ({"where": "date>=2019-13-01"}, "date>= must be a date YYYY-MM-DD, got '2019-13-01'"),
        ({"since": "2019-01-01", "until": "2018-01-01"}, "is after until"),
    ],
)
def test_api_ask_refuses_bad_filters(web: WebApp, options: dict, message: str) -> None:
    with pytest.raises(gr.Error, match=message):
        web.api_ask(LIAISON, **options)


def test_the_page_has_the_filter_row(web: WebApp) -> None:
    page = web.blocks()
    ids = {getattr(block, "elem_id", None): block for block in page.blocks.values()}
    assert {"qa-filters", "qa-filter-folder", "qa-filter-since", "qa-filter-until"} <= set(ids)
    folder = ids["qa-filter-folder"]
    assert isinstance(folder, gr.Dropdown) and folder.value == ALL_FOLDERS
    assert [c[1] for c in folder.choices] == web.folder_choices()


def test_the_filter_note_shows_folder_names_literally() -> None:
    html = render_filter_note("folder <b>x</b>_*")
    assert "<b>" not in html
    assert BeautifulSoup(html, "html.parser").get_text() == "Searched only:folder <b>x</b>_*"
