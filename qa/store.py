"""What an index is: the loaded index, a build's report and the problems loading one meets.

The data both roads share. The index road (``qa/indexing/``) makes an :class:`Index` and
writes it to disk (``qa.indexing.persist``, where the layout of a build folder is described);
the asking road reads one and never imports the road that built it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from qa.lexical import LexicalIndex
from qa.sentence_vectors import SentenceVectors
from qa.text import counted
from qa.types import Chunk, Document, DocumentRow, row_ranges

#: Called with ``(chunks_embedded, chunks_to_embed)`` as a build embeds.
ProgressCallback = Callable[[int, int], None]

#: The chunk table's entry for a masked row: a chunk an update in place took out (its document
#: removed or changed). The row keeps its number, so the FAISS and BM25 ids of the rows after it
#: stay theirs; no search returns it (``Index.live_rows``), and compaction drops it.
MASKED = Chunk(chunk_id="", doc_id="", index=-1, start=0, end=0, text="")


def is_masked(chunk: Chunk) -> bool:
    """Whether ``chunk`` is a masked row's entry (no document has an empty id)."""
    return chunk.doc_id == MASKED.doc_id


class IndexProblem(RuntimeError):
    """Base class of index problems; the message says what to do."""


class IndexMissingError(IndexProblem):
    pass


class IndexMismatchError(IndexProblem):
    pass


class TailedIndex:
    """A FAISS index (``base``, rows ``0 .. base.ntotal - 1``) and the exact tail of rows an
    update in place added after them (``tail``, exact, in float16 beside a float16 exact index
    and in float32 otherwise: rows ``base.ntotal`` on).

    ``qa.retrieval.dense_search`` searches both and keeps the best; the rest of the product
    reads it through the few FAISS members it uses (``ntotal``, ``d``, ``reconstruct``,
    ``reconstruct_n``). Never changed once made: an update makes a new one.
    """

    def __init__(self, base: faiss.Index, tail: faiss.Index) -> None:
        if base.d != tail.d:
            raise ValueError(f"a {tail.d}-d tail for a {base.d}-d index")
        self.base = base
        self.tail = tail

    @property
    def ntotal(self) -> int:
        return int(self.base.ntotal + self.tail.ntotal)

    @property
    def d(self) -> int:
        return int(self.base.d)

    def reconstruct(self, row: int) -> np.ndarray:
        row = int(row)
        part, row = (
            (self.base, row) if row < self.base.ntotal else (self.tail, row - self.base.ntotal)
        )
        return np.asarray(part.reconstruct(row))

    def reconstruct_batch(self, rows: np.ndarray) -> np.ndarray:
        return np.stack([self.reconstruct(row) for row in rows]).reshape(len(rows), self.d)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """FAISS's ``search`` over both parts, without parameters: per query, the ``k`` best
        ``(cosines, rows)``, ties in row order (``qa.retrieval.dense_search`` is the product's
        search, with a selector and re-ranking depth)."""
        nb = int(self.base.ntotal)
        scores, rows = self.base.search(queries, k)
        if self.tail.ntotal:
            tail_scores, tail_rows = self.tail.search(queries, k)
            scores = np.concatenate([scores, tail_scores], axis=1)
            rows = np.concatenate([rows, np.where(tail_rows >= 0, tail_rows + nb, -1)], axis=1)
        # A missing hit (row -1) has FAISS's lowest score, so it sorts after every real one.
        order = np.lexsort((rows, -scores), axis=1)[:, :k]
        return np.take_along_axis(scores, order, 1), np.take_along_axis(rows, order, 1)

    def reconstruct_n(self, start: int, count: int) -> np.ndarray:
        rows = range(start, start + count)
        nb = int(self.base.ntotal)
        parts = []
        if rows.start < nb:
            end = min(rows.stop, nb)
            parts.append(self.base.reconstruct_n(rows.start, end - rows.start))
        if rows.stop > nb:
            first = max(rows.start, nb) - nb
            parts.append(self.tail.reconstruct_n(first, rows.stop - nb - first))
        return np.concatenate(parts) if parts else np.zeros((0, self.d), np.float32)


@dataclass
class Index:
    """A loaded index: everything retrieval and reading need, in memory."""

    manifest: dict[str, Any]
    documents: dict[str, Document]
    chunks: list[Chunk]
    #: The FAISS index, or it and the exact tail of rows updates in place added (``TailedIndex``).
    dense: faiss.Index | TailedIndex
    lexical: LexicalIndex
    path: Path
    sentences: SentenceVectors
    #: Whether ``dense`` is memory-mapped from ``path``'s FAISS file (``qa.indexing.persist``):
    #: its storage is then read-only, and a copy to add to is read from the file.
    dense_mapped: bool = False
    #: Tables derived from ``chunks`` that the build already has, by the name of the property
    #: they stand for (``document_rows``, ``live``, ``chunk_documents``): an update in place
    #: carries them over from the index before, changed where it changed the chunk table,
    #: instead of each being remade by a pass over every row (a second or more at 10^6 chunks
    #: between them). Where one is missing, its property makes it from the chunk table.
    derived: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @cached_property
    def document_rows(self) -> dict[str, range]:
        """Per document id, its rows of the chunk table (one run of consecutive rows: a build
        writes a document's chunks together, and an update in place appends them so)."""
        if "document_rows" in self.derived:
            return self.derived["document_rows"]
        ranges = row_ranges(self.chunks)
        if ranges is None:
            raise IndexMismatchError(
                "a document's chunks are not consecutive rows: rebuild the index with "
                "`qa index --rebuild`"
            )
        return ranges

    @cached_property
    def live(self) -> np.ndarray:
        """Per chunk row, whether it is live (not ``MASKED``)."""
        if "live" in self.derived:
            return self.derived["live"]
        return np.fromiter((not is_masked(c) for c in self.chunks), bool, len(self.chunks))

    @cached_property
    def chunk_documents(self) -> np.ndarray:
        """Per chunk row, the position of its document in ``documents``, -1 for a masked row
        (computed once per index: a build makes a new one)."""
        if "chunk_documents" in self.derived:
            return self.derived["chunk_documents"]
        position = {doc_id: n for n, doc_id in enumerate(self.documents)}
        return np.fromiter(
            (position.get(c.doc_id, -1) for c in self.chunks), np.int64, len(self.chunks)
        )

    @property
    def live_rows(self) -> np.ndarray | None:
        """Per chunk row, whether it is live (not ``MASKED``); None when every row is."""
        live = self.live
        return None if live.all() else live

    @property
    def masked(self) -> int:
        """How many rows of the chunk table are masked."""
        return len(self.live) - int(np.count_nonzero(self.live))

    def vectors(self) -> np.ndarray:
        """The chunk vectors, row i for chunk i (reconstructed from FAISS)."""
        if self.dense.ntotal == 0:
            return np.zeros((0, self.dense.d), dtype=np.float32)
        return self.dense.reconstruct_n(0, self.dense.ntotal)

    def catalog(self) -> list[DocumentRow]:
        """Every document of the index with its size and chunk count, by title (then id)."""
        counts = Counter(chunk.doc_id for chunk in self.chunks)  # masked rows count for none
        rows = [
            DocumentRow(d.title, d.path, d.doc_id, len(d.text), counts[d.doc_id])
            for d in self.documents.values()
        ]
        return sorted(rows, key=DocumentRow.order)


@dataclass
class BuildReport:
    """What a build did, for the CLI, the web page and benchmarks."""

    documents: int
    chunks: int
    added: list[str]
    changed: list[str]
    removed: list[str]
    embedded_chunks: int
    seconds: float
    path: Path
    rebuilt: bool
    index: Index | None = None
    #: The new chunks were added to the previous index (rows appended, removed ones masked)
    #: instead of its FAISS index and tables being made anew.
    in_place: bool = False
    #: Corpus files that could not be read, by path, with the reason (nothing of them is
    #: indexed; the rest of the corpus is).
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def unchanged(self) -> bool:
        return not (self.added or self.changed or self.removed) and not self.rebuilt

    def describe(self) -> str:
        """One sentence on what the build did (the CLI, the web page and ``qa serve`` say it)."""
        if self.unchanged:
            said = (
                f"The index is up to date: {counted(self.documents, 'document')}, "
                f"{counted(self.chunks, 'chunk')}."
            )
        else:
            verb = "rebuilt" if self.rebuilt else "updated"
            said = (
                f"Index {verb} in {self.seconds:.1f} s: {counted(self.documents, 'document')}, "
                f"{counted(self.chunks, 'chunk')} ({len(self.added)} added, "
                f"{len(self.changed)} changed, {len(self.removed)} removed; "
                f"{counted(self.embedded_chunks, 'chunk')} embedded)."
            )
        return said + self._describe_skipped()

    def _describe_skipped(self, shown: int = 3) -> str:
        """The files skipped, as " 2 files skipped: a.html (why); b.pdf (why).", or nothing."""
        if not self.skipped:
            return ""
        items = [f"{path} ({why})" for path, why in sorted(self.skipped.items())[:shown]]
        more = len(self.skipped) - shown
        if more > 0:
            items.append(f"and {more:,} more (see the log)")
        return f" {counted(len(self.skipped), 'file')} skipped: " + "; ".join(items) + "."

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (``qa index --json``), without the index itself."""
        return {
            "documents": self.documents,
            "chunks": self.chunks,
            "added": self.added,
            "changed": self.changed,
            "removed": self.removed,
            "embedded_chunks": self.embedded_chunks,
            "rebuilt": self.rebuilt,
            "in_place": self.in_place,
            "skipped": dict(self.skipped),
            "seconds": round(self.seconds, 3),
            "path": str(self.path),
        }
