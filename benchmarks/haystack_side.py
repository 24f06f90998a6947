"""The same job done with Haystack (haystack-ai, in-memory store), for side-by-side figures.

Haystack gets exactly our chunk texts, so both systems index and rank the same units: an
``InMemoryDocumentStore`` filled by ``SentenceTransformersDocumentEmbedder`` with the same
packaged all-MiniLM-L6-v2 folder (offline, normalised vectors, dot product = cosine), an
``InMemoryBM25Retriever`` and an ``InMemoryEmbeddingRetriever`` each returning as many
candidates as ours (``Settings.candidates``), joined by ``DocumentJoiner`` in
``reciprocal_rank_fusion`` mode down to ``top_k``. Queries go through a real ``Pipeline``; the
components are also timed one by one to compare stage by stage.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any

from qa.types import Chunk


class HaystackHybrid:
    """Haystack's hybrid retrieval over given chunks.

    Args:
        model_dir: The sentence-transformers model folder (the packaged default).
        candidates: Hits each retriever contributes before fusion.
        top_k: Documents the joiner keeps.
        batch_size: Embedding batch size for indexing.
    """

    def __init__(self, model_dir: str, candidates: int, top_k: int, batch_size: int = 32) -> None:
        from haystack import Pipeline
        from haystack.components.joiners import DocumentJoiner
        from haystack.components.retrievers.in_memory import (
            InMemoryBM25Retriever,
            InMemoryEmbeddingRetriever,
        )
        from haystack.document_stores.in_memory import InMemoryDocumentStore
        from haystack_integrations.components.embedders.sentence_transformers import (
            SentenceTransformersDocumentEmbedder,
            SentenceTransformersTextEmbedder,
        )

        common = {"model": model_dir, "local_files_only": True, "normalize_embeddings": True}
        # A private store: by default in-memory stores of one name share their documents.
        self.store = InMemoryDocumentStore(index=f"bench-{uuid.uuid4().hex}", shared=False)
        self.doc_embedder = SentenceTransformersDocumentEmbedder(
            **common, batch_size=batch_size, progress_bar=False
        )
        self.text_embedder = SentenceTransformersTextEmbedder(**common, progress_bar=False)
        self.dense = InMemoryEmbeddingRetriever(self.store, top_k=candidates)
        self.bm25 = InMemoryBM25Retriever(self.store, top_k=candidates)
        self.joiner = DocumentJoiner(join_mode="reciprocal_rank_fusion", top_k=top_k)
        self.pipeline = Pipeline()
        self.pipeline.add_component("text_embedder", self.text_embedder)
        self.pipeline.add_component("embedding_retriever", self.dense)
        self.pipeline.add_component("bm25_retriever", self.bm25)
        self.pipeline.add_component("joiner", self.joiner)
        self.pipeline.connect("text_embedder.embedding", "embedding_retriever.query_embedding")
        self.pipeline.connect("embedding_retriever", "joiner")
        self.pipeline.connect("bm25_retriever", "joiner")

    def warm_up(self) -> None:
        """Load the models (kept out of indexing and query times, as ours is)."""
        self.doc_embedder.warm_up()
        self.pipeline.warm_up()

    def index(self, chunks: Sequence[Chunk]) -> dict[str, float]:
        """Embed and store ``chunks``; return seconds for each part and in all."""
        from haystack import Document

        documents = [
            Document(id=c.chunk_id, content=c.text, meta={"doc_id": c.doc_id}) for c in chunks
        ]
        started = time.perf_counter()
        embedded = self.doc_embedder.run(documents=documents)["documents"]
        middle = time.perf_counter()
        self.store.write_documents(embedded)
        done = time.perf_counter()
        return {"embed_s": middle - started, "write_s": done - middle, "total_s": done - started}

    def search(self, query: str) -> list[Any]:
        """The joined top documents for ``query``, through the pipeline."""
        result = self.pipeline.run(
            {"text_embedder": {"text": query}, "bm25_retriever": {"query": query}}
        )
        return result["joiner"]["documents"]

    def search_by_stage(self, query: str, timings: dict[str, float]) -> list[Any]:
        """The same as ``search`` with each component called and timed on its own."""
        started = time.perf_counter()
        embedding = self.text_embedder.run(text=query)["embedding"]
        t1 = time.perf_counter()
        dense = self.dense.run(query_embedding=embedding)["documents"]
        t2 = time.perf_counter()
        lexical = self.bm25.run(query=query)["documents"]
        t3 = time.perf_counter()
        joined = self.joiner.run(documents=[dense, lexical])["documents"]
        t4 = time.perf_counter()
        for stage, seconds in (
            ("embed", t1 - started),
            ("dense", t2 - t1),
            ("lexical", t3 - t2),
            ("fusion", t4 - t3),
        ):
            timings[stage] = timings.get(stage, 0.0) + seconds
        return joined


def doc_ids(documents: Sequence[Any]) -> list[str]:
    """The source document ids of Haystack's ranked documents."""
    return [d.meta["doc_id"] for d in documents]
