"""Markdown articles (``.md``).

Markdown is rendered to HTML by markdown-it-py (CommonMark, plus GitHub tables and
strikethrough) and read by the HTML extractor, so the syntax is interpreted by a real parser
rather than stripped by patterns: headings become paragraphs of their own, links and emphasis
keep only their text, and the first ``# Heading`` is the title.

markdown-it stops parsing blocks nested deeper than its ``maxNesting`` (quotes in quotes, lists
in lists) and drops what lies below; a file that reaches that depth is read as plain text
instead, so no word of it is lost. markdown-it is pure Python, about a second a megabyte (more
for deep nesting), so a file over ``MAX_MARKDOWN_BYTES`` is read as plain text too: its markup
stays in the text, but a 60 MB upload cannot hold a build for a minute and a half.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from markdown_it import MarkdownIt

from qa.ingest import html
from qa.ingest import text as plain_text
from qa.ingest.base import Extracted
from qa.ingest.clean import byline_author, decode_text, first_nonempty, is_short, prettify_stem

_MARKDOWN = MarkdownIt("commonmark").enable(["table", "strikethrough"])

#: Largest Markdown file parsed as Markdown (some 150,000 words, far beyond any article); a
#: larger one is read as plain text, in linear time.
MAX_MARKDOWN_BYTES = 2**20


def parse(data: bytes, source: str) -> list[Extracted]:
    """Load a Markdown file.

    Args:
        data: The file's bytes.
        source: Its path relative to the corpus root.

    Returns:
        One article (read as plain text when it nests past markdown-it's depth or is larger
        than ``MAX_MARKDOWN_BYTES``).

    Raises:
        IngestError: If the file is binary.
    """
    if len(data) > MAX_MARKDOWN_BYTES:
        return plain_text.parse(data, source)
    tokens = _MARKDOWN.parse(decode_text(data, source))
    if tokens and max(t.level for t in tokens) >= _MARKDOWN.options["maxNesting"] - 1:
        return plain_text.parse(data, source)
    content = html.extract(_MARKDOWN.renderer.render(tokens, _MARKDOWN.options, {}))
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
