"""The embed stage: chunk vectors and sentence vectors from one encoding pass.

The model is :class:`qa.embedding.Embedder` (any ``qa.protocols.Encoder``); which sentence
pieces each chunk pools, and how a sentence cut by chunk edges is put together, is
``qa.sentence_vectors``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from qa.sentence_vectors import SentenceVectors, assemble, chunk_sentence_spans
from qa.types import Chunk, Document

if TYPE_CHECKING:
    from qa.protocols import Encoder
    from qa.store import ProgressCallback

#: Per document id: its sentence spans ``(m, 2)`` and their vectors ``(m, dim)``.
DocumentSentences = dict[str, tuple[np.ndarray, np.ndarray]]


def embed_chunks(
    documents: list[Document],
    chunks: list[Chunk],
    embedder: Encoder,
    progress: ProgressCallback | None,
    show_progress: bool,
) -> tuple[np.ndarray, DocumentSentences]:
    """Chunk vectors, and per document its sentence spans and vectors, from one encoding pass."""
    requests, plan = chunk_sentence_spans(documents, chunks)
    with tqdm(
        total=len(chunks), desc="Embedding chunks", unit="chunk", disable=not show_progress
    ) as bar:

        def advance(done: int) -> None:
            bar.update(done - bar.n)
            if progress is not None:
                progress(done, len(chunks))

        if chunks:
            vectors, pools = embedder.encode_pooled(
                [c.text for c in chunks], requests, progress=advance
            )
        else:
            vectors, pools = np.zeros((0, embedder.dimension), dtype=np.float32), []
    spans, sentence_vectors = assemble(documents, plan, pools, embedder.encode, embedder.dimension)
    return vectors, {
        d.doc_id: (s, v) for d, s, v in zip(documents, spans, sentence_vectors, strict=True)
    }


def sentence_table(
    documents: list[Document],
    parts: list[tuple[int, np.ndarray, np.ndarray]],
    dim: int,
) -> SentenceVectors:
    """The index's sentence vectors from ``(document position, spans, vectors)`` per document."""
    if not parts or not sum(len(s) for _, s, _ in parts):
        return SentenceVectors([d.doc_id for d in documents], *_empty_sentences(dim))
    counts = np.fromiter((len(s) for _, s, _ in parts), np.int64, len(parts))
    spans = np.empty((int(counts.sum()), 3), np.int64)
    spans[:, 0] = np.repeat(np.fromiter((p for p, _, _ in parts), np.int64, len(parts)), counts)
    spans[:, 1:] = np.concatenate([s for _, s, _ in parts])
    vectors = np.concatenate([v for _, _, v in parts]).astype(np.float16, copy=False)
    return SentenceVectors([d.doc_id for d in documents], spans, vectors)


def _empty_sentences(dim: int) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((0, 3), np.int64), np.zeros((0, dim), np.float16)
