"""The web page in a real browser: Debian's headless Chromium driven by Playwright.

One app for the module (the ``server`` fixture), over a private copy of the seed corpus and a
temporary index, reading with the packaged reader as a user's page does. Screenshots go to
``test-artifacts/`` (ignored by git).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from qa.pipeline import QA
from qa.web.layout import EXAMPLES
from tests.conftest import REPO, needs_shared

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
TIMEOUT_MS = 90_000

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="/usr/bin/chromium is missing: install Debian's chromium package (apt-get install "
        "chromium) to run the browser tests",
    ),
]

ZORBLAT = "The Zorblat festival\n\nThe Zorblat festival takes place in Quenton every May.\n"
HOSTILE_TITLE = "<script>window.__pwned=1;alert(1)</script> The Quibbleflax notice"
HOSTILE_IMG = '<img src=x onerror="window.__pwned=1;alert(1)">'
HOSTILE_MD = "[click](javascript:alert(1)) and ![pic](x.png) and **bold** and $$x^2$$ and {{7*7}}"
HOSTILE = (
    f"{HOSTILE_TITLE}\n\n"
    f"The Quibbleflax museum opens at {HOSTILE_IMG} noon every Tuesday.\n\n"
    f"Quibbleflax visitors read {HOSTILE_MD}.\n"
)


@pytest.fixture(scope="module")
def reader_model() -> str:
    return "default"


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server: str) -> Iterator[object]:  # noqa: ANN001
    """A fresh tab on the app; fails the test if any dialog opened or a payload ran."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    tab = context.new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    dialogs: list[str] = []

    def on_dialog(dialog) -> None:  # noqa: ANN001
        dialogs.append(dialog.message)
        dialog.dismiss()

    tab.on("dialog", on_dialog)
    tab.goto(server)
    tab.wait_for_selector("#qa-question textarea")
    yield tab
    pwned = tab.evaluate("() => window.__pwned")
    context.close()
    assert dialogs == [], f"a dialog opened: {dialogs}"
    assert pwned is None, "a payload from a document ran in the page"


def shot(page, name: str) -> None:  # noqa: ANN001
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"web-{name}.png"), full_page=True)


def ask(page, question: str):  # noqa: ANN001, ANN201
    """Type ``question``, press Enter, and return the new reply element."""
    before = page.locator("#qa-chat .qa-reply").count()
    page.fill("#qa-question textarea", question)
    page.press("#qa-question textarea", "Enter")
    reply = page.locator("#qa-chat .qa-reply").nth(before)
    reply.wait_for()
    return reply


def open_documents(page) -> None:  # noqa: ANN001
    page.get_by_role("tab", name="Documents").click()
    page.locator("#qa-documents table").wait_for()


def upload(page, tmp_path: Path, name: str, text: str, title: str) -> None:  # noqa: ANN001
    """Upload one file in the documents tab and wait until the index lists ``title``."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    open_documents(page)
    page.set_input_files("#qa-upload input[type=file]", str(path))
    page.locator("#qa-documents td", has_text=title).first.wait_for()


def test_first_visit_and_seed_question(page) -> None:  # noqa: ANN001
    assert page.title() == "News QA"
    examples = page.locator("#qa-examples").inner_text()
    assert all(q in examples for q in EXAMPLES)
    shot(page, "01-first-visit")
    reply = ask(page, EXAMPLES[0])
    best = reply.locator(".qa-best")
    assert "seven" in best.locator("blockquote.qa-context mark").inner_text()
    assert "liaison" in best.locator("blockquote.qa-context").inner_text()
    source = best.locator(".qa-source").inner_text()
    assert "Round two" in source and "000_4b3a89178ec270f5.txt" in source
    assert "score" in best.inner_text()
    # The reply holds no article; its button loads it into the panel under the chat,
    # scrolled to the highlighted answer.
    assert "much work remains to be done." not in page.locator("#qa-chat").inner_text()
    best.locator("button.qa-open").click()
    doc = page.locator("#qa-article .qa-doctext")
    doc.wait_for()
    whole = doc.inner_text()
    assert "The US and North Korea are seriously considering" in whole  # the first paragraph
    assert "much work remains to be done." in whole  # ... to the last
    assert "seven" in doc.locator("mark").inner_text()
    # The page scrolls to the mark once it is laid out (retrying every 50 ms): wait for it,
    # rather than read scrollTop at once, which races that on a busy machine.
    page.wait_for_function(
        "() => document.querySelector('#qa-article .qa-doctext').scrollTop > 0", timeout=15_000
    )
    shot(page, "02-answer-and-article")


def test_example_click_and_abstention(page) -> None:  # noqa: ANN001
    page.locator("#qa-examples button", has_text="capital of France").click()
    reply = page.locator("#qa-chat .qa-reply").first
    reply.wait_for()
    assert "The corpus does not answer this question." in reply.inner_text()
    assert reply.locator(".qa-lead blockquote").inner_text().strip()
    assert ".txt" in reply.locator(".qa-lead .qa-source").inner_text()
    assert page.locator("#qa-chat").inner_text().count("What is the capital of France?") == 1
    shot(page, "03-abstention")


def test_a_two_turn_conversation_and_a_new_one(page) -> None:  # noqa: ANN001
    first = ask(page, "Where was the failed February summit held?")
    assert "Hanoi" in first.locator(".qa-best mark").first.inner_text()
    assert first.locator(".qa-read-as").count() == 0
    second = ask(page, "And when?")
    read_as = second.locator(".qa-read-as").inner_text()
    assert "When was the failed February summit held?" in read_as
    assert "27–28" in second.locator(".qa-best mark").first.inner_text()
    shot(page, "03b-follow-up")
    # A new conversation: the chat empties and "And when?" no longer leans on anything.
    page.click("#qa-new")
    page.wait_for_function("() => !document.querySelector('#qa-chat .qa-reply')")
    alone = ask(page, "And when?")
    assert alone.locator(".qa-read-as").count() == 0
    # The chat's own clear button ends the conversation too.
    ask(page, "Where was the failed February summit held?")
    page.locator("#qa-chat button[aria-label='Clear']").click()
    page.wait_for_function("() => !document.querySelector('#qa-chat .qa-reply')")
    assert ask(page, "And when?").locator(".qa-read-as").count() == 0


def test_documents_tab_lists_the_documents(page) -> None:  # noqa: ANN001
    open_documents(page)
    table = page.locator("#qa-documents table").inner_text()
    assert "Round two" in table and "000_4b3a89178ec270f5.txt" in table
    assert "003_bd4e093a9656d3e9.txt" in table
    assert "Chunks" in table and "Characters" in table
    shot(page, "04-documents")


def test_upload_update_and_ask_the_new_document(page, tmp_path: Path) -> None:  # noqa: ANN001
    upload(page, tmp_path, "zorblat.txt", ZORBLAT, "The Zorblat festival")
    assert "zorblat.txt: added to the corpus" in page.locator("#qa-corpus-status").inner_text()
    assert "1 added" in page.locator("#qa-index-status").inner_text()
    shot(page, "05-uploaded")
    page.get_by_role("tab", name="Ask").click()
    reply = ask(page, "Where does the Zorblat festival take place?")
    assert "Quenton" in reply.locator(".qa-best blockquote.qa-context mark").inner_text()
    assert "zorblat.txt" in reply.locator(".qa-best .qa-source").inner_text()
    shot(page, "06-new-document-answer")


def test_hostile_document_is_shown_literally(page, tmp_path: Path) -> None:  # noqa: ANN001
    upload(page, tmp_path, "hostile.txt", HOSTILE, "The Quibbleflax notice")
    # The title shows literally in the documents table (and runs nothing).
    assert HOSTILE_TITLE in page.locator("#qa-documents table").inner_text()
    page.locator("#qa-remove-choice input").click()
    option = page.get_by_role("option", name=f"hostile.txt: {HOSTILE_TITLE}")
    option.wait_for()
    shot(page, "07-hostile-documents")
    page.keyboard.press("Escape")
    page.get_by_role("tab", name="Ask").click()
    question = "When does the Quibbleflax museum open? <b>soon</b> <img src=y onerror=alert(2)>"
    reply = ask(page, question)
    assert question in page.locator("#qa-chat").inner_text()  # the user's text, literally
    text = reply.inner_text()
    assert HOSTILE_IMG in text
    reply.locator(".qa-best button.qa-open").click()
    page.locator("#qa-article .qa-doctext").wait_for()
    article = page.locator("#qa-article .qa-doctext").inner_text()
    for piece in (HOSTILE_TITLE, HOSTILE_IMG, HOSTILE_MD):
        assert piece in article
    assert HOSTILE_TITLE in reply.locator(".qa-best .qa-source").inner_text()
    assert HOSTILE_TITLE in page.locator("#qa-article .qa-article-title").inner_text()
    # Nothing from the document became an element: no image, script or link in the chat or
    # the article panel.
    for where in ("#qa-chat", "#qa-article"):
        found = page.locator(f"{where} img, {where} script, {where} a, {where} .katex")
        assert found.count() == 0, where
    shot(page, "08-hostile-answer")


def test_refused_uploads_say_why(page, tmp_path: Path) -> None:  # noqa: ANN001
    blank, program = tmp_path / "blank.txt", tmp_path / "notes.exe"
    blank.write_text("   \n\n   \n", encoding="utf-8")
    program.write_text("MZ not an article", encoding="utf-8")
    open_documents(page)
    page.set_input_files("#qa-upload input[type=file]", [str(blank), str(program)])
    # The page refuses the type before uploading; the server refuses the empty text.
    toast = page.get_by_text("Invalid file type: notes.exe.")
    toast.wait_for()
    assert ".txt allowed" in toast.inner_text()
    refused = page.locator("#qa-corpus-status li.qa-refused")
    refused.wait_for()
    assert refused.inner_text() == (
        "✗ blank.txt: refused, its text cannot be read (no text left after cleaning)."
    )
    shot(page, "09-refused-uploads")
    assert "blank.txt" not in page.locator("#qa-documents table").inner_text()


def test_remove_a_document(page, tmp_path: Path) -> None:  # noqa: ANN001
    text = "Gleebworth ferry\n\nThe Gleebworth ferry sails at dawn.\n"
    upload(page, tmp_path, "ferry.txt", text, "Gleebworth ferry")
    page.locator("#qa-remove-choice input").click()
    page.get_by_role("option", name="ferry.txt: Gleebworth ferry").click()
    page.keyboard.press("Escape")
    page.locator("#qa-remove").click()
    page.locator("#qa-corpus-status", has_text="ferry.txt: removed from the corpus.").wait_for()
    page.locator("#qa-index-status", has_text="1 removed").wait_for()
    page.locator("#qa-documents td", has_text="Gleebworth").wait_for(state="detached")
    assert "ferry.txt" not in page.locator("#qa-documents table").inner_text()
    shot(page, "10-removed")


LIGHTHOUSE = {
    "vorlund.txt": (
        "The Vorlund lighthouse\n\n"
        "The Vorlund lighthouse was built by Tamsin Quarrie in 1881. "
        "Its lamp can be seen from forty kilometres away.\n"
    ),
    "coast-walks.txt": (
        "Coastal walks\n\n"
        "Walkers on the coast path pass the Vorlund lighthouse, which was built by Tamsin "
        "Quarrie. A cafe stands beside it.\n"
    ),
}


def test_an_answer_two_articles_give_shows_both(
    page,  # noqa: ANN001
    served: tuple[str, QA],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every passage read: a sure answer from the first article would leave the other unread
    # (``stop_reading_at``), and what is shown here is how two agreeing articles are listed.
    finder = served[1].reading
    monkeypatch.setattr(finder, "settings", finder.settings.replace(stop_reading_at=1.0))
    paths = []
    for name, text in LIGHTHOUSE.items():
        paths.append(tmp_path / name)
        paths[-1].write_text(text, encoding="utf-8")
    open_documents(page)
    page.set_input_files("#qa-upload input[type=file]", [str(p) for p in paths])
    for title in ("The Vorlund lighthouse", "Coastal walks"):
        page.locator("#qa-documents td", has_text=title).first.wait_for()
    page.get_by_role("tab", name="Ask").click()
    reply = ask(page, "Who built the Vorlund lighthouse?")
    best = reply.locator(".qa-best")
    assert "Tamsin Quarrie" in best.locator(".qa-short strong").inner_text()
    assert best.locator(".qa-agree").inner_text() == "2 articles say so"
    sources = best.locator(".qa-sources li")
    assert sources.count() == 2
    assert best.locator("button.qa-open").count() == 2
    names = sorted(sources.nth(i).locator(".qa-source").inner_text() for i in range(2))
    assert "coast-walks.txt" in names[0] and "vorlund.txt" in names[1]
    for i in range(2):
        assert "Tamsin Quarrie" in sources.nth(i).locator("blockquote.qa-context mark").inner_text()
    shot(page, "11-two-articles-agree")
    # Each source's button opens its own article with its own span marked.
    sources.nth(1).locator("button.qa-open").click()
    article = page.locator("#qa-article")
    title = sources.nth(1).locator(".qa-source cite").inner_text()
    article.locator(".qa-article-title", has_text=title).wait_for()
    assert "Tamsin Quarrie" in article.locator(".qa-doctext mark").inner_text()


def test_two_bbc_articles_agreeing_are_shown_as_two_sources(page, tmp_path: Path) -> None:  # noqa: ANN001
    # The BBC set holds the same Golden Joystick story twice, under two file names.
    bbc = needs_shared("data", "bbc-news", "tech")
    paths = []
    for name in ("126.txt", "171.txt"):
        paths.append(tmp_path / f"bbc-tech-{name}")
        paths[-1].write_bytes((bbc / name).read_bytes())
    open_documents(page)
    page.set_input_files("#qa-upload input[type=file]", [str(p) for p in paths])
    for path in paths:
        page.locator("#qa-documents td", has_text=path.name).first.wait_for()
    page.get_by_role("tab", name="Ask").click()
    reply = ask(page, "Which game won Ultimate Game of the year at the Golden Joystick awards?")
    best = reply.locator(".qa-best")
    assert "Doom 3" in best.locator(".qa-short strong").inner_text()
    assert best.locator(".qa-agree").inner_text() == "2 articles say so"
    names = " ".join(best.locator(".qa-sources .qa-source").all_inner_texts())
    assert "bbc-tech-126.txt" in names and "bbc-tech-171.txt" in names
    shot(page, "13-two-bbc-articles-agree")
