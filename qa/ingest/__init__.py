"""Ingestion: turn the files of a corpus folder into cleaned ``Document``s.

One module per format (``text``, ``markdown``, ``html``, ``jsonl``, ``pdf``) turns a file's bytes
into ``Extracted`` articles, with the cleaning rules shared in ``clean``; this module walks the
corpus, dispatches on the file suffix and gives each article its stable id and content hash.

A bad file never stops a build: ``load_file`` raises ``IngestError`` for it and ``load_corpus``
logs one warning naming the file and the reason, then goes on.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

from qa.ingest import html, jsonl, markdown, pdf, text
from qa.ingest.base import Extracted, IngestError
from qa.types import Document

__all__ = ["SUPPORTED_SUFFIXES", "IngestError", "load_corpus", "load_file"]

logger = logging.getLogger("qa.ingest")

# Suffix -> (metadata["format"], loader).
_LOADERS: dict[str, tuple[str, Callable[[bytes, str], list[Extracted]]]] = {
    ".txt": ("txt", text.parse),
    ".md": ("md", markdown.parse),
    ".html": ("html", html.parse),
    ".htm": ("html", html.parse),
    ".json": ("json", jsonl.parse),
    ".jsonl": ("jsonl", jsonl.parse),
    ".pdf": ("pdf", pdf.parse),
}

#: File suffixes the corpus may hold (lower case, with the dot); others are skipped.
SUPPORTED_SUFFIXES: tuple[str, ...] = tuple(sorted(_LOADERS))


def load_file(path: Path, root: Path) -> list[Document]:
    """Load the documents of one corpus file.

    Args:
        path: The file.
        root: The corpus root; ids and paths are relative to it.

    Returns:
        One document, or one per record for a JSON list or JSON Lines file.

    Raises:
        IngestError: If the file's type is not supported or it cannot be read, decoded or
            parsed, or nothing is left of it after cleaning.
        ValueError: If ``path`` is not inside ``root``.
    """
    source = path.relative_to(root).as_posix()
    suffix = path.suffix.lower()
    if suffix not in _LOADERS:
        raise IngestError(source, f"unsupported file type {suffix or '(no extension)'!r}")
    fmt, loader = _LOADERS[suffix]
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise IngestError(source, f"unreadable ({exc.strerror or exc})") from exc
    articles = [a for a in loader(data, source) if a.text]
    if not articles:
        raise IngestError(source, "no text left after cleaning")
    file_hash = hashlib.sha256(data).hexdigest()
    return [
        Document(
            doc_id=source if a.record is None else f"{source}#{a.record}",
            title=a.title,
            path=source,
            text=a.text,
            content_hash=a.record_hash or file_hash,
            metadata={"format": fmt, **a.metadata},
        )
        for a in articles
    ]


def load_corpus(corpus_dir: Path) -> list[Document]:
    """Load every document under a corpus folder.

    Hidden files and folders (names starting with ".") are ignored; every other file is loaded,
    and a file that cannot be is skipped with one warning on the ``qa.ingest`` logger.

    Args:
        corpus_dir: The corpus root.

    Returns:
        The documents, sorted by ``doc_id``.

    Raises:
        NotADirectoryError: If ``corpus_dir`` is not a folder.
    """
    root = Path(corpus_dir)
    if not root.is_dir():
        raise NotADirectoryError(f"corpus folder not found: {root}")
    documents: list[Document] = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        for name in files:
            if name.startswith("."):
                continue
            try:
                documents.extend(load_file(Path(folder) / name, root))
            except IngestError as exc:
                logger.warning("skipped %s: %s", exc.path, exc.reason)
    return sorted(documents, key=lambda d: d.doc_id)
