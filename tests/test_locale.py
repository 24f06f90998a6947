"""Text files under an ASCII locale. OpenVINO sets the whole process's locale to "C" while it
compiles a model (qa/models/runtime.py), so a text file another thread opens at that moment
without naming an encoding is read or written as ASCII: the product names UTF-8 everywhere."""

from __future__ import annotations

import codecs
import locale
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from qa.evaluation.datasets import load_jsonl
from qa.feedback import FeedbackLog, Span
from qa.pipeline import QA
from qa.settings import Settings
from tests.conftest import SEED_CORPUS, HashEmbedder

ARTICLE = (
    "Café talks in Zürich\n\n"
    "The envoys met at the Café Fünf in Zürich on 3 March — their “first real talks” in years.\n\n"
    "Ms Łukasiewicz said the next round would be held in Malmö.\n"
)


@pytest.fixture
def ascii_locale() -> Iterator[None]:
    """The process's locale set to "C" as OpenVINO sets it, and put back after the test."""
    saved = locale.setlocale(locale.LC_ALL)
    locale.setlocale(locale.LC_ALL, "C")
    try:
        if codecs.lookup(locale.getpreferredencoding(False)).name != "ascii":
            pytest.skip("Python runs in UTF-8 mode here: the locale never picks a file's encoding")
        yield
    finally:
        locale.setlocale(locale.LC_ALL, saved)


def test_an_index_built_updated_and_loaded_under_an_ascii_locale_keeps_every_character(
    tmp_path: Path, ascii_locale: None
) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(SEED_CORPUS, corpus)
    (corpus / "zürich.txt").write_text(ARTICLE, encoding="utf-8")
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", reader_model="none")
    qa = QA(settings, embedder=HashEmbedder())
    qa.build(show_progress=False)
    edited = ARTICLE.replace("Malmö", "Tromsø")
    (corpus / "zürich.txt").write_text(edited, encoding="utf-8")
    report = qa.build(show_progress=False)
    assert report.changed == ["zürich.txt"]

    reloaded = QA(settings, embedder=HashEmbedder())
    document = reloaded.index.documents["zürich.txt"]
    assert document.title == "Café talks in Zürich"
    assert "Tromsø" in document.text and "“first real talks”" in document.text
    passages = reloaded.search("Where will Ms Łukasiewicz hold the next round, Tromsø?", k=3)
    assert any(p.chunk.doc_id == "zürich.txt" for p in passages)

    log = FeedbackLog.of(reloaded)
    start = document.text.index("Tromsø")
    span = Span(doc_id="zürich.txt", start=start, end=start + len("Tromsø"), text="Tromsø")
    log.record("Où se tiendra la prochaine réunion ?", "right", answer=span)
    [mark] = load_jsonl(log.path)
    assert mark.question == "Où se tiendra la prochaine réunion ?"
    assert mark.answers == ("Tromsø",)
