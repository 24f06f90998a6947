"""Marks on answers (right, wrong, no answer) kept as evaluation data.

A user who marks an answer says something an evaluation set can use: each mark is one line of
a JSON Lines file beside the index (``<index_dir>/feedback.jsonl``) in the format of the
evaluation sets (``eval/README.md``), so ``qa eval --set index/feedback.jsonl`` runs it:

- ``right`` with an answer: the answer's span becomes the reference (``answers``, ``doc_id``,
  ``start``/``end``); ``right`` without one (an abstention marked right) makes the question
  unanswerable;
- ``wrong`` with a correction (another answer or passage the user picked): the correction
  becomes the reference and the wrong answer is kept under ``wrong``;
- ``wrong`` without a correction: only ``wrong`` (the span marked wrong), ``answerable`` null,
  which the eval loader skips;
- ``no-answer``: the corpus does not answer it (``answerable`` false), the span under ``wrong``.

A mark changed afterwards (a dislike corrected, a like taken back) is a new line naming the
one it replaces (``replaces``); readers take the latest. ``withdrawn`` lines take a mark back.
Nothing about the user is written: the question, the spans, the verdict, the time to the
second and the index build the answer came from.

Every span is checked against the live index before it is written (``doc.text[start:end]``
must be the span's text), and each line is appended whole (one ``write`` on a file opened for
appending, under a lock shared by the threads of the process and a file lock between
processes) and ``fsync``'d.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa.evaluation.datasets import question_type
from qa.pipeline import MAX_QUESTION_CHARS
from qa.types import Answer, Document, Passage, Result

if TYPE_CHECKING:
    from qa.pipeline import QA
    from qa.settings import Settings
    from qa.store import Index

log = logging.getLogger(__name__)

#: The file beside the index (``<index_dir>/feedback.jsonl``).
FEEDBACK_FILE = "feedback.jsonl"
#: What a user may say of an answer.
VERDICTS = ("right", "wrong", "no-answer")
#: A mark taken back (the chat's like pressed again); it only replaces an earlier line.
WITHDRAWN = "withdrawn"
#: Longest span a mark may hold: an answer, or a passage chosen as the correction (a chunk of
#: 128 word pieces is some 700 characters).
MAX_SPAN_CHARS = 2_000
#: Longest document id accepted from a request.
MAX_DOC_ID_CHARS = 1_000


def feedback_path(settings: Settings) -> Path:
    """The feedback file of the index ``settings`` names."""
    return Path(settings.index_dir) / FEEDBACK_FILE


@dataclass(frozen=True)
class Span:
    """A span of a document that a mark is about: ``document.text[start:end] == text``."""

    text: str
    doc_id: str
    start: int
    end: int

    @classmethod
    def of(cls, item: Answer | Passage) -> Span:
        """The span of an answer, or of a passage (its whole chunk)."""
        if isinstance(item, Passage):
            chunk = item.chunk
            return cls(chunk.text, chunk.doc_id, chunk.start, chunk.end)
        return cls(item.text, item.doc_id, item.start, item.end)


def check_span(span: Span, documents: Mapping[str, Document]) -> None:
    """Refuse a span that is not, character for character, in its document.

    Raises:
        ValueError: Saying what does not match.
    """
    if not isinstance(span.text, str) or not 0 < len(span.text) <= MAX_SPAN_CHARS:
        raise ValueError(f"the answer must be 1 to {MAX_SPAN_CHARS:,} characters of text")
    if not isinstance(span.doc_id, str) or not 0 < len(span.doc_id) <= MAX_DOC_ID_CHARS:
        raise ValueError("the document id must be a non-empty string")
    offsets = (span.start, span.end)
    if not all(isinstance(x, int) and not isinstance(x, bool) for x in offsets):
        raise ValueError("start and end must be whole numbers")
    doc = documents.get(span.doc_id)
    if doc is None:
        raise ValueError(f"there is no document {span.doc_id!r} in the index")
    if not 0 <= span.start < span.end <= len(doc.text):
        raise ValueError(
            f"characters {span.start}-{span.end} are not a span of {span.doc_id!r} "
            f"({len(doc.text):,} characters)"
        )
    if doc.text[span.start : span.end] != span.text:
        raise ValueError(
            f"characters {span.start}-{span.end} of {span.doc_id!r} do not hold the answer "
            "(the document may have changed since)"
        )


def mark_record(
    question: str,
    verdict: str,
    *,
    answer: Span | None = None,
    correction: Span | None = None,
    replaces: str | None = None,
    build: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The line a mark is written as (see the module docstring for what each verdict makes).

    Args:
        question: The question as it was answered.
        verdict: One of ``VERDICTS``, or ``WITHDRAWN`` (with ``replaces``).
        answer: The span marked (None: the reply abstained).
        correction: With ``wrong``: the span the user says is right instead.
        replaces: The id of an earlier mark this one changes.
        build: The index build the answer came from.
        now: The time of the mark (default: now), kept to the second.

    Raises:
        ValueError: If the question, verdict or combination is refused.
    """
    if not isinstance(question, str) or not question.strip():
        raise ValueError("the question is empty")
    if len(question) > MAX_QUESTION_CHARS:
        raise ValueError(f"the question is longer than {MAX_QUESTION_CHARS:,} characters")
    if verdict not in (*VERDICTS, WITHDRAWN):
        raise ValueError(f"the verdict must be one of {', '.join(VERDICTS)}, got {verdict!r}")
    if correction is not None and verdict != "wrong":
        raise ValueError("only an answer marked wrong takes a correction")
    if verdict == WITHDRAWN and replaces is None:
        raise ValueError("a withdrawal names the mark it takes back")
    reference = answer if verdict == "right" else correction
    answerable: bool | None
    if verdict in ("right", "wrong") and reference is not None:
        answerable = True
    elif verdict == "no-answer" or (verdict == "right" and answer is None):
        answerable = False
    else:  # wrong without a correction, or withdrawn: nothing to score against
        answerable = None
    record: dict[str, Any] = {
        "id": f"fb-{uuid.uuid4().hex[:12]}",
        "question": question,
        "answers": [reference.text] if answerable and reference else [],
        "doc_id": reference.doc_id if answerable and reference else None,
        "type": "unanswerable" if answerable is False else question_type(question),
        "answerable": answerable,
    }
    if answerable and reference:
        record.update(start=reference.start, end=reference.end)
    record["verdict"] = verdict
    if verdict != "right" and verdict != WITHDRAWN:
        record["wrong"] = [answer.text] if answer is not None else []
    if replaces is not None:
        record["replaces"] = str(replaces)
    stamp = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    record["marked_at"] = stamp.isoformat().replace("+00:00", "Z")
    record["index_build"] = build
    return record


@dataclass(frozen=True)
class FeedbackCounts:
    """How many marks stand (the latest of each, withdrawn ones left out), by verdict."""

    right: int = 0
    wrong: int = 0
    no_answer: int = 0

    @property
    def total(self) -> int:
        return self.right + self.wrong + self.no_answer


#: One lock per feedback file for the threads of this process (a file lock serves processes).
_LOCKS: dict[Path, threading.Lock] = {}
_LOCKS_LOCK = threading.Lock()


def _lock_for(path: Path) -> threading.Lock:
    key = path.resolve()
    with _LOCKS_LOCK:
        return _LOCKS.setdefault(key, threading.Lock())


class FeedbackLog:
    """The feedback file: append marks, read them back, count them.

    Args:
        path: The JSON Lines file (created with its folder on the first mark).
        index: Returns the live index, whose documents every span is checked against and
            whose build is recorded; None: spans are not checked (the caller did).
    """

    def __init__(self, path: Path, *, index: Callable[[], Index] | None = None) -> None:
        self.path = Path(path)
        self._index = index

    @classmethod
    def of(cls, qa: QA) -> FeedbackLog:
        """The feedback file beside ``qa``'s index, checking spans against its live index."""
        return cls(feedback_path(qa.settings), index=lambda: qa.index)

    def record(
        self,
        question: str,
        verdict: str,
        *,
        answer: Span | None = None,
        correction: Span | None = None,
        replaces: str | None = None,
    ) -> dict[str, Any]:
        """Check a mark, append it, and return the line written (see :func:`mark_record`).

        Raises:
            ValueError: If the mark is refused (a span not in the live index included).
        """
        build = None
        if self._index is not None:
            index = self._index()  # one snapshot for every check
            for span in (answer, correction):
                if span is not None:
                    check_span(span, index.documents)
            build = index.path.name or None
        record = mark_record(
            question, verdict, answer=answer, correction=correction, replaces=replaces, build=build
        )
        self.append(record)
        return record

    def mark(
        self,
        result: Result,
        verdict: str,
        *,
        answer: Answer | int | None = 0,
        correction: Answer | Passage | None = None,
        replaces: str | None = None,
    ) -> dict[str, Any]:
        """Mark an answer of ``result`` (``QA.ask``'s) right, wrong or "no answer".

        Args:
            result: The result the answer belongs to; its question is recorded as it was
                read (``understood_as`` for a follow-up).
            verdict: ``right``, ``wrong`` or ``no-answer``.
            answer: The answer marked, or its position in ``result.answers`` (default the
                best); None, or any answer of an abstention, marks the abstention itself.
            correction: With ``wrong``: the answer or passage that is right instead.
            replaces: The id of an earlier mark this one changes.
        """
        if isinstance(answer, int) and not isinstance(answer, bool):
            shown = result.answers if not result.abstained else []
            answer = shown[answer] if 0 <= answer < len(shown) else None
        return self.record(
            result.understood_as or result.question,
            verdict,
            answer=Span.of(answer) if isinstance(answer, Answer) else None,
            correction=Span.of(correction) if correction is not None else None,
            replaces=replaces,
        )

    def withdraw(self, question: str, replaces: str) -> dict[str, Any]:
        """Take back the mark ``replaces`` (the chat's like or dislike pressed again)."""
        record = mark_record(question, WITHDRAWN, replaces=replaces)
        self.append(record)
        return record

    def append(self, record: Mapping[str, Any]) -> None:
        """Append ``record`` as one line, whole, and ``fsync`` it.

        One ``write`` on a descriptor opened with ``O_APPEND``, under this file's thread lock
        and an exclusive ``flock``, so lines from threads and processes never interleave.
        """
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _lock_for(self.path):
            created = not self.path.exists()
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                view = memoryview(line)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)  # closing releases the file lock
            if created:
                _fsync_folder(self.path.parent)

    def read_bytes(self) -> bytes:
        """The file as it is between two appends (empty if there is no file yet)."""
        if not self.path.exists():
            return b""
        with _lock_for(self.path), self.path.open("rb") as fh:
            fcntl.flock(fh, fcntl.LOCK_SH)  # no line half-written by another process
            return fh.read()

    def lines(self) -> list[dict[str, Any]]:
        """Every mark in the file, in order (none if there is no file yet)."""
        text = self.read_bytes().decode("utf-8")
        lines = []
        for number, line in enumerate(text.splitlines(), 1):
            try:
                record = json.loads(line) if line.strip() else None
            except json.JSONDecodeError:
                record = None
            if isinstance(record, dict) and "id" in record:
                lines.append(record)
            elif line.strip():
                log.warning("%s:%d: not a feedback record, skipped", self.path, number)
        return lines

    def marks(self) -> list[dict[str, Any]]:
        """The marks that stand: those no later line replaces, withdrawals left out."""
        lines = self.lines()
        replaced = {str(r["replaces"]) for r in lines if r.get("replaces") is not None}
        return [r for r in lines if r["id"] not in replaced and r.get("verdict") != WITHDRAWN]

    def counts(self) -> FeedbackCounts:
        """How many standing marks say right, wrong and "no answer"."""
        verdicts = [r.get("verdict") for r in self.marks()]
        return FeedbackCounts(
            right=verdicts.count("right"),
            wrong=verdicts.count("wrong"),
            no_answer=verdicts.count("no-answer"),
        )


def _fsync_folder(folder: Path) -> None:
    """Make a new file's name durable too (its folder's entry)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
