"""Markdown articles (``.md``).

Markdown is rendered to HTML by markdown-it-py (CommonMark, plus GitHub tables and
strikethrough) and read by the HTML extractor, so the syntax is interpreted by a real parser
rather than stripped by patterns: headings become paragraphs of their own, links and emphasis
keep only their text, and the first ``# Heading`` is the title.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from markdown_it import MarkdownIt

from qa.ingest import html
from qa.ingest.base import Extracted
from qa.ingest.clean import byline_author, decode_text, first_nonempty, is_short, prettify_stem

_MARKDOWN = MarkdownIt("commonmark").enable(["table", "strikethrough"])


def parse(data: bytes, source: str) -> list[Extracted]:
    """Load a Markdown file.

    Args:
        data: The file's bytes.
        source: Its path relative to the corpus root.

    Returns:
        One article.

    Raises:
        IngestError: If the file is binary.
    """
    content = html.extract(_MARKDOWN.render(decode_text(data, source)))
    first = content.paragraphs[0] if content.paragraphs else ""
    metadata = dict(content.metadata)
    author = byline_author(content.paragraphs)
    if author:
        metadata["author"] = author
    title = first_nonempty(
        content.title,
        content.first_heading,
        first if is_short(first) else "",
        prettify_stem(PurePosixPath(source).stem),
    )
    return [Extracted(title=title, text="\n\n".join(content.paragraphs), metadata=metadata)]
