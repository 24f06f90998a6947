"""Plain-text articles (``.txt``), including text that is really HTML.

Scraped "text" files are often markup in disguise. Two shapes are recognised:

* real tags (``<p>``, ``<div>``...): the whole text is parsed as HTML;
* HTML inside a JavaScript string literal, as a page's script embeds it (``\\u003cp\\u003e``,
  ``\\u0022``, ``\\n`` escapes), usually followed by the rest of the script
  (``","className":...}), document.getElementById(...))});``). The string is located and
  unescaped, the script around it is cut, and the HTML is parsed. Plain lines outside the
  script, such as a standfirst the scraper appended, are kept and come first.

Anything else is plain text: paragraphs split on blank lines, furniture lines removed, and a
masthead line ("Millennium Post" above the headline) moved to ``metadata["site"]``.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from qa.ingest import html
from qa.ingest.base import Extracted
from qa.ingest.clean import (
    attributed_author,
    byline_author,
    decode_text,
    first_nonempty,
    is_short,
    join_paragraphs,
    looks_like_headline,
    looks_like_site_name,
    plain_paragraphs,
    prettify_stem,
    title_from_sentence,
)

# Several escaped "<" mark escaped markup; one could be a literal in prose about code.
_ESCAPED_LT = re.compile(r"\\(?:u003[cC]|x3[cC])")
_MIN_ESCAPED_TAGS = 3
_TAG = re.compile(
    r"</?(?:p|div|span|a|br|h[1-6]|ul|ol|li|em|strong|b|i|table|tr|td|html|body|head|title)"
    r"(?:\s[^<>]*)?/?>",
    re.IGNORECASE,
)
_MIN_TAGS = 3
# A JavaScript string ends at the first double quote that is not part of an escape.
_JS_TOKEN = re.compile(r'\\.|"', re.DOTALL)
_JS_ESCAPE = re.compile(
    r"\\(?:u\{(?P<braced>[0-9a-fA-F]{1,6})\}|u(?P<u4>[0-9a-fA-F]{4})|x(?P<x2>[0-9a-fA-F]{2})"
    r"|(?P<char>\r\n|[\s\S]))"
)
_JS_SIMPLE = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v", "0": "\0"}
_LINE_CONTINUATIONS = ("\n", "\r", "\r\n", "\u2028", "\u2029")


def parse(data: bytes, source: str) -> list[Extracted]:
    """Load a ``.txt`` file.

    Args:
        data: The file's bytes.
        source: Its path relative to the corpus root.

    Returns:
        One article.

    Raises:
        IngestError: If the file is binary.
    """
    text = decode_text(data, source)
    return [read_text(text, fallback_title=prettify_stem(PurePosixPath(source).stem))]


def read_text(text: str, fallback_title: str) -> Extracted:
    """Clean a text that may be plain, HTML, or HTML escaped inside a script.

    Args:
        text: Decoded text.
        fallback_title: Title to use when the text offers none.

    Returns:
        The article (its text may be empty).
    """
    escapes = list(_ESCAPED_LT.finditer(text))
    if len(escapes) >= _MIN_ESCAPED_TAGS:
        before, string, after = _split_js_string(text, escapes[0].start())
        return _read_markup(
            _decode_js_string(string), before + after, "escaped-html", fallback_title
        )
    if len(_TAG.findall(text)) >= _MIN_TAGS:
        return _read_markup(text, "", "html", fallback_title)
    return _read_plain(text, fallback_title)


def _read_plain(text: str, fallback_title: str) -> Extracted:
    paragraphs = plain_paragraphs(text)
    metadata: dict[str, str] = {}
    if (
        len(paragraphs) >= 3
        and looks_like_site_name(paragraphs[0])
        and looks_like_headline(paragraphs[1])
    ):
        metadata["site"] = paragraphs.pop(0)
    first = paragraphs[0] if paragraphs else ""
    author = byline_author(paragraphs)
    if author:
        metadata["author"] = author
    return Extracted(
        title=first_nonempty(first if is_short(first) else "", fallback_title),
        text=join_paragraphs(paragraphs),
        metadata=metadata,
    )


def _read_markup(markup: str, outside: str, kind: str, fallback_title: str) -> Extracted:
    """Article from HTML plus the plain text found outside it (a standfirst, usually)."""
    content = html.extract(markup)
    standfirst = plain_paragraphs(outside)
    paragraphs = standfirst + content.paragraphs
    lead = standfirst[0] if standfirst else content.description
    metadata = dict(content.metadata)
    metadata["markup"] = kind
    author = first_nonempty(
        metadata.get("author"), attributed_author(lead) if lead else None, byline_author(paragraphs)
    )
    if author:
        metadata["author"] = author
    first = paragraphs[0] if paragraphs else ""
    return Extracted(
        title=first_nonempty(
            content.title,
            title_from_sentence(lead) if lead else "",
            content.first_heading,
            first if is_short(first) else "",
            fallback_title,
        ),
        text=join_paragraphs(paragraphs),
        metadata=metadata,
    )


def _split_js_string(text: str, first_escape: int) -> tuple[str, str, str]:
    """Split text around the JavaScript string literal that holds escaped HTML.

    The string starts after the last unescaped double quote before the first escaped ``<``
    (or at the start of the text, when the scraper cut the opening quote) and ends at the next
    unescaped double quote (or the end of the text). The script code sharing a line with either
    quote is dropped; whole lines outside are kept.

    Args:
        text: The whole text.
        first_escape: Offset of the first escaped ``<``.

    Returns:
        Plain text before the string, the string's raw (still escaped) content, plain text
        after it.
    """
    start, end = 0, len(text)
    for token in _JS_TOKEN.finditer(text):
        if token.group() != '"':
            continue
        if token.start() < first_escape:
            start = token.end()
        else:
            end = token.start()
            break
    before = text[:start]
    before = before[: before.rfind("\n") + 1] if start else ""
    after = text[end:]
    newline = after.find("\n")
    after = after[newline + 1 :] if newline >= 0 and end < len(text) else ""
    return before, text[start:end], after


def _decode_js_string(raw: str) -> str:
    """Unescape a JavaScript string literal's content (a superset of JSON's escapes).

    Unlike ``json.loads`` this accepts the escapes JSON lacks (``\\'``, ``\\x3c``, ``\\u{...}``,
    line continuations) and never fails: an unknown escape stands for the character itself, as
    in JavaScript, and a lone surrogate becomes U+FFFD.
    """

    def replace(match: re.Match[str]) -> str:
        code = match.group("braced") or match.group("u4") or match.group("x2")
        if code is not None:
            point = int(code, 16)
            return chr(point) if point <= 0x10FFFF else "\ufffd"
        char = match.group("char")
        if char in _LINE_CONTINUATIONS:
            return ""
        return _JS_SIMPLE.get(char, char)

    decoded = _JS_ESCAPE.sub(replace, raw)
    # \uD83D\uDE00 arrives as two surrogates; the UTF-16 round trip pairs them into one emoji.
    return decoded.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
