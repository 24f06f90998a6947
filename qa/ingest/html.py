"""HTML articles (``.html``/``.htm``), and the HTML extraction other formats reuse.

Parsing is BeautifulSoup over lxml. Block elements (paragraphs, headings, list items, table
cells, ...) become paragraphs; inline elements (links, emphasis, spans) contribute their text to
the paragraph around them. Page chrome (scripts, styles, navigation, headers, footers, asides,
forms) is dropped before any text is read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from bs4 import BeautifulSoup
from bs4.element import NavigableString, PageElement, PreformattedString, Tag

from qa.ingest.base import Extracted
from qa.ingest.clean import (
    collapse,
    decode_text,
    first_nonempty,
    is_furniture,
    is_short,
    prettify_stem,
    title_from_sentence,
)

_DROPPED = (
    "script",
    "style",
    "nav",
    "header",
    "footer",
    "aside",
    "form",
    "noscript",
    "template",
    "iframe",
    "svg",
)
_HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
_BLOCKS = frozenset(
    {
        *_HEADINGS,
        "address", "article", "blockquote", "body", "caption", "dd", "details", "dialog", "div",
        "dl", "dt", "fieldset", "figcaption", "figure", "hr", "html", "li", "main", "ol", "p",
        "pre", "section", "summary", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul",
    }
)  # fmt: skip
# Marks, on the walk's stack, the end of a block element.
_CLOSE = None
# Two line breaks with nothing but spaces between them separate paragraphs (<br><br> layouts).
_BREAKS = re.compile(r"\n *\n[\n ]*")


@dataclass
class HtmlContent:
    """What an HTML page or fragment holds.

    Attributes:
        title: From ``<title>``, ``og:title`` or the first ``<h1>``, in that order; ``""`` if
            none. A trailing " | Site Name" is removed when the site name is known.
        paragraphs: Cleaned paragraphs in reading order, headings included.
        first_heading: Text of the first heading of any level, ``""`` if none.
        description: ``og:description`` or meta description, ``""`` if none.
        metadata: ``site``, ``url``, ``date`` (as the page writes it), ``author`` where the
            page declares them.
    """

    title: str
    paragraphs: list[str]
    first_heading: str
    description: str
    metadata: dict[str, str] = field(default_factory=dict)


def extract(markup: str) -> HtmlContent:
    """Extract the article text and metadata of an HTML document or fragment.

    Args:
        markup: HTML source.

    Returns:
        The page's title, paragraphs and metadata.
    """
    soup = BeautifulSoup(markup, "lxml")
    metadata = _metadata(soup)
    title_tag = soup.find("title")
    title = _strip_site_suffix(
        first_nonempty(title_tag.get_text() if title_tag else "", _meta(soup, "og:title")),
        metadata.get("site"),
    )
    for tag in soup.find_all(_DROPPED):
        if not tag.decomposed:
            tag.decompose()
    headings = [collapse(h.get_text(" ")) for h in soup.find_all(_HEADINGS)]
    h1 = soup.find("h1")
    root = soup.body or soup
    return HtmlContent(
        title=first_nonempty(title, collapse(h1.get_text(" ")) if h1 else ""),
        paragraphs=[p for p in _paragraphs(root) if not is_furniture(p)],
        first_heading=first_nonempty(*headings),
        description=_meta(soup, "og:description", "description"),
        metadata=metadata,
    )


def parse(data: bytes, source: str) -> list[Extracted]:
    """Load an HTML file.

    Args:
        data: The file's bytes.
        source: Its path relative to the corpus root.

    Returns:
        One article.

    Raises:
        IngestError: If the file is binary.
    """
    content = extract(decode_text(data, source))
    first = content.paragraphs[0] if content.paragraphs else ""
    title = first_nonempty(
        content.title,
        title_from_sentence(content.description) if content.description else "",
        content.first_heading,
        first if is_short(first) else "",
        prettify_stem(PurePosixPath(source).stem),
    )
    return [Extracted(title=title, text="\n\n".join(content.paragraphs), metadata=content.metadata)]


def _paragraphs(root: Tag) -> list[str]:
    """Text of ``root`` as paragraphs: every block element starts and ends one."""
    paragraphs: list[str] = []
    pending: list[str] = []

    def close() -> None:
        for part in _BREAKS.split("".join(pending)):
            paragraph = collapse(part)
            if paragraph:
                paragraphs.append(paragraph)
        pending.clear()

    # An explicit stack, not recursion: lxml, fed by BeautifulSoup, keeps any depth (a page of
    # 20,000 nested <div>s is one), far past Python's recursion limit. A block's end is marked
    # on the stack by _CLOSE, so its paragraph closes once all its children are read.
    stack: list[PageElement | None] = list(reversed(root.contents))
    while stack:
        node = stack.pop()
        if node is _CLOSE:
            close()
        elif isinstance(node, Tag):
            if node.name == "br":
                pending.append("\n")
                continue
            if node.name in _BLOCKS:
                close()
                stack.append(_CLOSE)
            stack.extend(reversed(node.contents))
        # Comments, doctypes and CDATA are PreformattedString: markup, not text.
        elif isinstance(node, NavigableString) and not isinstance(node, PreformattedString):
            # Source newlines are insignificant in HTML; only <br> may break a paragraph.
            pending.append(re.sub(r"\s+", " ", str(node)))
    close()
    return paragraphs


def _meta(soup: BeautifulSoup, *keys: str) -> str:
    """Content of the first ``<meta property=...>`` or ``<meta name=...>`` among ``keys``."""
    for key in keys:
        for attribute in ("property", "name"):
            tag = soup.find("meta", attrs={attribute: key})
            content = collapse(str(tag.get("content") or "")) if isinstance(tag, Tag) else ""
            if content:
                return content
    return ""


#: Meta tags that give the day a page was published, in order of preference (``qa.ingest``
#: reads the day from the first one present).
_DATE_META = (
    "article:published_time",
    "og:published_time",
    "datePublished",
    "date",
    "pubdate",
    "publish-date",
    "DC.date.issued",
    "dc.date",
)


def _metadata(soup: BeautifulSoup) -> dict[str, str]:
    canonical = soup.find("link", rel="canonical")
    time_tag = soup.find("time", attrs={"datetime": True})
    found = {
        "site": _meta(soup, "og:site_name"),
        "url": first_nonempty(
            str(canonical.get("href") or "") if isinstance(canonical, Tag) else "",
            _meta(soup, "og:url"),
        ),
        "date": first_nonempty(
            _meta(soup, *_DATE_META),
            str(time_tag.get("datetime") or "") if isinstance(time_tag, Tag) else "",
        ),
        "author": _meta(soup, "author"),
    }
    return {key: value for key, value in found.items() if value}


def _strip_site_suffix(title: str, site: str | None) -> str:
    """Drop a trailing " | Site", " - Site" or " – Site" that repeats the site name."""
    if site:
        match = re.search(rf"\s+[|\-–—:·]\s+{re.escape(site)}$", title)
        if match and match.start() > 0:
            return title[: match.start()]
    return title
