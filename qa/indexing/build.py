"""The index road, stage by stage: plan, chunk, embed, dense, lexical, sentences, persist."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Collection
from operator import gt
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from qa.indexing.dense import (
    TailedIndex,
    faiss_kind,
    flat_precision_of,
    grow_dense_index,
    make_dense_index,
    refine_of,
    tail_bound,
)
from qa.indexing.embed import DocumentSentences, embed_chunks, sentence_table
from qa.indexing.persist import make_manifest, publish
from qa.indexing.plan import compare, plan_build
from qa.lexical import LexicalIndex
from qa.sentence_vectors import ChunkOwners, first_rows
from qa.settings import Settings
from qa.store import BuildReport, Index, ProgressCallback, is_masked
from qa.timing import StageClock
from qa.types import Chunk, Document, FileSignature, document_id

if TYPE_CHECKING:
    from qa.protocols import Encoder

#: Chunks and embeds the documents a build does not reuse: their chunks (grouped by document,
#: in the order given), the chunk vectors (row i: chunk i) and each one's sentence spans and
#: vectors. ``build_index`` does it in process by default; ``qa.scale`` hands in one that ran
#: on a cluster.
EmbedStage = Callable[[list[Document]], tuple[list[Chunk], np.ndarray, DocumentSentences]]


def chunk_and_embed(
    settings: Settings,
    embedder: Encoder,
    documents: list[Document],
    progress: ProgressCallback | None = None,
    show_progress: bool = False,
    clock: StageClock | None = None,
) -> tuple[list[Chunk], np.ndarray, DocumentSentences]:
    """The chunking and embedding stages over ``documents`` (an :data:`EmbedStage`'s result).

    Args:
        settings: The chunking settings.
        embedder: Counts tokens for chunking and encodes the chunks.
        documents: The documents to chunk and embed.
        progress: Called with ``(chunks_embedded, chunks_to_embed)``.
        show_progress: Show a terminal progress bar.
        clock: If given, laps ``chunking`` once the chunks are made.
    """
    # Imported here: langchain is slow to import and only building needs it, not asking.
    from qa.indexing.chunking import Chunker, token_length_function

    # The counter counts on a copy of the tokenizer's backend: questions embedded meanwhile (on
    # other threads) rely on the truncation and padding set on the shared one.
    chunker = Chunker(
        settings.chunk_size, settings.chunk_overlap, token_length_function(embedder.tokenizer)
    )
    chunks = chunker.split_all(documents)
    if clock is not None:
        clock.lap("chunking")
    vectors, sentences = embed_chunks(documents, chunks, embedder, progress, show_progress)
    return chunks, vectors, sentences


def build_index(
    settings: Settings,
    documents: list[Document],
    embedder: Encoder,
    *,
    rebuild: bool = False,
    progress: ProgressCallback | None = None,
    show_progress: bool = True,
    previous: Index | None = None,
    files: dict[str, FileSignature] | None = None,
    timings: dict[str, float] | None = None,
    embed: EmbedStage | None = None,
    touched: Collection[str] | None = None,
    touched_files: Collection[str] | None = None,
) -> BuildReport:
    """Build or update the index for ``documents`` and swap it in atomically.

    Unless ``rebuild`` is set, chunks, vectors, sentence vectors and BM25 tokens of documents
    whose content hash is unchanged are reused from the live index (when that index was built
    with the same model and chunking), so only added and changed documents are tokenised and
    embedded.

    Such an update is made in place when the live index's FAISS index is of the kind a full
    build would make: every previous row keeps its number, the rows of removed and changed
    documents are masked (``qa.store.MASKED``: no search returns them), the new chunks are
    appended, their vectors put in an exact tail beside the live FAISS index and their BM25
    term ids and postings beside the live ones (``qa.lexical``), the sentence table grown from
    the stored sentence vectors. An update that would leave ``settings.compact_at`` of the rows
    masked or more compacts instead: the tables and the FAISS index are made anew from the live
    rows, in document order, as a full build orders them. Either way the live ``Index`` is never
    changed: the new one replaces it whole.

    Args:
        settings: Index location, chunking and FAISS settings.
        documents: The whole corpus as it should be indexed.
        embedder: Encodes chunk text.
        rebuild: Ignore the live index and embed everything.
        progress: Called with ``(chunks_embedded, chunks_to_embed)`` as embedding proceeds.
        show_progress: Show a terminal progress bar.
        previous: The live index, already loaded (saves reading it from disk again); it is
            used only if it is still the live one.
        files: Signatures of the corpus files the documents came from (``scan_corpus``),
            recorded so the next update can skip reading unchanged files.
        timings: If given, receives seconds per stage (``previous``, ``chunking``,
            ``embedding``, ``faiss``, ``bm25``, ``sentences``, ``write``).
        embed: Chunks and embeds the documents not reused, instead of ``embedder`` in this
            process (``chunking`` is then counted in ``embedding``).
        touched: Ids of the only documents that may differ from ``previous``'s: every other
            document is one of ``previous``'s own objects (an update of listed files, whose
            other documents come from the live index). Only these are then compared and
            written, without a pass over the whole corpus; ignored unless ``previous`` is
            still the live index.
        touched_files: With ``touched``: the corpus files (relative paths) whose signatures
            alone may differ from those ``previous`` recorded (the files listed), so only
            they are compared when the files table is appended to.

    Returns:
        What was done, with the new index loaded (``BuildReport.index``).
    """
    started = time.perf_counter()
    clock = StageClock(timings)
    ids = list(map(document_id, documents))
    if any(map(gt, ids, itertools.islice(ids, 1, None))):  # not sorted by id already
        documents = sorted(documents, key=document_id)
        ids = list(map(document_id, documents))
    if len(set(ids)) != len(ids):
        raise ValueError("duplicate document ids in corpus")

    if rebuild:
        plan = compare(documents, None)
    else:
        plan = plan_build(settings, documents, embedder.name, previous, touched)
    clock.lap("previous")

    fresh_docs = plan.fresh(documents)
    if embed is not None:
        fresh_chunks, fresh_vectors, fresh_sentences = embed(fresh_docs)
    else:
        fresh_chunks, fresh_vectors, fresh_sentences = chunk_and_embed(
            settings, embedder, fresh_docs, progress, show_progress, clock
        )
    clock.lap("embedding")

    dim = embedder.dimension
    kind = faiss_kind(settings, len(fresh_chunks) + plan.reused.chunks())
    rows = plan.grow(fresh_chunks) if _grows(plan.previous, kind, settings) else None
    if rows is not None and rows.masked < settings.compact_at * len(rows.chunks):
        assert plan.previous is not None
        previous = plan.previous
        mapped = previous.path if previous.dense_mapped else None
        dense = grow_dense_index(previous.dense, fresh_vectors, mapped)
    else:
        rows = plan.combine(documents, fresh_chunks, fresh_vectors, dim)
        assert rows.vectors is not None
        dense = make_dense_index(rows.vectors, kind, settings.ivfpq_refine, settings.flat_precision)
    in_place = rows.vectors is None
    manifest = make_manifest(
        settings,
        embedding_model=embedder.name,
        dimension=dim,
        faiss_index=kind,
        documents=plan.hashes,
        files=files,
        chunks=len(rows.chunks),
        masked=rows.masked,
    )
    clock.lap("faiss")
    base = plan.previous
    if in_place and base is not None and base.lexical.size == len(base.chunks):
        assert rows.live is not None
        # The previous rows as they were or masked, then the fresh ones: BM25 grows in place.
        lexical = base.lexical.grow([c.text for c in fresh_chunks], ~rows.live, tail_bound)
    else:
        lexical = LexicalIndex.build(
            [None if is_masked(c) else c.text for c in rows.chunks],
            base.lexical if base is not None else None,
            rows.previous_rows,
            tail_bound=tail_bound,
        )
    clock.lap("bm25")
    if in_place:
        sentences = plan.grow_sentences(documents, fresh_sentences, rows.chunks, dim)
    else:
        # Sentences are keyed by their document's first chunk row (``SentenceVectors``).
        keys = first_rows(rows.chunks)
        parts = plan.sentence_parts(documents, fresh_sentences, keys)
        sentences = sentence_table(ChunkOwners(rows.chunks), parts, dim)
    clock.lap("sentences")
    index = Index(
        manifest=manifest,
        documents=dict(zip(ids, documents, strict=True)),
        chunks=rows.chunks,
        dense=dense,
        lexical=lexical,
        path=Path(),  # set once written
        sentences=sentences,
        # An exact tail beside the live index keeps that index, mapped from its file if it was
        # (the new build's file is that same file, linked): a later merge reads it again.
        dense_mapped=isinstance(dense, TailedIndex)
        and plan.previous is not None
        and plan.previous.dense_mapped,
        derived=plan.carried(fresh_chunks, rows) if in_place else {},
    )
    index.path = publish(
        settings.index_dir,
        index,
        plan.previous if in_place else None,
        plan.touched,
        touched_files if plan.touched is not None else None,
    )
    clock.lap("write")
    return BuildReport(
        documents=len(documents),
        chunks=len(rows.chunks) - rows.masked,
        added=plan.added,
        changed=plan.changed,
        removed=plan.removed,
        embedded_chunks=len(fresh_chunks),
        seconds=time.perf_counter() - started,
        path=index.path,
        rebuilt=plan.previous is None,
        index=index,
        in_place=in_place,
    )


def _grows(previous: Index | None, kind: str, settings: Settings) -> bool:
    """Whether an update may add to ``previous``'s FAISS index: it is of the ``kind`` a full
    build would now make (IVF-PQ: trained, not the exact index made for too few vectors, and
    re-ranking by the vectors ``settings.ivfpq_refine`` names; exact: holding its vectors in
    ``settings.flat_precision``)."""
    if previous is None or previous.manifest["faiss_index"] != kind:
        return False
    if kind == "flat":
        return flat_precision_of(previous.dense) == settings.flat_precision
    return kind != "ivfpq" or refine_of(previous.dense) == settings.ivfpq_refine
