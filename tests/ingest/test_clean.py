"""Cleaning rules shared by every format."""

from __future__ import annotations

import codecs

import pytest

from qa.ingest.base import IngestError
from qa.ingest.clean import (
    attributed_author,
    byline_author,
    collapse,
    decode_text,
    is_furniture,
    looks_like_headline,
    looks_like_site_name,
    plain_paragraphs,
    prettify_stem,
    shorten,
    title_from_sentence,
)


class TestDecode:
    def test_utf8_with_bom(self) -> None:
        assert decode_text(codecs.BOM_UTF8 + "Korea’s “talks”".encode(), "a.txt") == (
            "Korea’s “talks”"
        )

    def test_windows_1252_is_decoded_not_dropped(self) -> None:
        data = "Café – “quoted” £5".encode("cp1252")
        with pytest.raises(UnicodeDecodeError):
            data.decode("utf-8")
        assert decode_text(data, "a.txt") == "Café – “quoted” £5"

    def test_latin1_bytes_undefined_in_windows_1252(self) -> None:
        # 0x81 has no cp1252 character, so only the Latin-1 fallback can decode this.
        data = b"caf\xe9 au lait, " * 5 + b"\x81"
        assert decode_text(data, "a.txt") == "café au lait, " * 5 + "\x81"

    def test_utf16_with_bom(self) -> None:
        assert decode_text("naïve text".encode("utf-16"), "a.txt") == "naïve text"

    @pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
    def test_utf16_without_bom_is_recognised_by_its_zero_bytes(self, encoding: str) -> None:
        text = "Kim’s naïve “summit” in Hanoi, 27–28 February.\nSecond line."
        assert decode_text(text.encode(encoding), "a.txt") == text

    def test_binary_with_zero_bytes_in_both_halves_is_not_utf16(self) -> None:
        with pytest.raises(IngestError, match="NUL bytes"):
            decode_text(bytes(range(256)) * 4, "a.bin.txt")
        with pytest.raises(IngestError, match="binary"):  # odd length: never UTF-16
            decode_text("some text".encode("utf-16-le") + b"x", "a.txt")

    def test_nul_bytes_are_binary(self) -> None:
        with pytest.raises(IngestError, match="binary") as info:
            decode_text(b"PK\x03\x04\x00\x00text", "dir/archive.txt")
        assert info.value.path == "dir/archive.txt"

    def test_mostly_control_characters_are_binary(self) -> None:
        with pytest.raises(IngestError, match="binary"):
            decode_text(bytes(range(1, 32)) * 10 + b"some text", "a.txt")


def test_collapse_whitespace_and_invisible_characters() -> None:
    assert collapse("  a\t b\u00a0\n c\u200bd soft\u00adhyphen  ") == "a b cd softhyphen"


@pytest.mark.parametrize(
    "line",
    ["Next Story", "Previous Story", "Share it", "SHARE THIS", "Advertisement", "Read more »",
     "Read more:", "|", " • ", "* * *", "---"],
)  # fmt: skip
def test_furniture_lines(line: str) -> None:
    assert is_furniture(line)


@pytest.mark.parametrize(
    "line",
    ["Round two", "Share prices rose sharply", "Read more books, says minister", "2004", "A|B",
     "Next story: the sequel arrives"],
)  # fmt: skip
def test_text_lines_are_not_furniture(line: str) -> None:
    assert not is_furniture(line)


class TestPlainParagraphs:
    def test_blank_lines_separate_and_whitespace_collapses(self) -> None:
        text = "\n\n  First   para\tgraph.  \n\n\n\nSecond\u00a0one.\r\n\r\nThird.\n"
        assert plain_paragraphs(text) == ["First para graph.", "Second one.", "Third."]

    def test_hard_wrapped_lines_are_joined(self) -> None:
        assert plain_paragraphs("A sentence that was\nwrapped by an editor.\n\nNext.") == [
            "A sentence that was wrapped by an editor.",
            "Next.",
        ]

    def test_sentence_per_line_and_bullets_stay_apart(self) -> None:
        text = "One sentence.\nAnother one.\n- a bullet\n- another bullet"
        assert plain_paragraphs(text) == [
            "One sentence.",
            "Another one.",
            "- a bullet",
            "- another bullet",
        ]

    def test_furniture_line_is_removed_and_separates(self) -> None:
        text = "Body text ends here\nShare it\nNew text after\n|\n\nNext Story"
        assert plain_paragraphs(text) == ["Body text ends here", "New text after"]


def test_headline_and_site_name_shapes() -> None:
    assert looks_like_site_name("Millennium Post")
    assert looks_like_site_name("The Times of India")
    assert not looks_like_site_name("Dollar gains on Greenspan speech")
    assert not looks_like_site_name("Ewood Park.")
    assert looks_like_headline("Round two")
    assert looks_like_headline("Could rivalry overshadow election?")
    assert not looks_like_headline("The talks were preliminary.")
    assert not looks_like_headline(" ".join(["word"] * 16))


def test_standfirst_title_drops_attribution_and_period() -> None:
    sentence = "Trump should build a lasting mechanism for crisis stability, Jane Q. Doe argues."
    assert (
        title_from_sentence(sentence)
        == "Trump should build a lasting mechanism for crisis stability"
    )
    assert attributed_author(sentence) == "Jane Q. Doe"
    assert attributed_author("Prices rose, the minister says.") is None


def test_long_titles_are_shortened_at_a_word_boundary() -> None:
    long = " ".join(f"word{i}" for i in range(60))
    short = shorten(long, limit=50)
    assert len(short) <= 50
    assert short.endswith("…")
    assert long.startswith(short[:-1])
    assert short[:-1].split()[-1] in long.split()


def test_byline() -> None:
    assert byline_author(["Headline", "By Jane Doe, BBC News", "Body."]) == "Jane Doe"
    assert byline_author(["By the end of the year prices had doubled."]) is None


def test_prettify_stem() -> None:
    assert prettify_stem("my_article-2019") == "My article 2019"
