"""The BBC news corpus (../shared) ingests whole, headlines as titles."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from qa.ingest import load_corpus, load_file

BBC = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "bbc-news"

pytestmark = pytest.mark.shared


@pytest.fixture(scope="module")
def bbc() -> Path:
    if not BBC.exists():
        pytest.skip(f"{BBC} not present: ../shared data exists only in CI and the dev workplace")
    return BBC


def test_every_article_loads_with_its_headline(bbc: Path, caplog: pytest.LogCaptureFixture) -> None:
    articles = sorted(p for p in bbc.rglob("*.txt") if p.parent != bbc)
    with caplog.at_level(logging.WARNING, logger="qa.ingest"):
        docs = {doc.doc_id: doc for doc in load_corpus(bbc)}

    assert not caplog.records
    assert len(articles) == 2225
    for path in articles:
        doc = docs[path.relative_to(bbc).as_posix()]
        headline = path.read_bytes().decode("utf-8", "replace").split("\n", 1)[0]
        assert doc.title == " ".join(headline.split()), doc.doc_id
        assert doc.text.startswith(doc.title)
        assert "site" not in doc.metadata, doc.doc_id


def test_the_latin1_article_is_decoded(bbc: Path) -> None:
    path = bbc / "sport" / "199.txt"
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("utf-8")
    [doc] = load_file(path, bbc)
    assert "a £15.8m signing from Parma" in doc.text
