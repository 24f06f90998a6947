"""The product's Python API: build the index, search it, read documents, ask questions."""

from __future__ import annotations

import threading
from functools import cached_property

from qa.embedding import Embedder
from qa.ingest import load_corpus
from qa.retrieval import Retriever
from qa.settings import RetrievalMode, Settings
from qa.store import BuildReport, Index, ProgressCallback, build_index, load_index
from qa.types import Document, Passage


class QA:
    """Question answering over the corpus and index named by ``settings``.

    Construction is cheap; models and the index load on first use.

    Args:
        settings: Every knob; ``Settings.from_env()`` by default.
    """

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings.from_env()
        self._index: Index | None = None
        self._build_lock = threading.Lock()

    @cached_property
    def embedder(self) -> Embedder:
        return Embedder(self.settings.embedding_model, batch_size=self.settings.batch_size)

    @property
    def index(self) -> Index:
        """The live index, loaded on first use (raises ``IndexMissingError`` if none)."""
        if self._index is None:
            self._index = load_index(self.settings, embedding_name=self.embedder.name)
        return self._index

    @property
    def retriever(self) -> Retriever:
        return Retriever(self.index, self.embedder, self.settings)

    def build(
        self,
        *,
        rebuild: bool = False,
        progress: ProgressCallback | None = None,
        show_progress: bool = True,
    ) -> BuildReport:
        """Ingest ``corpus_dir`` and build or update the index, then start answering from it.

        Questions asked while this runs are answered from the previous index.
        """
        with self._build_lock:
            documents = load_corpus(self.settings.corpus_dir)
            report = build_index(
                self.settings,
                documents,
                self.embedder,
                rebuild=rebuild,
                progress=progress,
                show_progress=show_progress,
            )
            self._index = load_index(self.settings, embedding_name=self.embedder.name)
            return report

    def search(
        self,
        query: str,
        k: int | None = None,
        mode: RetrievalMode | None = None,
        timings: dict[str, float] | None = None,
    ) -> list[Passage]:
        """Ranked passages for ``query`` (see ``Retriever.search``)."""
        return self.retriever.search(query, k=k, mode=mode, timings=timings)

    def document(self, doc_id: str) -> Document:
        """The cleaned document ``doc_id``; ``KeyError`` with the known ids' count if absent."""
        try:
            return self.index.documents[doc_id]
        except KeyError:
            raise KeyError(
                f"no document {doc_id!r} in the index ({len(self.index.documents)} documents)"
            ) from None

    def documents(self) -> list[Document]:
        return list(self.index.documents.values())
