"""The plan stage: what changed since the live index, and what of it a build can reuse.

Documents are compared by content hash with those the live index recorded: added, changed,
removed, and reused (unchanged, with their chunks, vectors, sentence vectors and BM25 tokens
taken from the live index as they are). Corpus files are compared one step earlier, by size
and mtime (:func:`known_files`, for ``qa.ingest.scan_corpus``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from qa.indexing.embed import DocumentSentences, sentence_table
from qa.indexing.persist import current_path, load_index
from qa.sentence_vectors import SentenceVectors, StackedRows
from qa.settings import Settings
from qa.store import MASKED, Index, IndexMismatchError, IndexMissingError, is_masked
from qa.types import Chunk, Document, FileSignature, rows_by_document

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
    """

    previous: Index | None
    hashes: dict[str, str]
    added: list[str]
    changed: list[str]
    removed: list[str]
    reused: dict[str, list[int]]

    def fresh(self, documents: list[Document]) -> list[Document]:
        """The documents to chunk and embed: those not reused."""
        return [d for d in documents if d.doc_id not in self.reused]

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
                rows = self.reused[doc.doc_id]
                chunks.extend(previous.chunks[r] for r in rows)
                parts.append(old_vectors[rows])
                previous_rows.extend(rows)
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
        left None.
        """
        assert self.previous is not None
        kept = [c.doc_id in self.reused for c in self.previous.chunks]
        chunks = [c if keep else MASKED for c, keep in zip(self.previous.chunks, kept, strict=True)]
        previous_rows = [r if keep else -1 for r, keep in enumerate(kept)]
        return Rows(chunks + fresh_chunks, previous_rows + [-1] * len(fresh_chunks))

    def sentence_parts(
        self, documents: list[Document], fresh_sentences: DocumentSentences
    ) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """Per document of ``documents``, ``(position, sentence spans, sentence vectors)``:
        reused documents' from the previous index, the others' from ``fresh_sentences``."""
        previous = self.previous
        parts = []
        for position, doc in enumerate(documents):
            if doc.doc_id in self.reused:
                assert previous is not None
                parts.append((position, *previous.sentences.of_document(doc.doc_id)))
            else:
                parts.append((position, *fresh_sentences[doc.doc_id]))
        return parts

    def grow_sentences(
        self, documents: list[Document], fresh_sentences: DocumentSentences, dim: int
    ) -> SentenceVectors:
        """The sentence table for an update in place: the previous table's rows as they are
        (those of documents not reused marked -1), then the fresh documents' rows.

        Its first rows being the previous table's, the previous build's vectors file is
        appended to on disk rather than written again (``SentenceVectors.save``).
        """
        assert self.previous is not None
        table = self.previous.sentences
        position = {d.doc_id: n for n, d in enumerate(documents)}
        moved = [position[d] if d in self.reused else -1 for d in table.doc_ids]
        old = table.spans.copy()
        old[:, 0] = np.asarray([*moved, -1], np.int64)[old[:, 0]]  # -1 stays -1
        fresh = sentence_table(
            documents,
            [
                (position[d.doc_id], *fresh_sentences[d.doc_id])
                for d in documents
                if d.doc_id not in self.reused
            ],
            dim,
        )
        return SentenceVectors(
            [d.doc_id for d in documents],
            np.concatenate([old, fresh.spans]),
            StackedRows.of(table.vectors, fresh.vectors),
            base=(self.previous.path, len(table)),
        )


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
    previous_rows: list[int]
    vectors: np.ndarray | None = None

    @cached_property
    def masked(self) -> int:
        """How many rows are ``MASKED`` (counted once: a walk of 10^6 rows takes 0.2 s)."""
        return sum(map(is_masked, self.chunks))


def plan_build(
    settings: Settings, documents: list[Document], embedding_name: str, previous: Index | None
) -> Plan:
    """Compare ``documents`` with the live index: what is added, changed, removed, reused.

    Args:
        settings: The index location, model and chunking the live index must match to be
            reused.
        documents: The whole corpus, sorted by id.
        embedding_name: The resolved name of the model the build embeds with (the live
            index's must be the same).
        previous: The live index, already loaded; used only if it is still the live one.
    """
    if previous is None or previous.path != current_path(settings.index_dir).resolve():
        previous = _load_reusable(settings, embedding_name)
    return compare(documents, previous)


def compare(documents: list[Document], previous: Index | None) -> Plan:
    """What of ``documents`` (sorted by id) ``previous`` has, as it is; None: nothing."""
    old_hashes: dict[str, str] = previous.manifest["documents"] if previous else {}
    new_hashes = {d.doc_id: d.content_hash for d in documents}
    added = sorted(set(new_hashes) - set(old_hashes))
    removed = sorted(set(old_hashes) - set(new_hashes))
    changed = sorted(k for k in new_hashes if k in old_hashes and old_hashes[k] != new_hashes[k])

    reused: dict[str, list[int]] = {}
    if previous is not None:
        by_doc = rows_by_document(previous.chunks)
        reused = {
            doc_id: by_doc.get(doc_id, [])
            for doc_id in old_hashes
            if new_hashes.get(doc_id) == old_hashes[doc_id]
        }
    return Plan(previous, new_hashes, added, changed, removed, reused)


def known_files(index: Index) -> dict[str, tuple[FileSignature, list[Document]]]:
    """Per corpus file the index recorded: its signature and its documents (for ``scan_corpus``)."""
    by_path: dict[str, list[Document]] = {}
    for doc in index.documents.values():
        by_path.setdefault(doc.path, []).append(doc)
    return {
        path: ((int(sig[0]), int(sig[1])), by_path[path])
        for path, sig in index.manifest.get("files", {}).items()
        if path in by_path
    }


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
