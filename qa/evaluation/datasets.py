"""Evaluation sets: the project's JSON Lines format and SQuAD v1.1/v2.0 files.

The JSON Lines format (``eval/seed.jsonl``; described in ``eval/README.md``) has one question
per line: ``id``, ``question``, ``answers`` (reference spans, verbatim from the cleaned text),
``doc_id`` (the document holding them, null when unanswerable), ``type`` and ``answerable``;
optionally ``start``/``end``, the first reference's offsets in the document's text. Feedback
marked in the web chat (``qa.feedback``) is written in the same format: its records with
``answerable`` null (a mark saying only what was wrong) are skipped, and a record named by a
later record's ``replaces`` gives way to it.

A SQuAD file becomes an open corpus: every distinct paragraph is a ``Document`` whose id is the
gold of retrieval for the paragraph's questions; ``is_impossible`` questions expect abstention.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa.types import Document

QUESTION_TYPES = (
    "who",
    "when",
    "where",
    "how many",
    "what",
    "which",
    "why",
    "yes-no",
    "unanswerable",
)
#: SQuAD questions whose type the wh-word heuristic cannot name.
OTHER_TYPE = "other"

_YES_NO_START = re.compile(
    r"^(did|does|do|is|are|was|were|can|could|has|have|had|will|would|should)\b"
)
# Checked in this order: "how many" before "what" so "what ... how many" counts as a count,
# and "which" before "what" since a question rarely has both.
_WH_PATTERNS = (
    ("how many", re.compile(r"\bhow (many|much)\b")),
    ("who", re.compile(r"\bwho(m|se)?\b")),
    ("when", re.compile(r"\bwhen\b|\bwhat (year|date|day|month|time|century)\b")),
    ("where", re.compile(r"\bwhere\b")),
    ("why", re.compile(r"\bwhy\b")),
    ("which", re.compile(r"\bwhich\b")),
    ("what", re.compile(r"\bwhat\b")),
)


@dataclass(frozen=True)
class EvalQuestion:
    """One evaluation question with its references.

    Attributes:
        id: Unique id within its set.
        question: The question as a user would ask it.
        answers: Acceptable reference spans (empty when unanswerable).
        doc_id: The document (seed) or paragraph (SQuAD) holding the answer; None when
            unanswerable.
        type: One of ``QUESTION_TYPES``, or ``"other"`` (SQuAD questions, feedback whose
            question word matches no type).
        answerable: Whether the corpus answers it.
        start: Offset of the first reference in the document's text, when the set records it
            (feedback does); None otherwise.
        end: One past the first reference's last character, with ``start``.
    """

    id: str
    question: str
    answers: tuple[str, ...]
    doc_id: str | None
    type: str
    answerable: bool
    start: int | None = None
    end: int | None = None


def load_jsonl(path: Path) -> list[EvalQuestion]:
    """Read an evaluation set in the project's JSON Lines format.

    Records with ``answerable`` null are skipped: feedback that says only which answer was
    wrong (``qa.feedback``) has no reference to score against. A record whose id a later
    record names in ``replaces`` is skipped too (a mark changed afterwards).

    Raises:
        ValueError: naming the line, when a record is malformed or inconsistent.
    """
    records: list[tuple[int, dict]] = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{number}: not a valid evaluation record ({exc})") from exc
        if not isinstance(record, dict):
            raise ValueError(f"{path}:{number}: not a valid evaluation record (not an object)")
        records.append((number, record))
    replaced = {str(r["replaces"]) for _, r in records if r.get("replaces") is not None}
    questions = []
    seen: set[str] = set()
    for number, record in records:
        if record.get("answerable", False) is None or str(record.get("id")) in replaced:
            continue
        try:
            question = EvalQuestion(
                id=str(record["id"]),
                question=str(record["question"]),
                answers=tuple(str(a) for a in record["answers"]),
                doc_id=record["doc_id"],
                type=str(record["type"]),
                answerable=bool(record["answerable"]),
                start=record.get("start"),
                end=record.get("end"),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{number}: not a valid evaluation record ({exc})") from exc
        problem = _problem(question, seen)
        if problem:
            raise ValueError(f"{path}:{number}: {problem}")
        seen.add(question.id)
        questions.append(question)
    return questions


def _problem(q: EvalQuestion, seen: set[str]) -> str | None:
    if q.id in seen:
        return f"duplicate id {q.id!r}"
    if q.type not in (*QUESTION_TYPES, OTHER_TYPE):
        return f"type {q.type!r} is not one of {(*QUESTION_TYPES, OTHER_TYPE)}"
    if q.answerable != (q.type != "unanswerable"):
        return "type 'unanswerable' goes with answerable false, and only with it"
    if q.answerable and not (q.answers and q.doc_id):
        return "an answerable question needs answers and a doc_id"
    if not q.answerable and (q.answers or q.doc_id is not None):
        return "an unanswerable question has no answers and a null doc_id"
    return _span_problem(q)


def _span_problem(q: EvalQuestion) -> str | None:
    """What is wrong with a record's optional ``start``/``end``, if anything."""
    if q.start is None and q.end is None:
        return None
    if not q.answerable:
        return "an unanswerable question has no start and end"
    start, end = q.start, q.end
    if not isinstance(start, int) or not isinstance(end, int) or bool in (type(start), type(end)):
        return "start and end go together, as whole numbers"
    if not 0 <= start < end or end - start != len(q.answers[0]):
        return "start and end must span the first answer"
    return None


def question_type(question: str) -> str:
    """Guess a SQuAD question's type from its wording (first matching rule wins)."""
    text = question.strip().lower()
    if _YES_NO_START.match(text):
        return "yes-no"
    for kind, pattern in _WH_PATTERNS:
        if pattern.search(text):
            return kind
    return OTHER_TYPE


def load_squad(path: Path) -> tuple[list[EvalQuestion], list[Document]]:
    """Read a SQuAD v1.1 or v2.0 file as questions over an open corpus of its paragraphs.

    Paragraph ids are ``<article title>#<paragraph number>``; paragraphs with identical text
    become one document, so retrieval's gold is never ambiguous.

    Returns:
        The questions (``is_impossible`` ones unanswerable) and one document per paragraph.
    """
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or "data" not in data:
        raise ValueError(f"{path}: not a SQuAD file (no top-level 'data')")
    questions: list[EvalQuestion] = []
    by_text: dict[str, Document] = {}
    taken: set[str] = set()
    for article in data["data"]:
        title = str(article.get("title", "untitled")).replace("_", " ")
        for number, paragraph in enumerate(article["paragraphs"]):
            context = paragraph["context"]
            if context not in by_text:
                digest = hashlib.sha256(context.encode("utf-8")).hexdigest()
                doc_id = f"{title}#{number}"
                # Several articles may share a title (TyDi QA has one paragraph per "article").
                suffix = 1
                while doc_id in taken:
                    suffix += 1
                    doc_id = f"{title}#{number}~{suffix}"
                taken.add(doc_id)
                by_text[context] = Document(
                    doc_id=doc_id,
                    title=title,
                    path=f"{Path(path).name}#{doc_id}",
                    text=context,
                    content_hash=digest,
                    metadata={"format": "squad"},
                )
            doc_id = by_text[context].doc_id
            for qa in paragraph["qas"]:
                impossible = bool(qa.get("is_impossible", False))
                answers = (
                    () if impossible else tuple(dict.fromkeys(a["text"] for a in qa["answers"]))
                )
                questions.append(
                    EvalQuestion(
                        id=str(qa["id"]),
                        question=qa["question"],
                        answers=answers,
                        doc_id=None if impossible else doc_id,
                        type="unanswerable" if impossible else question_type(qa["question"]),
                        answerable=not impossible,
                    )
                )
    return questions, list(by_text.values())


def sample(
    questions: Sequence[EvalQuestion], limit: int | None, seed: int = 0
) -> list[EvalQuestion]:
    """A deterministic random sample of ``limit`` questions, kept in their original order.

    A random sample rather than the first ``limit`` questions, so a small run still spans the
    set's documents and question types.
    """
    if limit is None or limit >= len(questions):
        return list(questions)
    keep = sorted(random.Random(seed).sample(range(len(questions)), limit))
    return [questions[i] for i in keep]


@dataclass(frozen=True)
class Example:
    """One SQuAD question over its paragraph.

    Attributes:
        question: The question.
        context: The paragraph.
        answer: ``(start, end)`` character span of the first reference answer.
        group: Key of the article the paragraph belongs to (no-answer pairs take a
            neighbouring paragraph of the same group, or a paragraph of another group).
        paragraph: Position of the paragraph in its article.
        answers: Text of every reference answer (a neighbouring paragraph that contains one
            of them is not used as a no-answer pair).
        qid: ``<file name>/<question id>``, to tell later which questions were trained on.
    """

    question: str
    context: str
    answer: tuple[int, int]
    group: str
    paragraph: int = 0
    answers: tuple[str, ...] = ()
    qid: str = ""


def load_examples(
    data_dir: Path, fractions: dict[str, float] | None = None, seed: int = 0
) -> list[Example]:
    """Read every ``*.json`` SQuAD v1.1 file of ``data_dir`` (sorted by name).

    Args:
        data_dir: Folder of SQuAD v1.1 files.
        fractions: Share of the questions to keep per file name (seeded sample); files not
            named keep all their questions. This fits a time budget while keeping every
            question of the files that matter most.
        seed: Seed of that sample.

    Raises:
        FileNotFoundError: If the folder holds no JSON file.
        ValueError: If a fraction names no file of the folder or is outside (0, 1].
    """
    files = sorted(Path(data_dir).glob("*.json"))
    if not files:
        raise FileNotFoundError(f"No SQuAD *.json files in {data_dir}")
    fractions = dict(fractions or {})
    unknown = set(fractions) - {f.name for f in files}
    if unknown:
        raise ValueError(f"--fraction names files not in {data_dir}: {sorted(unknown)}")
    if any(not 0 < v <= 1 for v in fractions.values()):
        raise ValueError(f"fractions must lie in (0, 1]: {fractions}")
    rng = np.random.default_rng(seed)
    examples: list[Example] = []
    for file in files:
        keep = fractions.get(file.name, 1.0)
        articles = json.loads(file.read_text(encoding="utf-8"))["data"]
        for a, article in enumerate(articles):
            for p, paragraph in enumerate(article["paragraphs"]):
                context = paragraph["context"]
                # A file that is one "article" of unrelated posts (reddit) groups by paragraph.
                group = f"{file.name}/{a}" + (f"/{p}" if len(articles) == 1 else "")
                for qa in paragraph["qas"]:
                    if not qa.get("answers") or (keep < 1 and rng.random() >= keep):
                        continue
                    first = qa["answers"][0]
                    start = int(first["answer_start"])
                    examples.append(
                        Example(
                            qa["question"],
                            context,
                            (start, start + len(first["text"])),
                            group,
                            p,
                            tuple(a["text"] for a in qa["answers"]),
                            f"{file.name}/{qa.get('id', '')}",
                        )
                    )
    return examples
