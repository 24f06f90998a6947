"""The plan stage: what changed since the live index, and what of it a build can reuse.

Documents are compared by content hash with those the live index recorded: added, changed,
removed, and reused (unchanged, with their chunks, vectors, sentence vectors and BM25 tokens
taken from the live index as they are). Corpus files are compared one step earlier, by size
and mtime (:func:`known_files`, for ``qa.ingest.scan_corpus``).
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from itertools import compress
from operator import attrgetter, ne
from typing import TYPE_CHECKING, Any

import numpy as np

from qa.indexing.embed import DocumentSentences, sentence_table
from qa.indexing.persist import KEYED_BY_CHUNK_ROWS, current_path, load_index
from qa.sentence_vectors import ChunkOwners, SentenceVectors, StackedRows, first_rows
from qa.settings import Settings
from qa.store import MASKED, Index, IndexMismatchError, IndexMissingError, is_masked
from qa.types import Chunk, Document, document_id, row_ranges, rows_by_document

if TYPE_CHECKING:
    from qa.ingest import KnownFiles

_content_hash = attrgetter("content_hash")

log = logging.getLogger(__name__)


@dataclass
class Plan:
    """What a build starts from.

    Attributes:
        previous: The live index whose parts are reused, or None (a build from scratch).
        hashes: Content hash per document id of the corpus to index.
        added: Ids of documents the previous index does not have, sorted.
        changed: Ids of documents whose content changed, sorted.
        removed: Ids of documents no longer in the corpus, sorted.
        reused: Per unchanged document, its rows in the previous index's chunk table.
        documents: The corpus to index, sorted by id.
        ids: Their ids, in that order.
        touched: Ids of the only documents that differ from the previous index's, where
            they were given (``plan_build``) and the plan was made with them; else None.
    """

    previous: Index | None
    hashes: dict[str, str]
    added: list[str]
    changed: list[str]
    removed: list[str]
    reused: ReusedRows
    documents: list[Document]
    ids: list[str]
    touched: Collection[str] | None = None

    def fresh(self, documents: list[Document]) -> list[Document]:
        """The documents to chunk and embed: those not reused."""
        if documents is self.documents and self.previous is not None:
            return [documents[self.position(d)] for d in sorted((*self.added, *self.changed))]
        return [d for d in documents if d.doc_id not in self.reused]

    def position(self, doc_id: str) -> int:
        """The position of a document of the corpus in ``documents``."""
        return bisect.bisect_left(self.ids, doc_id)

    def combine(
        self,
        documents: list[Document],
        fresh_chunks: list[Chunk],
        fresh_vectors: np.ndarray,
        dim: int,
    ) -> Rows:
        """The new index's rows made anew (a full build, or a compaction): every document's
        chunks in the order of ``documents``, reused ones from the previous index.

        Args:
            documents: The whole corpus, sorted by id (the order of the new chunk table).
            fresh_chunks: Chunks of :meth:`fresh`'s documents, grouped by document.
            fresh_vectors: Their vectors, row i for chunk i.
            dim: The vector size.
        """
        previous = self.previous
        fresh_by_doc = rows_by_document(fresh_chunks)
        old_vectors = previous.vectors() if previous is not None and self.reused else None
        chunks: list[Chunk] = []
        parts: list[np.ndarray] = []
        previous_rows: list[int] = []
        for doc in documents:
            if doc.doc_id in self.reused:
                assert previous is not None and old_vectors is not None
                kept = self.reused[doc.doc_id]
                chunks.extend(previous.chunks[kept.start : kept.stop])
                parts.append(old_vectors[kept.start : kept.stop])
                previous_rows.extend(kept)
            else:
                rows = fresh_by_doc.get(doc.doc_id, [])
                chunks.extend(fresh_chunks[r] for r in rows)
                parts.append(fresh_vectors[rows])
                previous_rows.extend([-1] * len(rows))
        matrix = np.concatenate(parts) if parts else np.zeros((0, dim), dtype=np.float32)
        return Rows(chunks, previous_rows, matrix)

    def grow(self, fresh_chunks: list[Chunk]) -> Rows:
        """The new index's rows for an update in place: the previous chunk table with the rows
        of removed and changed documents ``MASKED``, and ``fresh_chunks`` appended.

        Every previous row keeps its number, so the previous FAISS index, copied, takes the
        fresh vectors as its next rows (``qa.indexing.dense.grow_dense_index``); ``vectors`` is
        left None. The work is a copy of the table and arrays, and a visit of the rows of the
        documents taken out: no pass over every row in Python.
        """
        previous = self.previous
        assert previous is not None
        chunks = list(previous.chunks)
        live = np.concatenate([previous.live, np.ones(len(fresh_chunks), bool)])
        by_doc = previous.document_rows
        for doc_id in self.gone:
            rows = by_doc.get(doc_id, _NO_ROWS)
            chunks[rows.start : rows.stop] = [MASKED] * len(rows)
            live[rows.start : rows.stop] = False
        previous_rows = np.arange(len(live), dtype=np.int64)
        previous_rows[len(previous.chunks) :] = -1
        previous_rows[~live] = -1
        return Rows(chunks + fresh_chunks, previous_rows, live=live)

    @cached_property
    def gone(self) -> list[str]:
        """Ids of the previous index's documents not reused: removed or changed."""
        return sorted(set(self.removed) | set(self.changed))

    @cached_property
    def moved(self) -> np.ndarray:
        """Per document position of the previous index, that document's position in
        ``documents`` (the new index's) where it is reused, else -1.

        Both are sorted by id, so a reused document moves by the documents added before it
        less those removed before it: counted by binary searches, with no pass over every
        document in Python.
        """
        assert self.previous is not None
        before = list(self.previous.documents)
        removed = np.array([bisect.bisect_left(before, d) for d in self.removed], np.int64)
        added = np.array([bisect.bisect_left(before, d) for d in self.added], np.int64)
        old = np.arange(len(before), dtype=np.int64)
        moved = old + np.searchsorted(added, old, "right") - np.searchsorted(removed, old, "left")
        gone = [bisect.bisect_left(before, d) for d in self.gone]
        moved[np.asarray(gone, np.int64)] = -1
        return moved

    def carried(self, fresh_chunks: list[Chunk], rows: Rows) -> dict[str, Any]:
        """The tables derived from the chunk table (``Index.derived``) for the index an update
        in place makes, from the previous index's: its document rows without the documents
        taken out and with the fresh ones, its row liveness, and, where the previous index had
        made it, each row's document position."""
        previous = self.previous
        assert previous is not None and rows.live is not None
        document_rows = dict(previous.document_rows)
        for doc_id in self.gone:
            document_rows.pop(doc_id, None)
        fresh_rows = row_ranges(fresh_chunks, len(previous.chunks))
        assert fresh_rows is not None, "fresh chunks come grouped by document"
        document_rows.update(fresh_rows)
        derived: dict[str, Any] = {"document_rows": document_rows, "live": rows.live}
        if "chunk_documents" in previous.__dict__:  # made by a filtered search: kept up
            fresh = np.fromiter((self.position(c.doc_id) for c in fresh_chunks), np.int64)
            old = np.append(self.moved, -1)[previous.chunk_documents]
            derived["chunk_documents"] = np.concatenate([old, fresh])
        return derived

    def sentence_parts(
        self,
        documents: list[Document],
        fresh_sentences: DocumentSentences,
        keys: Mapping[str, int],
    ) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """Per document of ``documents`` with a key in ``keys`` (its first row in the new
        chunk table), ``(key, sentence spans, sentence vectors)``: reused documents' from the
        previous index, the others' from ``fresh_sentences``. A document without chunks has
        no key: no passage of it is ever read, so its sentences are left out."""
        previous = self.previous
        parts = []
        for doc in documents:
            key = keys.get(doc.doc_id)
            if key is None:
                continue
            if doc.doc_id in self.reused:
                assert previous is not None
                parts.append((key, *previous.sentences.of_document(doc.doc_id)))
            else:
                parts.append((key, *fresh_sentences[doc.doc_id]))
        return parts

    def grow_sentences(
        self,
        documents: list[Document],
        fresh_sentences: DocumentSentences,
        chunks: list[Chunk],
        dim: int,
    ) -> SentenceVectors:
        """The sentence table for an update in place (the new chunk table ``chunks``: the
        previous one, masked where documents were taken out, then the fresh chunks): the
        previous table's rows as they are, then the fresh documents' rows, keyed by their
        first chunk rows.

        Rows are keyed by chunk rows, which an update in place never renumbers, so the
        previous rows need no change: those of documents taken out name masked chunk rows,
        which name no document. Both files of the previous build are appended to on disk
        rather than written again (``SentenceVectors.save``). A previous table of format 5 or
        before keys by document position instead: its keys are made chunk rows first, and its
        spans written whole once.
        """
        previous = self.previous
        assert previous is not None
        table = previous.sentences
        owners = ChunkOwners(chunks)
        first = len(previous.chunks)
        keys = {d: first + row for d, row in first_rows(chunks[first:]).items()}
        fresh = sentence_table(
            owners,
            [
                (keys[d.doc_id], *fresh_sentences[d.doc_id])
                for d in self.fresh(documents)
                if d.doc_id in keys
            ],
            dim,
        )
        old = table.spans
        if previous.manifest.get("format_version", 0) < KEYED_BY_CHUNK_ROWS:
            old = _keyed_by_chunk_rows(old, previous)
        # Each reused document's rows stay where they were; the fresh ones follow the old rows.
        rows = table.document_blocks()
        for doc_id in self.gone:
            rows.pop(doc_id, None)
        start = len(table)
        rows.update({d: (a + start, b + start) for d, (a, b) in fresh.document_blocks().items()})
        return SentenceVectors(
            owners,
            StackedRows.of(old, fresh.spans),
            StackedRows.of(table.vectors, fresh.vectors),
            base=(previous.path, len(table)),
            blocks=rows,
        )


def _keyed_by_chunk_rows(spans: np.ndarray | StackedRows, previous: Index) -> np.ndarray:
    """A table of format 5 or before's spans keyed by chunk rows instead of document
    positions (-1, a row left behind, stays -1, as does a document without chunks)."""
    rows = previous.document_rows
    firsts = [rows[d].start if d in rows else -1 for d in previous.documents]
    keyed = np.array(spans, np.int64)
    keyed[:, 0] = np.append(np.asarray(firsts, np.int64), -1)[keyed[:, 0]]
    return keyed


@dataclass
class Rows:
    """The new index's chunk table, reused and fresh rows together, in row order.

    Attributes:
        chunks: The chunk table (``MASKED`` where an update in place took a chunk out).
        previous_rows: Per row, its row in the previous index, or -1 (BM25 reuses tokens).
        vectors: Row i: the vector of chunk i (None for an update in place, whose vectors
            are the previous FAISS index's and the fresh ones).
    """

    chunks: list[Chunk]
    previous_rows: Sequence[int] | np.ndarray
    vectors: np.ndarray | None = None
    #: Per row, whether it is live (not ``MASKED``), where the rows' maker knows it.
    live: np.ndarray | None = None

    @cached_property
    def masked(self) -> int:
        """How many rows are ``MASKED`` (counted once: a walk of 10^6 rows takes 0.2 s)."""
        if self.live is not None:
            return len(self.live) - int(np.count_nonzero(self.live))
        return sum(map(is_masked, self.chunks))


def plan_build(
    settings: Settings,
    documents: list[Document],
    embedding_name: str,
    previous: Index | None,
    touched: Collection[str] | None = None,
) -> Plan:
    """Compare ``documents`` with the live index: what is added, changed, removed, reused.

    Args:
        settings: The index location, model and chunking the live index must match to be
            reused.
        documents: The whole corpus, sorted by id.
        embedding_name: The resolved name of the model the build embeds with (the live
            index's must be the same).
        previous: The live index, already loaded; used only if it is still the live one.
        touched: Ids of the only documents that may differ from ``previous``'s (every other
            document of ``documents`` is one of its own, as it is), as an update of listed
            files knows them; ignored where ``previous`` is no longer the live index.
    """
    if previous is None or previous.path != current_path(settings.index_dir).resolve():
        previous = _load_reusable(settings, embedding_name)
        touched = None
    return compare(documents, previous, touched)


def compare(
    documents: list[Document], previous: Index | None, touched: Collection[str] | None = None
) -> Plan:
    """What of ``documents`` (sorted by id) ``previous`` has, as it is; None: nothing.

    With ``touched`` (ids of the only documents that may differ from ``previous``'s; see
    ``plan_build``), only those are compared: the plan is the same, without a pass over
    every document.
    """
    old_hashes: dict[str, str] = previous.manifest["documents"] if previous else {}
    ids = list(map(document_id, documents))
    if previous is not None and touched is not None:
        new_hashes = dict(old_hashes)
        for doc_id in touched:
            n = bisect.bisect_left(ids, doc_id)
            if n < len(ids) and ids[n] == doc_id:
                new_hashes[doc_id] = documents[n].content_hash
            else:
                new_hashes.pop(doc_id, None)
        old, new = _subset(old_hashes, touched), _subset(new_hashes, touched)
    else:
        new_hashes = dict(zip(ids, map(_content_hash, documents), strict=True))
        old, new = old_hashes, new_hashes
    # Whole-map operations and C-level maps rather than Python loops: at 170,000 documents
    # each loop took 0.05 to 0.1 s of an update that should take under one second.
    added = sorted(new.keys() - old.keys())
    removed = sorted(old.keys() - new.keys())
    before = map(old.get, new.keys(), new.values())  # a document unknown before: the same
    changed = sorted(compress(new, map(ne, before, new.values())))
    rows = previous.document_rows if previous is not None else {}
    live = int(np.count_nonzero(previous.live)) if previous is not None else 0
    reused = ReusedRows(old_hashes, rows, frozenset((*removed, *changed)), live)
    if previous is None:
        touched = None
    return Plan(previous, new_hashes, added, changed, removed, reused, documents, ids, touched)


def _subset(hashes: dict[str, str], ids: Collection[str]) -> dict[str, str]:
    return {d: hashes[d] for d in ids if d in hashes}


class ReusedRows(Mapping[str, range]):
    """Per document the previous index had and the corpus still has unchanged, its rows in
    the previous chunk table: a view of the previous index's maps less the documents gone.

    Made in no time whatever the corpus size (a map of its own took a tenth of a second of
    each update at 170,000 documents); looking a document up costs a little more than in a
    map, which only a full build or a compaction does for every document.

    Args:
        hashes: Content hash per document id of the previous index.
        rows: The previous index's rows per document id (``Index.document_rows``).
        gone: Ids of its documents removed or changed.
        live: How many live rows the previous chunk table has.
    """

    def __init__(
        self,
        hashes: Mapping[str, str],
        rows: Mapping[str, range],
        gone: frozenset[str],
        live: int,
    ) -> None:
        self._hashes, self._rows, self._gone, self._live = hashes, rows, gone, live

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._hashes and doc_id not in self._gone

    def __getitem__(self, doc_id: str) -> range:
        if doc_id not in self:
            raise KeyError(doc_id)
        return self._rows.get(doc_id, _NO_ROWS)

    def __iter__(self) -> Iterator[str]:
        return (doc_id for doc_id in self._hashes if doc_id not in self._gone)

    def __len__(self) -> int:
        return len(self._hashes) - len(self._gone & self._hashes.keys())

    def chunks(self) -> int:
        """How many chunk rows the reused documents have: the previous index's live rows
        (every one a row of one of its documents) less those of the documents gone."""
        return self._live - sum(len(self._rows.get(d, _NO_ROWS)) for d in self._gone)


_NO_ROWS = range(0)


def known_files(index: Index) -> KnownFiles:
    """Per corpus file the index recorded: its signature and its documents (for ``scan_corpus``)."""
    # Imported here: the format parsers qa.ingest imports are slow to import, and asking,
    # which imports this module, needs none of them.
    from qa.ingest import KnownFiles

    return KnownFiles(
        list(index.documents.values()), index.manifest.get("files", {}), list(index.documents)
    )


def _load_reusable(settings: Settings, embedding_name: str) -> Index | None:
    try:
        return load_index(settings, embedding_name=embedding_name)
    except IndexMismatchError as exc:
        log.warning("not reusing the existing index: %s", exc)
        return None
    except IndexMissingError:
        return None
    except Exception as exc:  # noqa: BLE001 - a damaged index is rebuilt, not fatal
        log.warning("existing index unreadable (%s); building from scratch", exc)
        return None
