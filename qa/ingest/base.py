"""What every format loader hands back, and the error a bad file raises."""

from __future__ import annotations

from dataclasses import dataclass, field


class IngestError(Exception):
    """A file that cannot be turned into documents.

    Attributes:
        path: The file, relative to the corpus root, with forward slashes.
        reason: Why it was rejected, in a few words a user can act on.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(path, reason)
        self.path = path
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass
class Extracted:
    """One article as a format loader found it, before it becomes a ``Document``.

    Attributes:
        title: Human-readable title, never empty.
        text: Cleaned text, paragraphs separated by one blank line; may be empty, in which case
            the article is dropped.
        metadata: Facts found in the source (site, url, date, author, ...).
        record: 1-based record number inside a multi-record file (JSON list, JSON Lines);
            ``None`` when the file holds a single article.
        record_hash: SHA-256 of the record's canonical JSON for multi-record files, so editing
            one record re-indexes only that record; ``None`` means the raw file bytes are hashed.
    """

    title: str
    text: str
    metadata: dict[str, str] = field(default_factory=dict)
    record: int | None = None
    record_hash: str | None = None
