"""JSON (``.json``) and JSON Lines (``.jsonl``) articles.

A record is an object with a ``text`` string and optional ``title``, ``url``, ``date`` and
``author`` strings; its text is cleaned like a ``.txt`` file (markup included). A ``.json`` file
holds one record or a list of them; a ``.jsonl`` file holds one record per non-blank line.

Records in a list or a JSON Lines file are numbered from 1 in file order (bad records keep their
number, so fixing one does not renumber the rest) and each is hashed on its canonical JSON, so
editing one record re-indexes only that record. Bad records (not an object, no text, invalid
JSON on their line) are skipped with one warning for the file; a file with no good record at all
raises ``IngestError``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import PurePosixPath
from typing import Any

from qa.ingest.base import Extracted, IngestError
from qa.ingest.clean import collapse, decode_text, prettify_stem
from qa.ingest.text import read_text

logger = logging.getLogger("qa.ingest")

_METADATA_FIELDS = ("url", "date", "author")
# Stands in for a JSON Lines line that is not valid JSON, so that it keeps its record number.
_INVALID = object()


def parse(data: bytes, source: str) -> list[Extracted]:
    """Load a ``.json`` or ``.jsonl`` file.

    Args:
        data: The file's bytes.
        source: Its path relative to the corpus root.

    Returns:
        One article per good record.

    Raises:
        IngestError: If the file is binary, is not valid JSON (``.json``), holds neither an
            object nor a list, or has no good record.
    """
    text = decode_text(data, source)
    stem = prettify_stem(PurePosixPath(source).stem)
    if source.lower().endswith(".jsonl"):
        records = _json_lines(text)
    else:
        try:
            loaded = json.loads(text)
        # RecursionError: absurdly deep nesting; ValueError covers JSONDecodeError.
        except (ValueError, RecursionError) as exc:
            raise IngestError(source, f"malformed JSON ({exc})") from exc
        if isinstance(loaded, dict):
            article = _article(loaded, stem)
            if article is None:
                raise IngestError(source, 'the JSON object has no non-empty "text" string')
            return [article]
        if not isinstance(loaded, list):
            raise IngestError(
                source, f"JSON holds a {type(loaded).__name__}, not an object or list"
            )
        records = loaded

    articles: list[Extracted] = []
    bad: list[int] = []
    for number, record in enumerate(records, start=1):
        article = _article(record, f"{stem} #{number}") if record is not _INVALID else None
        if article is None:
            bad.append(number)
            continue
        article.record = number
        article.record_hash = hashlib.sha256(_canonical(record)).hexdigest()
        articles.append(article)
    if not articles:
        raise IngestError(source, f'no record with a non-empty "text" string ({len(bad)} bad)')
    if bad:
        shown = ", ".join(map(str, bad[:10])) + (", ..." if len(bad) > 10 else "")
        logger.warning(
            "%s: skipped %d bad record(s) (invalid JSON, not an object or no text): %s",
            source,
            len(bad),
            shown,
        )
    return articles


def _json_lines(text: str) -> list[Any]:
    records: list[Any] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except (ValueError, RecursionError):
            records.append(_INVALID)
    return records


def _article(record: Any, fallback_title: str) -> Extracted | None:
    """The article of one record, or ``None`` if the record has no usable text."""
    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
        return None
    article = read_text(record["text"], fallback_title)
    if not article.text:
        return None
    title = record.get("title")
    if isinstance(title, str) and collapse(title):
        article.title = collapse(title)
    for key in _METADATA_FIELDS:
        value = record.get(key)
        if isinstance(value, str) and collapse(value):
            article.metadata[key] = collapse(value)
    return article


def _canonical(record: Any) -> bytes:
    text = json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    # surrogatepass: a record may hold lone surrogates (JSON escapes); it still hashes.
    return text.encode("utf-8", "surrogatepass")
