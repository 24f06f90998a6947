"""The two seed articles, as delivered, come out clean."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from qa.ingest import load_corpus
from qa.types import Document

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "corpus"
SHARED_SEEDS = REPO.parent / "shared" / "seeds"
SEED_000 = "000_4b3a89178ec270f5.txt"
SEED_003 = "003_bd4e093a9656d3e9.txt"

STANDFIRST = (
    "While continuing to press for the denuclearisation of North Korea, Donald Trump should "
    "build a lasting mechanism for crisis stability, Mark Fitzpatrick argues."
)


@pytest.fixture(scope="module")
def seeds() -> dict[str, Document]:
    return {doc.doc_id: doc for doc in load_corpus(CORPUS) if doc.doc_id in (SEED_000, SEED_003)}


def assert_clean_shape(text: str) -> None:
    assert text == text.strip()
    assert "\n\n\n" not in text
    for paragraph in text.split("\n\n"):
        assert paragraph == " ".join(paragraph.split())


def test_both_seeds_load(seeds: dict[str, Document]) -> None:
    assert set(seeds) == {SEED_000, SEED_003}
    for doc_id, doc in seeds.items():
        assert doc.path == doc_id
        assert doc.content_hash == hashlib.sha256((CORPUS / doc_id).read_bytes()).hexdigest()
        assert_clean_shape(doc.text)


@pytest.mark.shared
@pytest.mark.parametrize("name", [SEED_000, SEED_003])
def test_corpus_seeds_are_byte_identical_to_the_delivered_ones(name: str) -> None:
    if not SHARED_SEEDS.exists():
        pytest.skip(
            f"{SHARED_SEEDS} not present: ../shared exists only in CI and the dev workplace"
        )
    assert (CORPUS / name).read_bytes() == (SHARED_SEEDS / name).read_bytes()


class TestMillenniumPost:
    def test_title_and_site(self, seeds: dict[str, Document]) -> None:
        doc = seeds[SEED_000]
        assert doc.title == "Round two"
        assert doc.metadata["site"] == "Millennium Post"
        assert "Millennium Post" not in doc.text

    def test_furniture_removed_body_kept(self, seeds: dict[str, Document]) -> None:
        doc = seeds[SEED_000]
        paragraphs = doc.text.split("\n\n")
        for furniture in ("Next Story", "Share it", "|"):
            assert furniture not in paragraphs
        assert "Next Story" not in doc.text and "Share it" not in doc.text
        assert paragraphs[0] == "Round two"
        assert paragraphs[1].startswith("The US and North Korea are seriously considering")
        assert "beginning with up to seven officers in each" in doc.text
        assert "Trump-Kim relationship – all without key steps" in doc.text
        assert doc.text.endswith('noting "much work remains to be done."')


class TestEscapedHtmlSeed:
    def test_title_and_author(self, seeds: dict[str, Document]) -> None:
        doc = seeds[SEED_003]
        assert doc.title == (
            "While continuing to press for the denuclearisation of North Korea, Donald Trump "
            "should build a lasting mechanism for crisis stability"
        )
        assert doc.metadata["author"] == "Mark Fitzpatrick"

    def test_no_escapes_markup_or_script(self, seeds: dict[str, Document]) -> None:
        text = seeds[SEED_003].text
        for leftover in ("\\u", "\\n", "\\", "<", ">", "u003c", "className", "getElementById",
                         "react_", "style=", "href", "});", "|"):  # fmt: skip
            assert leftover not in text, leftover

    def test_standfirst_first_then_body(self, seeds: dict[str, Document]) -> None:
        paragraphs = seeds[SEED_003].text.split("\n\n")
        assert paragraphs[0] == STANDFIRST
        assert paragraphs[1].startswith("Although he has not succeeded in reducing North Korea’s")
        assert paragraphs[-1].endswith("it is a no-brainer.")

    def test_headings_are_paragraphs(self, seeds: dict[str, Document]) -> None:
        paragraphs = seeds[SEED_003].text.split("\n\n")
        assert "'Security guarantees'" in paragraphs
        assert "Durable communication channels" in paragraphs
        assert paragraphs.index("'Security guarantees'") == 2

    def test_sentences_read_as_in_the_article(self, seeds: dict[str, Document]) -> None:
        text = seeds[SEED_003].text
        assert "and Trump agreed to at Panmunjom on 30 June, the US side will continue" in text
        assert "North Korea’s insistence on ‘security guarantees’, a vague objective" in text
        assert "Chairman Kim Jong-un and Trump" in text
        assert "the failed 27–28 February summit in Hanoi" in text
        assert "transfer F-35 stealth fighter jets to the Republic of Korea (ROK)." in text
