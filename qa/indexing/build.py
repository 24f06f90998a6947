"""The index road, stage by stage: plan, chunk, embed, dense, lexical, sentences, persist."""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import TYPE_CHECKING

from qa.indexing.dense import faiss_kind, make_dense_index
from qa.indexing.embed import embed_chunks, sentence_table
from qa.indexing.persist import make_manifest, publish
from qa.indexing.plan import compare, plan_build
from qa.lexical import LexicalIndex
from qa.settings import Settings
from qa.store import BuildReport, Index, ProgressCallback
from qa.timing import StageClock
from qa.types import Document, FileSignature

if TYPE_CHECKING:
    from qa.protocols import Encoder


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
) -> BuildReport:
    """Build or update the index for ``documents`` and swap it in atomically.

    Unless ``rebuild`` is set, chunks, vectors, sentence vectors and BM25 tokens of documents
    whose content hash is unchanged are reused from the live index (when that index was built
    with the same model and chunking), so only added and changed documents are tokenised and
    embedded.

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

    Returns:
        What was done, with the new index loaded (``BuildReport.index``).
    """
    started = time.perf_counter()
    clock = StageClock(timings)
    documents = sorted(documents, key=lambda d: d.doc_id)
    ids = [d.doc_id for d in documents]
    if len(set(ids)) != len(ids):
        raise ValueError("duplicate document ids in corpus")

    if rebuild:
        plan = compare(documents, None)
    else:
        plan = plan_build(settings, documents, embedder.name, previous)
    clock.lap("previous")

    # Imported here: langchain is slow to import and only building needs it, not asking.
    from qa.indexing.chunking import Chunker, token_length_function

    # Counting tokens switches truncation and padding off in the tokenizer's shared state,
    # which questions embedded meanwhile (on other threads) rely on: count on a private copy.
    chunker = Chunker(
        settings.chunk_size,
        settings.chunk_overlap,
        token_length_function(copy.deepcopy(embedder.tokenizer)),
    )
    fresh_docs = plan.fresh(documents)
    fresh_chunks = chunker.split_all(fresh_docs)
    clock.lap("chunking")
    fresh_vectors, fresh_sentences = embed_chunks(
        fresh_docs, fresh_chunks, embedder, progress, show_progress
    )
    clock.lap("embedding")

    dim = embedder.dimension
    rows = plan.combine(documents, fresh_chunks, fresh_vectors, fresh_sentences, dim)
    kind = faiss_kind(settings, len(rows.chunks))
    manifest = make_manifest(
        settings,
        embedding_model=embedder.name,
        dimension=dim,
        faiss_index=kind,
        documents=plan.hashes,
        files=files,
        chunks=len(rows.chunks),
    )
    dense = make_dense_index(rows.vectors, kind)
    clock.lap("faiss")
    previous_lexical = plan.previous.lexical if plan.previous is not None else None
    lexical = LexicalIndex.build(
        [c.text for c in rows.chunks], previous_lexical, rows.previous_rows
    )
    clock.lap("bm25")
    sentences = sentence_table(documents, rows.sentence_parts, dim)
    clock.lap("sentences")
    index = Index(
        manifest=manifest,
        documents={d.doc_id: d for d in documents},
        chunks=rows.chunks,
        dense=dense,
        lexical=lexical,
        path=Path(),  # set once written
        sentences=sentences,
    )
    index.path = publish(settings.index_dir, index)
    clock.lap("write")
    return BuildReport(
        documents=len(documents),
        chunks=len(rows.chunks),
        added=plan.added,
        changed=plan.changed,
        removed=plan.removed,
        embedded_chunks=len(fresh_chunks),
        seconds=time.perf_counter() - started,
        path=index.path,
        rebuilt=plan.previous is None,
        index=index,
    )
