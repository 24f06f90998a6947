"""The embed stage: chunk vectors and sentence vectors from one encoding pass.

The model is :class:`qa.embedding.Embedder` (any ``qa.protocols.Encoder``); which sentence
pieces each chunk pools, and how a sentence cut by chunk edges is put together, is
``qa.sentence_vectors``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from qa.sentence_vectors import SentenceVectors, assemble, chunk_sentence_spans
from qa.types import Chunk, Document, rows_by_document

if TYPE_CHECKING:
    from qa.protocols import Encoder
    from qa.store import ProgressCallback

#: Per document id: its sentence spans ``(m, 2)`` and their vectors ``(m, dim)``.
DocumentSentences = dict[str, tuple[np.ndarray, np.ndarray]]


#: Chunks embedded per group of whole documents: the pooled token sums of a group's sentence
#: pieces (float32, one row per piece) are held until its sentence vectors are made, so a group
#: bounds that memory (about 10 GB if a build of 10^6 chunks held them all at once), while texts
#: still run longest first within a group, as in one pass.
GROUP_CHUNKS = 32_768


def embed_chunks(
    documents: list[Document],
    chunks: list[Chunk],
    embedder: Encoder,
    progress: ProgressCallback | None,
    show_progress: bool,
    group_chunks: int = GROUP_CHUNKS,
) -> tuple[np.ndarray, DocumentSentences]:
    """Chunk vectors, and per document its sentence spans and vectors, from one encoding pass.

    The documents are embedded in groups of whole documents of about ``group_chunks`` chunks
    (see ``GROUP_CHUNKS``); the result is the same as one group's.
    """
    rows = rows_by_document(chunks)
    vectors = np.zeros((len(chunks), embedder.dimension), dtype=np.float32)
    sentences: DocumentSentences = {}
    with tqdm(
        total=len(chunks), desc="Embedding chunks", unit="chunk", disable=not show_progress
    ) as bar:
        done = 0
        for group in _groups(documents, rows, group_chunks):
            picked = [c for d in group for c in rows.get(d.doc_id, [])]
            mine = [chunks[c] for c in picked]
            requests, plan = chunk_sentence_spans(group, mine)

            def advance(n: int, before: int = done) -> None:
                bar.update(before + n - bar.n)
                if progress is not None:
                    progress(before + n, len(chunks))

            if mine:
                found, pools = embedder.encode_pooled(
                    [c.text for c in mine], requests, progress=advance
                )
                vectors[picked] = found
            else:
                pools = []
            spans, pooled = assemble(group, plan, pools, embedder.encode, embedder.dimension)
            sentences.update(
                (d.doc_id, (s, v)) for d, s, v in zip(group, spans, pooled, strict=True)
            )
            done += len(mine)
    return vectors, sentences


def _groups(
    documents: list[Document], rows: dict[str, list[int]], group_chunks: int
) -> list[list[Document]]:
    """``documents`` in order, cut into runs of whole documents of about ``group_chunks``
    chunks (at least one document each); one empty run where there are no documents."""
    groups: list[list[Document]] = [[]]
    size = 0
    for d in documents:
        n = len(rows.get(d.doc_id, []))
        if groups[-1] and size + n > group_chunks:
            groups.append([])
            size = 0
        groups[-1].append(d)
        size += n
    return groups


def sentence_table(
    doc_ids: Sequence[str | None],
    parts: list[tuple[int, np.ndarray, np.ndarray]],
    dim: int,
) -> SentenceVectors:
    """A sentence table from ``(key, spans, vectors)`` per document, ``doc_ids[key]`` naming
    the document (see ``SentenceVectors``: an index keys by a chunk row of the document)."""
    if not parts or not sum(len(s) for _, s, _ in parts):
        return SentenceVectors(doc_ids, *_empty_sentences(dim))
    counts = np.fromiter((len(s) for _, s, _ in parts), np.int64, len(parts))
    spans = np.empty((int(counts.sum()), 3), np.int64)
    spans[:, 0] = np.repeat(np.fromiter((p for p, _, _ in parts), np.int64, len(parts)), counts)
    spans[:, 1:] = np.concatenate([s for _, s, _ in parts])
    vectors = np.concatenate([v for _, _, v in parts]).astype(np.float16, copy=False)
    return SentenceVectors(doc_ids, spans, vectors)


def _empty_sentences(dim: int) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((0, 3), np.int64), np.zeros((0, dim), np.float16)
