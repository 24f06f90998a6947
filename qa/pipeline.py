"""The product's Python API: build the index, search it, read documents, ask questions."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING

from qa.embedding import Embedder
from qa.retrieval import Retriever
from qa.settings import RetrievalMode, Settings
from qa.store import (
    BuildReport,
    Index,
    IndexMissingError,
    IndexProblem,
    ProgressCallback,
    build_index,
    known_files,
    load_index,
)
from qa.timing import StageClock
from qa.types import Document, Passage, Result

if TYPE_CHECKING:
    from qa.reading.answers import AnswerFinder


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
        return Embedder(
            self.settings.embedding_model,
            batch_size=self.settings.batch_size,
            query_encoder=self.settings.query_encoder,
        )

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
        timings: dict[str, float] | None = None,
    ) -> BuildReport:
        """Ingest ``corpus_dir`` and build or update the index, then start answering from it.

        Files whose size and mtime are unchanged since the live index was built are not read
        again, and documents whose content is unchanged are not embedded again. Questions
        asked while this runs are answered from the previous index.

        Args:
            rebuild: Read every file and embed everything.
            progress: Called with ``(chunks_embedded, chunks_to_embed)``.
            show_progress: Show a terminal progress bar.
            timings: If given, receives seconds per stage (``scan`` and those of
                ``build_index``).
        """
        with self._build_lock:
            # Imported here: the format parsers (bs4, pypdf...) are slow to import and only
            # building needs them, not asking.
            from qa.ingest import scan_corpus

            clock = StageClock(timings)
            live = self._live_index() if not rebuild else None
            documents, files = scan_corpus(
                self.settings.corpus_dir, known_files(live) if live is not None else None
            )
            clock.lap("scan")
            report = build_index(
                self.settings,
                documents,
                self.embedder,
                rebuild=rebuild,
                progress=progress,
                show_progress=show_progress,
                previous=live,
                files=files,
                timings=timings,
            )
            self._index = report.index
            return report

    def _live_index(self) -> Index | None:
        """The live index (loaded already, or from disk), or None if there is none usable."""
        try:
            return self.index
        except IndexProblem:
            return None

    def search(
        self,
        query: str,
        k: int | None = None,
        mode: RetrievalMode | None = None,
        timings: dict[str, float] | None = None,
        exclude: frozenset[str] = frozenset(),
    ) -> list[Passage]:
        """Ranked passages for ``query`` (see ``Retriever.search``)."""
        return self.retriever.search(query, k=k, mode=mode, timings=timings, exclude=exclude)

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

    @cached_property
    def reading(self) -> AnswerFinder:
        """The answer finder (transformer reader, or the sentence fallback); loads lazily."""
        # Imported here: the reader pulls in torch, which ``import qa`` should not pay for.
        from qa.reading.answers import AnswerFinder

        return AnswerFinder(self.embedder, self.settings)

    def ask(
        self,
        question: str,
        *,
        n_answers: int | None = None,
        threshold: float | None = None,
        mode: RetrievalMode | None = None,
        timings: dict[str, float] | None = None,
        exclude: frozenset[str] = frozenset(),
    ) -> Result:
        """Answer ``question`` from the corpus: retrieve, read the best passages, rank.

        Args:
            question: The question.
            n_answers: How many answers at most (default ``settings.n_answers``).
            threshold: Score below which the system abstains (default ``settings.threshold``,
                then the value recorded in ``qa/reading/thresholds.json`` for the mode).
                ``threshold=0.0`` returns every deduplicated candidate up to ``n_answers``
                whatever its score: an evaluation asks once that way and applies any
                threshold afterwards (answered iff ``answers[0].score >= t``).
            mode: Retrieval mode, ``hybrid``, ``dense`` or ``lexical`` (default
                ``settings.retrieval_mode``).
            timings: If given, receives seconds per stage (retrieval stages, ``sentences``,
                ``reader``).
            exclude: Document ids to leave out of retrieval, as if they were not indexed
                (how evaluation asks a question without its own paragraph).

        Returns:
            Answers, best first; or an abstention (``abstained=True``, ``answers=[]``) that
            still carries the ``settings.top_k`` closest passages as leads.

        Raises:
            ValueError: If the question is empty.
            IndexMissingError: If no index has been built.
        """
        if not question.strip():
            raise ValueError("the question is empty")
        k = max(self.settings.top_k, self.settings.read_passages)
        passages = self.search(question, k=k, mode=mode, timings=timings, exclude=exclude)
        result = self.read(
            question,
            passages[: self.settings.read_passages],
            n_answers=n_answers,
            threshold=threshold,
            timings=timings,
        )
        result.passages = passages[: self.settings.top_k]
        return result

    def read(
        self,
        question: str,
        passages: Sequence[Passage],
        *,
        n_answers: int | None = None,
        threshold: float | None = None,
        timings: dict[str, float] | None = None,
    ) -> Result:
        """Answer ``question`` from the given passages only, without retrieval.

        Measures reading alone (for example with an eval set's gold passage). A passage whose
        document is in the index is read with whole sentences of that document; any other
        passage is read on its own text, its offsets counted from ``passage.chunk.start``.
        Arguments and result as in :meth:`ask`.
        """
        if not question.strip():
            raise ValueError("the question is empty")
        try:
            documents, sentence_vectors = self.index.documents, self.index.sentences
        except IndexMissingError:
            documents, sentence_vectors = {}, None
        return self.reading.find(
            question,
            passages,
            documents,
            n_answers=n_answers,
            threshold=threshold,
            timings=timings,
            sentence_vectors=sentence_vectors,
        )
