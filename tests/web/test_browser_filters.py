"""The Ask tab's filter row in a real browser: a folder choice keeps the reply's sources in
that folder and says so above it; a bad day is refused with the reason. The module's app is the
conftest one, its corpus given two folders that say different things about Zentro."""

from __future__ import annotations

import pytest

from qa.pipeline import QA
from tests.web.test_browser import ask, browser, page, pytestmark, shot  # noqa: F401

FOLDERS = {
    "business/acme.txt": "Acme results\n\nAcme profits rose 12% in 2004. Its owner Zentro will "
    "pay shareholders a dividend of 40 cents a share in March.\n",
    "sport/derby.txt": "Derby report\n\nThe Zentro football club won the derby 3-1 in 2004. "
    "Zentro will pay its players a bonus of 2,000 pounds each in March.\n",
}
QUESTION = "What will Zentro pay?"


@pytest.fixture(scope="module")
def server(served: tuple[str, QA]) -> str:
    """The conftest app, its corpus (the seed articles) updated with ``FOLDERS``."""
    url, qa = served
    for name, text in FOLDERS.items():
        (qa.settings.corpus_dir / name).parent.mkdir()
        (qa.settings.corpus_dir / name).write_text(text, encoding="utf-8")
    qa.build(show_progress=False)
    return url


def ask_in(page, folder: str) -> tuple[str, list[str]]:  # noqa: ANN001, F811
    """Choose ``folder`` in the filter row, ask ``QUESTION`` in a new conversation, and return
    the reply's text and the text of each source it holds (folded ones too)."""
    page.click("#qa-new")
    page.wait_for_function("() => !document.querySelector('#qa-chat .qa-reply')")
    page.locator("#qa-filter-folder input").click()
    page.get_by_role("option", name=folder, exact=True).click()
    ask(page, QUESTION)
    sources = page.locator("#qa-chat .qa-source")
    return page.locator("#qa-chat").inner_text(), sources.all_text_contents()


def test_a_folder_choice_keeps_the_sources_in_it(page) -> None:  # noqa: ANN001, F811
    assert page.locator("#qa-filters").is_visible()
    text, sources = ask_in(page, "business")
    assert "Searched only:folder business" in text.replace("\n", "")
    assert sources and all(" · business/" in s for s in sources), sources
    assert "business/acme.txt" in sources[0] and "40 cents" in text
    shot(page, "12-filter")
    text, sources = ask_in(page, "sport")
    assert "Searched only:folder sport" in text.replace("\n", "")
    assert sources and all(" · sport/" in s for s in sources) and "2,000 pounds" in text
    text, sources = ask_in(page, "All folders")
    assert "Searched only" not in text and any("sport/derby.txt" in s for s in sources)


@pytest.mark.parametrize(
    ("box", "day", "message"),
    [
        ("since", "2004-02-30", "since must be a date YYYY-MM-DD, got '2004-02-30'"),
        ("until", "March 2004", "until must be a date YYYY-MM-DD, got 'March 2004'"),
    ],
)
def test_a_bad_day_is_refused_with_the_reason(
    page,  # noqa: ANN001, F811
    box: str,
    day: str,
    message: str,
) -> None:
    page.fill(f"#qa-filter-{box} input", day)
    reply = ask(page, QUESTION)
    assert "This question cannot be answered" in reply.inner_text()
    assert message in reply.inner_text() and page.locator("#qa-chat .qa-source").count() == 0
