"""The page's handlers over a real pipeline (hash embedder, sentence reading): no browser."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import gradio as gr
import pytest
from bs4 import BeautifulSoup
from gradio.state_holder import StateHolder

from qa.pipeline import QA
from qa.settings import Settings
from qa.web.app import SESSION_CAPACITY, WebApp, launch_options
from qa.web.layout import EXAMPLES
from qa.web.render import span_check
from tests.conftest import HashEmbedder

ZORBLAT = "The Zorblat festival\n\nThe Zorblat festival takes place in Quenton every May.\n"
ZORBLAT_QUESTION = "Where does the Zorblat festival take place?"
SEED_QUESTION = EXAMPLES[0]
NO_ANSWER = EXAMPLES[2]


def make_qa(corpus: Path, index: Path) -> QA:
    settings = Settings(corpus_dir=corpus, index_dir=index, reader_model="none")
    return QA(settings, embedder=HashEmbedder())  # fast, deterministic vectors


@pytest.fixture
def web(seed_corpus: Path, tmp_path: Path) -> WebApp:
    qa = make_qa(seed_corpus, tmp_path / "index")
    qa.build(show_progress=False)
    return WebApp(qa)


def reply_text(web: WebApp, question: str, mode: str = "hybrid") -> BeautifulSoup:
    return BeautifulSoup(web.reply(question, 3, web.default_threshold(), mode), "html.parser")


def text_of(html: str) -> str:
    return BeautifulSoup(html, "html.parser").get_text()


def upload(web: WebApp, tmp_path: Path, name: str, text: str) -> str:
    folder = tmp_path / "gradio-upload"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    status, changed = web.upload([str(path)])
    assert changed == [name]
    return text_of(status)


def test_reply_shows_answer_in_context_with_its_source(web: WebApp) -> None:
    soup = reply_text(web, SEED_QUESTION)
    best = soup.select_one(".qa-best")
    assert best is not None, soup
    assert "seven officers" in best.blockquote.get_text()
    assert "seven officers" in best.blockquote.mark.get_text()
    source = best.select_one(".qa-source").get_text()
    assert "Round two" in source and "000_4b3a89178ec270f5.txt" in source
    # The reply names the article; the article itself comes from the server when asked for.
    button = best.select_one("button.qa-open")
    assert button.get_text() == "Show the article"
    article = BeautifulSoup(web.article(*json.loads(button["value"])), "html.parser")
    doc = web.qa.document("000_4b3a89178ec270f5.txt")
    assert article.select_one(".qa-doctext").get_text() == doc.text.replace("\n", "")
    assert "seven officers" in article.mark.get_text()


def test_no_answer_reply_is_small_and_names_articles_without_holding_them(web: WebApp) -> None:
    reply = web.reply(NO_ANSWER, 3, 1.0, "hybrid")
    assert "The corpus does not answer this question." in text_of(reply)
    assert len(reply.encode()) < 4096
    for doc in web.qa.documents():
        assert doc.text[-200:] not in text_of(reply)


@pytest.mark.parametrize(
    ("question", "n", "t", "mode", "reason"),
    [
        ("x" * 1001, 3, 0.5, "hybrid", "the question is 1,001 characters long"),
        (SEED_QUESTION, 0, 0.5, "hybrid", "from 1 to 20, got 0"),
        (SEED_QUESTION, 21, 0.5, "hybrid", "from 1 to 20, got 21"),
        (SEED_QUESTION, 2.5, 0.5, "hybrid", "from 1 to 20, got 2.5"),
        (SEED_QUESTION, 3, 1.01, "hybrid", "from 0 to 1, got 1.01"),
        (SEED_QUESTION, 3, -1.0, "hybrid", "from 0 to 1, got -1.0"),
        (SEED_QUESTION, 3, 0.5, "psychic", "one of hybrid, dense, lexical"),
        ("   ", 3, 0.5, "hybrid", "the question is empty"),
    ],
)
def test_chat_refuses_what_the_python_api_refuses(
    web: WebApp, question: str, n: float, t: float, mode: str, reason: str
) -> None:
    reply = BeautifulSoup(web.reply(question, n, t, mode), "html.parser")
    assert reply.select_one(".qa-error") is not None
    assert reason in reply.get_text()


def test_article_of_a_removed_or_unknown_document(web: WebApp) -> None:
    assert "no longer in the index" in text_of(web.article("nope.txt", 0, 3, "x"))
    assert "has changed since" in text_of(web.article("000_4b3a89178ec270f5.txt", "a", 3, "x"))
    # What the page's script calls: one argument, a button's value (JSON), refused if broken.
    from_page = web.article_function()
    assert "no longer in the index" in text_of(from_page("{not json"))
    reference = json.dumps(["000_4b3a89178ec270f5.txt", 0, 9, span_check("Round two")])
    assert BeautifulSoup(from_page(reference), "html.parser").mark.get_text() == "Round two"


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_every_retrieval_mode_answers(web: WebApp, mode: str) -> None:
    result = web.ask(SEED_QUESTION, n_answers=2, threshold=0.0, mode=mode)
    assert result.answers and len(result.answers) <= 2
    assert any("seven officers" in a.context for a in result.answers)


def test_unknown_mode_is_refused(web: WebApp) -> None:
    soup = reply_text(web, SEED_QUESTION, mode="psychic")
    assert "retrieval mode must be one of hybrid, dense, lexical" in soup.get_text()


def test_threshold_one_abstains_with_leads(web: WebApp) -> None:
    soup = BeautifulSoup(web.reply(SEED_QUESTION, 3, 1.0, "hybrid"), "html.parser")
    assert "The corpus does not answer this question." in soup.get_text()
    assert soup.select(".qa-lead blockquote")


def test_no_index_is_reported_in_the_chat(seed_corpus: Path, tmp_path: Path) -> None:
    web = WebApp(make_qa(seed_corpus, tmp_path / "none"))
    assert "There is no index yet" in reply_text(web, SEED_QUESTION).get_text()
    assert "There is no index yet" in BeautifulSoup(web.documents_html(), "html.parser").get_text()


def test_documents_table_lists_titles_sizes_and_chunks(web: WebApp) -> None:
    soup = BeautifulSoup(web.documents_html(), "html.parser")
    rows = {tr.select("td")[1].get_text(): tr for tr in soup.select("tbody tr")}
    assert set(rows) == {"000_4b3a89178ec270f5.txt", "003_bd4e093a9656d3e9.txt"}
    cells = [td.get_text() for td in rows["000_4b3a89178ec270f5.txt"].select("td")]
    doc = web.qa.document("000_4b3a89178ec270f5.txt")
    chunks = sum(c.doc_id == doc.doc_id for c in web.qa.index.chunks)
    assert cells == ["Round two", doc.path, f"{len(doc.text):,}", str(chunks)]
    assert soup.p.get_text().startswith("2 documents, ")


def test_uploaded_copies_are_deleted_once_saved_or_refused(
    web: WebApp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    saved, refused = (
        tmp_path / "gradio" / "h1" / "zorblat.txt",
        tmp_path / "gradio" / "h2" / "x.txt",
    )
    for path, text in ((saved, ZORBLAT), (refused, "   ")):
        path.parent.mkdir(parents=True)
        path.write_text(text, encoding="utf-8")
    status, changed = web.upload([str(saved), str(refused)])
    assert (
        changed and "zorblat.txt: added" in text_of(status) and "x.txt: refused" in text_of(status)
    )
    assert list((tmp_path / "gradio").iterdir()) == []
    assert (web.qa.settings.corpus_dir / "zorblat.txt").read_text(encoding="utf-8") == ZORBLAT


def test_upload_then_update_answers_from_the_new_document(web: WebApp, tmp_path: Path) -> None:
    status = upload(web, tmp_path, "zorblat.txt", ZORBLAT)
    assert "zorblat.txt: added to the corpus" in status
    assert "1 file in the corpus not indexed yet: press Update index." in text_of(
        web.documents_html()
    )
    assert ("zorblat.txt (not indexed yet)", "zorblat.txt") in web.file_choices()
    calls: list[object] = []
    line = web.update_index(progress=lambda value, **kw: calls.append(value))
    assert "1 added" in text_of(line)
    assert calls[0] == 0.0 and calls[-1] == (calls[-1][1], calls[-1][1])  # ends at total
    assert "Quenton" in reply_text(web, ZORBLAT_QUESTION).select_one(".qa-best mark").get_text()
    assert ("zorblat.txt: The Zorblat festival", "zorblat.txt") in web.file_choices()


def test_an_upload_updates_for_its_own_files_alone(web: WebApp, tmp_path: Path) -> None:
    # A file put into the corpus folder by other means waits for a whole update.
    corpus = web.qa.settings.corpus_dir
    (corpus / "elsewhere.txt").write_text(ZORBLAT.replace("Zorblat", "Quibble"), encoding="utf-8")
    folder = tmp_path / "gradio-upload"
    folder.mkdir()
    (folder / "zorblat.txt").write_text(ZORBLAT, encoding="utf-8")
    _, written = web.upload([str(folder / "zorblat.txt")])
    assert written == ["zorblat.txt"]
    line = text_of(web.update_index(only=written))
    assert "1 added" in line
    indexed = sorted(d.doc_id for d in web.qa.documents())
    assert "zorblat.txt" in indexed and "elsewhere.txt" not in indexed
    assert "1 file in the corpus not indexed yet" in text_of(web.documents_html())
    # Removing it updates for it alone too; the whole update then takes in the other file.
    _, removed = web.remove(["zorblat.txt"])
    assert removed == ["zorblat.txt"]
    assert "1 removed" in text_of(web.update_index(only=removed))
    assert "zorblat.txt" not in {d.doc_id for d in web.qa.documents()}
    assert "1 added" in text_of(web.update_index())
    assert "elsewhere.txt" in {d.doc_id for d in web.qa.documents()}


def test_remove_then_update_forgets_the_document(web: WebApp) -> None:
    status, changed = web.remove(["000_4b3a89178ec270f5.txt"])
    assert changed and "000_4b3a89178ec270f5.txt: removed from the corpus." in text_of(status)
    assert changed == ["000_4b3a89178ec270f5.txt"]
    assert "1 removed" in text_of(web.update_index())
    assert [d.doc_id for d in web.qa.documents()] == ["003_bd4e093a9656d3e9.txt"]
    status, changed = web.remove([])
    assert changed == [] and "Choose the files to remove first." in text_of(status)


def test_an_update_names_the_files_it_skipped_and_indexes_the_rest(
    web: WebApp, tmp_path: Path
) -> None:
    corpus = web.qa.settings.corpus_dir
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.4 this is not a PDF at all")
    (corpus / "zorblat.txt").write_text(ZORBLAT, encoding="utf-8")
    line = text_of(web.update_index())
    assert "1 added" in line
    assert "1 file skipped: broken.pdf (" in line
    report = web.qa.build(show_progress=False)  # nothing changed; still not readable
    assert list(report.skipped) == ["broken.pdf"] and report.to_dict()["skipped"]
    assert "Quenton" in reply_text(web, ZORBLAT_QUESTION).select_one(".qa-best mark").get_text()


def test_questions_are_answered_from_the_old_index_during_an_update(
    web: WebApp, tmp_path: Path
) -> None:
    upload(web, tmp_path, "zorblat.txt", ZORBLAT)
    embedding = threading.Event()
    release = threading.Event()

    def progress(value: object, **_: object) -> None:
        if isinstance(value, tuple):  # the new text is being embedded
            embedding.set()
            assert release.wait(30)

    updater = threading.Thread(target=web.update_index, kwargs={"progress": progress})
    updater.start()
    try:
        assert embedding.wait(30)
        during = web.ask(ZORBLAT_QUESTION, n_answers=3, threshold=0.0, mode="hybrid")
        assert all(a.doc_id != "zorblat.txt" for a in during.answers)
        seed = reply_text(web, SEED_QUESTION)
        assert "seven officers" in seed.select_one(".qa-best mark").get_text()
    finally:
        release.set()
        updater.join(60)
    after = web.ask(ZORBLAT_QUESTION, n_answers=3, threshold=0.0, mode="hybrid")
    assert after.answers[0].doc_id == "zorblat.txt"


def test_api_ask_returns_answers_with_offsets(web: WebApp) -> None:
    payload = web.api_ask(SEED_QUESTION, n_answers=2)
    assert payload["question"] == SEED_QUESTION and not payload["abstained"]
    best = payload["answers"][0]
    doc = web.qa.document(best["doc_id"])
    assert doc.text[best["start"] : best["end"]] == best["text"]
    assert len(payload["answers"]) <= 2
    # No "path" key anywhere: gradio_client would take such a dict for a file to download.
    for item in payload["answers"] + payload["passages"]:
        assert "path" not in item and item["file"] == web.qa.document(item["doc_id"]).path


def test_api_ask_refuses_with_the_reason(web: WebApp) -> None:
    with pytest.raises(gr.Error, match="from 1 to 20, got -2"):
        web.api_ask(SEED_QUESTION, n_answers=-2)
    with pytest.raises(gr.Error, match="the question is empty"):
        web.api_ask("")


def test_page_builds_with_the_settings_defaults(web: WebApp) -> None:
    page = web.blocks()
    assert isinstance(page, gr.Blocks)
    sliders = {c.label: c for c in page.blocks.values() if isinstance(c, gr.Slider)}
    assert sliders["Threshold"].value == pytest.approx(web.default_threshold())
    assert sliders["Answers to show"].value == web.qa.settings.n_answers
    chat = next(c for c in page.blocks.values() if isinstance(c, gr.Chatbot))
    # Messages are our escaped HTML: no Markdown or LaTeX pass may reinterpret them.
    assert chat.render_markdown is False and chat.latex_delimiters == []
    assert "/ask" in {f"/{d.api_name}" for d in page.fns.values()}


def test_an_index_update_gives_its_free_memory_back(
    web: WebApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without it, each update leaves ~30 MiB free in a worker thread's malloc arena (the soak).
    released: list[bool] = []
    monkeypatch.setattr("qa.web.documents.release_free_memory", lambda: released.append(True))
    web.update_index()
    assert released == [True]
    monkeypatch.setattr(web.qa, "build", lambda **_: (_ for _ in ()).throw(OSError("disk full")))
    assert "could not be updated" in text_of(web.update_index())
    assert released == [True, True]  # a failed build is given back too


def test_the_server_keeps_a_bounded_number_of_sessions(web: WebApp) -> None:
    # Every gradio_client.Client and every page is a session, kept until `capacity` newer ones.
    capacity = launch_options(web.qa.settings)["state_session_capacity"]
    assert capacity == SESSION_CAPACITY <= 1_000
    page = web.blocks()
    page.state_session_capacity = capacity
    holder = StateHolder()
    holder.set_blocks(page)
    for n in range(capacity + 50):
        _ = holder[f"session-{n}"]
    assert len(holder.session_data) == capacity
    assert "session-0" not in holder and f"session-{capacity + 49}" in holder
