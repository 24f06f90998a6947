"""PDF articles (``.pdf``), read with pypdf.

Each page's extracted text is split into paragraphs like plain text; a page break always ends a
paragraph. The title, author and date come from the document information when it has them.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import PurePosixPath

from pypdf import DocumentInformation, PdfReader

from qa.ingest.base import Extracted, IngestError
from qa.ingest.clean import (
    first_nonempty,
    is_short,
    join_paragraphs,
    plain_paragraphs,
    prettify_stem,
)


def parse(data: bytes, source: str) -> list[Extracted]:
    """Load a PDF file.

    Args:
        data: The file's bytes.
        source: Its path relative to the corpus root.

    Returns:
        One article.

    Raises:
        IngestError: If the PDF cannot be parsed or is encrypted with a password.
    """
    # pypdf raises many exception types on damaged files (PdfReadError, ValueError, KeyError,
    # TypeError...); any of them means this one file is unreadable, never that the build stops.
    with _quiet_pypdf():
        try:
            reader = PdfReader(io.BytesIO(data))
            if reader.is_encrypted and not reader.decrypt(""):
                raise IngestError(source, "encrypted PDF (password needed)")
            paragraphs = [p for page in reader.pages for p in plain_paragraphs(page.extract_text())]
            info = reader.metadata
        except IngestError:
            raise
        except Exception as exc:
            raise IngestError(source, f"broken PDF ({type(exc).__name__}: {exc})") from exc
    first = paragraphs[0] if paragraphs else ""
    metadata = {
        "author": first_nonempty(str(info.author or "")) if info else "",
        "date": _creation_date(info),
    }
    title = first_nonempty(
        str(info.title or "") if info else "",
        first if is_short(first) else "",
        prettify_stem(PurePosixPath(source).stem),
    )
    return [
        Extracted(
            title=title,
            text=join_paragraphs(paragraphs),
            metadata={key: value for key, value in metadata.items() if value},
        )
    ]


@contextmanager
def _quiet_pypdf() -> Iterator[None]:
    """Silence pypdf's warnings while one file is read.

    pypdf logs a warning for every bit of damage it works around ("EOF marker not found"...).
    A file that loads needs no warning, and one that does not gets exactly one, from
    ``load_corpus``; pypdf's lines would only repeat it.
    """
    logger = logging.getLogger("pypdf")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _creation_date(info: DocumentInformation | None) -> str:
    """The creation date in ISO 8601, or ``""`` when absent or malformed."""
    # A malformed date string is common in the wild and not worth losing the text over.
    try:
        created = info.creation_date if info else None
    except ValueError:
        return ""
    return created.isoformat() if created else ""
