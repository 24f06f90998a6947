"""Text cleaning shared by every format: decoding, paragraphs, page furniture, titles, authors.

The cleaned text is the coordinate system of the whole product, so its shape is fixed here:
paragraphs separated by exactly one blank line, whitespace inside a paragraph collapsed to single
spaces, nothing before the first or after the last paragraph. Characters are kept as they are
(curly quotes and dashes are not folded to ASCII) so that answers quote the source faithfully.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable

from qa.ingest.base import IngestError

#: Longest title kept whole; longer candidate titles are cut at a word boundary.
MAX_TITLE_CHARS = 150

#: Lines (or whole HTML blocks) that are page furniture, not article text: navigation, sharing
#: widgets and ad slots left behind by scrapers. Compared case-insensitively, after trailing
#: arrows, colons and ellipses are stripped ("Read more »" matches "read more").
FURNITURE_LINES = frozenset(
    {
        "advertisement",
        "advertisements",
        "sponsored content",
        "next story",
        "previous story",
        "next article",
        "previous article",
        "share",
        "share it",
        "share this",
        "share this article",
        "share this story",
        "share on facebook",
        "share on twitter",
        "tweet",
        "read more",
        "related stories",
        "related articles",
        "also read",
        "comments",
        "print",
        "email",
        "back to top",
    }
)

# A line with no letter or digit at all ("|", "•", "* * *", "---") is a separator, not text.
_NO_WORD_CHARACTER = re.compile(r"^[\W_]+$")
_FURNITURE_TAIL = re.compile(r"[\s:»›>→…]+$")

# Characters that carry no text: C0/C1 controls (bar tab and newline), soft hyphens, zero-width
# spaces and stray byte-order marks. They would otherwise hide inside words and break matching.
_INVISIBLE = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f\u00ad\u200b\ufeff]")
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")
# Lone surrogates are not characters: JSON escapes (\ud800) decode to them, and no file can
# store them (UTF-8 refuses). They become U+FFFD, as an undecodable byte would.
_SURROGATE = re.compile("[\ud800-\udfff]")

# A line ending like this closes a sentence, so the next line of the same block is a new
# paragraph rather than the continuation of a hard-wrapped one.
_SENTENCE_END = re.compile(r"[.!?…:;\"”’')\]]$")
_BULLET = re.compile(r"^(?:[-*•–]|\d{1,3}[.)])\s")

# Bytes outside text: more than this share of control characters means the file is binary.
_MAX_CONTROL_SHARE = 0.05

_SITE_CONNECTORS = frozenset({"of", "the", "and", "&", "on", "de", "la", "le"})
_SITE_WORD = re.compile(r"^[A-Z0-9][\w&'’.-]*$")

# Bylines and opinion-piece attributions are the only author patterns trusted: "By Jane Doe" on
# a line of its own, or a standfirst ending "..., Jane Doe argues." / "writes.". ("says" is not:
# in news it attributes quotes to sources, not authorship.)
_NAME = r"(?:[A-Z][\w'’.-]*\s+){1,3}[A-Z][\w'’-]*"
_BYLINE = re.compile(rf"^By\s+(?P<author>{_NAME})(?:\s*[,|–—-]\s*.*)?$")
_ATTRIBUTION = re.compile(rf",\s+(?P<author>{_NAME})\s+(?:argues|writes)\.?$")


def decode_text(data: bytes, source: str) -> str:
    """Decode file bytes to text, refusing binary content.

    UTF-8 (with or without a byte-order mark) is tried first, then Windows-1252, then Latin-1,
    so a Latin-1 or Windows file is decoded rather than dropped. UTF-16 is recognised by its
    byte-order mark, or without one by its zero bytes: in text of Latin letters every other
    byte is zero (the high byte of each character), which no 8-bit text has.

    Args:
        data: The raw bytes.
        source: The file's path relative to the corpus root, for the error message.

    Returns:
        The decoded text (not yet cleaned).

    Raises:
        IngestError: If the bytes hold NUL bytes or mostly control characters.
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise IngestError(source, f"undecodable UTF-16 text ({exc.reason})") from exc
    if b"\x00" in data:
        text = _utf16_without_bom(data)
        if text is None:
            raise IngestError(source, "binary content (NUL bytes)")
        return _refuse_control(text, source)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
    return _refuse_control(text, source)


#: Share of a UTF-16 sample's high (or low) bytes that must be zero, and the most of its other
#: bytes that may be, for it to be read as UTF-16 without a byte-order mark.
_UTF16_ZERO_SHARE = 0.7
_UTF16_OTHER_ZERO_SHARE = 0.05


def _utf16_without_bom(data: bytes, sample_bytes: int = 8192) -> str | None:
    """``data`` decoded as UTF-16 LE or BE if its zero bytes say it is one, else None."""
    if len(data) < 4 or len(data) % 2:
        return None
    sample = data[:sample_bytes]
    pairs = len(sample) // 2
    even_zero = sample[0::2].count(0) / pairs
    odd_zero = sample[1::2].count(0) / pairs
    if odd_zero >= _UTF16_ZERO_SHARE and even_zero <= _UTF16_OTHER_ZERO_SHARE:
        encoding = "utf-16-le"
    elif even_zero >= _UTF16_ZERO_SHARE and odd_zero <= _UTF16_OTHER_ZERO_SHARE:
        encoding = "utf-16-be"
    else:
        return None
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        return None


def _refuse_control(text: str, source: str) -> str:
    """``text``, unless it is mostly control characters (binary data that decoded)."""
    if text and len(_CONTROL.findall(text)) / len(text) > _MAX_CONTROL_SHARE:
        raise IngestError(source, "binary content (mostly control characters)")
    return text


def collapse(text: str) -> str:
    """Collapse every run of whitespace to one space and trim the ends (and drop invisible
    characters, and replace lone surrogates with U+FFFD)."""
    return " ".join(_SURROGATE.sub("\ufffd", _INVISIBLE.sub("", text)).split())


def join_paragraphs(paragraphs: Iterable[str]) -> str:
    """Join paragraphs into the cleaned text: collapsed, non-empty, one blank line apart."""
    return "\n\n".join(p for p in (collapse(p) for p in paragraphs) if p)


def is_furniture(line: str) -> bool:
    """Whether a line (or a whole HTML block) is page furniture rather than article text.

    Args:
        line: One line of text, or the text of one block element.

    Returns:
        True for the known navigation/sharing/advert labels in ``FURNITURE_LINES`` and for
        lines made only of punctuation or symbols, such as a lone ``|``.
    """
    stripped = collapse(line)
    if not stripped:
        return False
    if _NO_WORD_CHARACTER.match(stripped):
        return True
    return _FURNITURE_TAIL.sub("", stripped.casefold()) in FURNITURE_LINES


def plain_paragraphs(text: str) -> list[str]:
    """Split plain text into cleaned paragraphs, dropping furniture lines.

    Blank lines separate paragraphs. Inside a block, lines are joined (hard-wrapped text)
    unless a line ends a sentence or the next one starts a list item, in which case each line
    is its own paragraph (one-paragraph-per-line text, bullet lists). A furniture line counts as
    a blank line, so removing it never glues the text around it together.

    Args:
        text: Decoded text.

    Returns:
        The paragraphs, each collapsed to single spaces, none empty.
    """
    paragraphs: list[str] = []
    current: list[str] = []

    def close() -> None:
        paragraph = collapse(" ".join(current))
        if paragraph:
            paragraphs.append(paragraph)
        current.clear()

    # splitlines() also breaks on \r, \f, \v and the Unicode line separators.
    for raw in text.splitlines():
        line = collapse(raw)
        if not line or is_furniture(line):
            close()
            continue
        if current and (_SENTENCE_END.search(current[-1]) or _BULLET.match(line)):
            close()
        current.append(line)
    close()
    return paragraphs


def looks_like_headline(line: str) -> bool:
    """A short line that does not end like a sentence: at most 15 words, no final period."""
    words = line.split()
    return 0 < len(words) <= 15 and len(line) <= MAX_TITLE_CHARS and line[-1] not in ".,;:"


def looks_like_site_name(line: str) -> bool:
    """A masthead such as "Millennium Post": up to five capitalised words, no punctuation.

    Headlines in sentence case ("Dollar gains on Greenspan speech") do not qualify, which keeps
    a headline followed by a short first paragraph from being mistaken for masthead + headline.
    """
    words = line.split()
    if not 0 < len(words) <= 5 or line[-1] in ".,;:!?\"'”’":
        return False
    return all(_SITE_WORD.match(w) or w.casefold() in _SITE_CONNECTORS for w in words) and any(
        ch.isalpha() for ch in line
    )


def is_short(line: str) -> bool:
    """Short enough to serve as a title: at most 20 words and ``MAX_TITLE_CHARS`` characters."""
    return 0 < len(line.split()) <= 20 and len(line) <= MAX_TITLE_CHARS


def shorten(text: str, limit: int = MAX_TITLE_CHARS) -> str:
    """Cut ``text`` at the last word boundary within ``limit`` characters, marking the cut."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0].rstrip(" ,;:–—-")
    return f"{cut}…"


def title_from_sentence(sentence: str) -> str:
    """Make a title from a summary sentence such as a standfirst.

    An opinion piece's attribution (", Jane Doe argues.") and the final period are dropped; a
    long sentence is shortened at a word boundary.
    """
    match = _ATTRIBUTION.search(sentence)
    if match:
        sentence = sentence[: match.start()]
    return shorten(sentence.rstrip(" ."))


def attributed_author(sentence: str) -> str | None:
    """The author named by a standfirst ending "..., Jane Doe argues." (or "writes.")."""
    match = _ATTRIBUTION.search(sentence)
    return match.group("author") if match else None


def byline_author(paragraphs: list[str], first: int = 3) -> str | None:
    """The author of a "By Jane Doe" line among the first few paragraphs, if any."""
    for paragraph in paragraphs[:first]:
        match = _BYLINE.match(paragraph)
        if match:
            return match.group("author")
    return None


def prettify_stem(stem: str) -> str:
    """A readable title from a file name: "my_article-2019" becomes "My article 2019"."""
    words = re.sub(r"[_\-.\s]+", " ", stem).strip()
    return (words[:1].upper() + words[1:]) if words else stem


def first_nonempty(*candidates: str | None) -> str:
    """The first candidate that is not empty after collapsing whitespace, else ``""``."""
    for candidate in candidates:
        if candidate and collapse(candidate):
            return collapse(candidate)
    return ""
