"""Plain dataclasses that flow forward through the pipeline.

Every offset (``start``/``end``) indexes into ``Document.text``, the cleaned text, which is the
one coordinate system of the product: ``doc.text[x.start:x.end] == x.text`` always holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from operator import attrgetter
from typing import Any

#: A corpus file's ``(size in bytes, mtime in ns)``: while both are unchanged, its documents are
#: taken as they were rather than read again.
FileSignature = tuple[int, int]


@dataclass(frozen=True)
class Document:
    """A cleaned article.

    Attributes:
        doc_id: Stable id derived from the path relative to the corpus root.
        title: Human-readable title (never raw markup).
        path: Source path relative to the corpus root, with forward slashes.
        text: Cleaned text; paragraphs separated by a blank line.
        content_hash: SHA-256 of the raw file bytes, used for incremental indexing.
        metadata: Extra facts found in the source (site, url, date, author, format...).
    """

    doc_id: str
    title: str
    path: str
    text: str
    content_hash: str
    metadata: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        # Not ``asdict``: its deep copy was most of the time writing a corpus's documents.
        return {**vars(self), "metadata": dict(self.metadata)}


@dataclass(frozen=True)
class DocumentRow:
    """One document as the index lists it (the web page's documents table).

    Attributes:
        title: The document's title.
        path: Its corpus file.
        doc_id: Its id.
        characters: Length of its cleaned text.
        chunks: Chunks of it in the index.
    """

    title: str
    path: str
    doc_id: str
    characters: int
    chunks: int

    def order(self) -> tuple[str, str]:
        """Where the row stands in the documents table: by title (any case), then id."""
        return self.title.lower(), self.doc_id


@dataclass(frozen=True)
class Chunk:
    """A contiguous slice of a document, the unit of retrieval."""

    chunk_id: str
    doc_id: str
    index: int
    start: int
    end: int
    text: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def rows_by_document(chunks: Sequence[Chunk]) -> dict[str, list[int]]:
    """The rows of ``chunks`` that each document holds, in row order."""
    rows: dict[str, list[int]] = {}
    for row, chunk in enumerate(chunks):
        rows.setdefault(chunk.doc_id, []).append(row)
    return rows


def row_ranges(chunks: Sequence[Chunk], first: int = 0) -> dict[str, range] | None:
    """Per document of ``chunks``, its rows as one range, counted from ``first``; None where
    some document's rows are not consecutive. Rows of no document (a masked row's empty id)
    are left out."""
    ranges: dict[str, range] = {}
    for doc_id, rows in rows_by_document(chunks).items():
        if not doc_id:
            continue
        if rows[-1] - rows[0] + 1 != len(rows):
            return None
        ranges[doc_id] = range(first + rows[0], first + rows[-1] + 1)
    return ranges


#: A document's id (for C-level maps over many documents, and sort keys).
document_id = attrgetter("doc_id")


@dataclass
class Passage:
    """A retrieved chunk with the evidence that ranked it.

    ``score`` is the fused score of the retrieval mode in use; ``dense_score`` (cosine) and
    ``lexical_score`` (BM25) are kept when that retriever saw the chunk.
    """

    chunk: Chunk
    title: str
    path: str
    score: float
    dense_score: float | None = None
    lexical_score: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "doc_id": self.chunk.doc_id,
            "chunk_id": self.chunk.chunk_id,
            "title": self.title,
            "path": self.path,
            "start": self.chunk.start,
            "end": self.chunk.end,
            "text": self.chunk.text,
            "score": self.score,
            "dense_score": self.dense_score,
            "lexical_score": self.lexical_score,
        }


@dataclass(frozen=True)
class Source:
    """One article that gives an answer: where its span lies and how the reader scored it.

    ``doc.text[start:end] == text`` for the document ``doc_id``; ``text`` is that article's own
    wording of the answer (it may differ from the answer's text in case, punctuation or
    spacing). ``context`` is the sentence holding it, located by ``context_start``.
    """

    doc_id: str
    title: str
    path: str
    text: str
    start: int
    end: int
    context: str
    context_start: int
    score: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Answer:
    """An extractive answer: a span of a source document, never generated text.

    ``start``/``end`` locate ``text`` in the document; ``context`` is the supporting sentence or
    passage, located by ``context_start``. ``score`` is comparable across passages and documents.

    ``sources`` are the articles that give this answer (the same words once normalised), one
    span each, distinct documents, best first; the first is the answer's own span (the fields
    above). Left empty, it is filled with that one source.
    """

    text: str
    score: float
    start: int
    end: int
    doc_id: str
    title: str
    path: str
    context: str
    context_start: int
    sources: list[Source] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.sources:
            self.sources = [self.own_source()]

    def own_source(self) -> Source:
        """The answer's own span as a :class:`Source`."""
        return Source(
            doc_id=self.doc_id,
            title=self.title,
            path=self.path,
            text=self.text,
            start=self.start,
            end=self.end,
            context=self.context,
            context_start=self.context_start,
            score=self.score,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Result:
    """What ``QA.ask`` returns: ranked answers, or an abstention with the closest passages."""

    question: str
    answers: list[Answer]
    abstained: bool
    passages: list[Passage]
    mode: str
    #: The question as it was read when the conversation before it changed it (a follow-up
    #: such as "And when?" read as "when did Trump and Kim meet?"); None when it stood alone.
    understood_as: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "understood_as": self.understood_as,
            "abstained": self.abstained,
            "mode": self.mode,
            "answers": [a.to_dict() for a in self.answers],
            "passages": [p.to_dict() for p in self.passages],
        }


@dataclass(frozen=True)
class SpanCandidate:
    """One answer span found by the reader.

    Attributes:
        context_index: Index of the context (in the list given to ``read``) holding the span.
        start: Character offset of the span's first character in that context.
        end: Character offset one past the span's last character.
        text: ``contexts[context_index][start:end]``.
        score: Probability of this span in its window, against every other valid span of the
            window and "no answer" (see :func:`decode_windows`).
        null_score: Probability of "no answer" in the window the span came from.
    """

    context_index: int
    start: int
    end: int
    text: str
    score: float
    null_score: float
