"""The product's Python API: build the index, search it, read documents, ask questions."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, get_args

from qa import ahead
from qa.conversation import PREFER_DEPTH, Turn, prefer_documents, understand
from qa.embedding import Embedder
from qa.filters import Filter, check_filter
from qa.indexing.build import build_index
from qa.indexing.persist import load_index
from qa.indexing.plan import known_files
from qa.reading.copies import cite_copies, set_apart
from qa.retrieval import Retriever
from qa.settings import (
    RetrievalMode,
    Settings,
    check_n_answers,
    check_threshold,
)
from qa.store import (
    BuildReport,
    Index,
    IndexMissingError,
    IndexProblem,
    ProgressCallback,
)
from qa.timing import StageClock
from qa.types import Document, Passage, Result

if TYPE_CHECKING:
    from pathlib import Path

    from qa.protocols import Encoder, RetrieverFactory
    from qa.reading.answers import AnswerFinder
    from qa.scale.build import ShardedReport

#: Longest question accepted, in characters. The reader keeps the first 64 word pieces of a
#: question anyway; the limit keeps a pasted article from being embedded and scored as one.
MAX_QUESTION_CHARS = 1_000
RETRIEVAL_MODES: tuple[RetrievalMode, ...] = get_args(RetrievalMode)


def check_request(
    question: object,
    *,
    n_answers: object = None,
    threshold: object = None,
    mode: object = None,
) -> None:
    """Refuse a question or option that ``ask`` cannot honour, saying what is allowed.

    The Python API, the CLI and the web page (chat and HTTP API) all check with this one
    function, so they accept exactly the same requests. ``None`` means "the default".

    Args:
        question: A non-empty string of at most ``MAX_QUESTION_CHARS`` characters.
        n_answers: An integer from 1 to ``MAX_ANSWERS``.
        threshold: A number from 0 to 1.
        mode: One of ``RETRIEVAL_MODES``.

    Raises:
        ValueError: Naming the first value refused and the values allowed.
    """
    if not isinstance(question, str):
        raise ValueError(f"the question must be text, got {type(question).__name__}")
    if not question.strip():
        raise ValueError("the question is empty")
    if len(question) > MAX_QUESTION_CHARS:
        raise ValueError(
            f"the question is {len(question):,} characters long; the limit is "
            f"{MAX_QUESTION_CHARS:,}"
        )
    if n_answers is not None:
        check_n_answers(n_answers, "the number of answers")
    if threshold is not None:
        check_threshold(threshold, "the threshold")
    if mode is not None and mode not in RETRIEVAL_MODES:
        raise ValueError(
            f"the retrieval mode must be one of {', '.join(RETRIEVAL_MODES)}, got {mode!r}"
        )


def _default_retriever(settings: Settings) -> RetrieverFactory:
    """The retriever ``settings.engine`` selects: over the local index, or the Ray cluster's."""
    if settings.engine == "ray":
        from qa.scale.client import RayRetriever

        return RayRetriever
    return Retriever


class QA:
    """Question answering over the corpus and index named by ``settings``.

    Construction is cheap; models and the index load on first use. Each component is built
    from ``settings`` unless one is handed in (a loaded model shared by several ``QA``, a test
    double, an index already in memory).

    Args:
        settings: Every knob; ``Settings.from_env()`` by default.
        embedder: The text encoder (default: an :class:`Embedder` of ``settings``).
        reading: The answer finder (default: a :class:`qa.reading.answers.AnswerFinder` of
            ``settings`` over ``embedder``).
        index: A loaded index to answer from until the next build (default: the one on disk).
        retriever: Makes the retriever of an index snapshot, called with ``(index, embedder,
            settings)`` once per question (default: :class:`qa.retrieval.Retriever`, dense +
            BM25 fused; with ``settings.engine == "ray"``, ``qa.scale.client.RayRetriever``,
            the cluster's router, whose live index then holds the documents it sends); any
            :class:`qa.protocols.Retriever` can stand in.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        embedder: Encoder | None = None,
        reading: AnswerFinder | None = None,
        index: Index | None = None,
        retriever: RetrieverFactory | None = None,
    ) -> None:
        self.settings = settings or Settings.from_env()
        self._make_retriever: RetrieverFactory = retriever or _default_retriever(self.settings)
        self._embedder: Encoder | None = embedder
        self._reading = reading
        self._index: Index | None = index
        self._build_lock = threading.Lock()
        self._load_lock = threading.Lock()
        self._component_lock = threading.Lock()

    @property
    def embedder(self) -> Encoder:
        """The text encoder, built from the settings on first use unless one was handed in."""
        if self._embedder is None:
            with self._component_lock:
                if self._embedder is None:
                    self._embedder = Embedder.of(self.settings)
        return self._embedder

    @property
    def index(self) -> Index:
        """The live index, loaded on first use (raises ``IndexMissingError`` if none).

        A build replaces it whole, by one assignment, so an ``Index`` once read is a snapshot
        that never changes underneath its reader: a question reads this property once.
        """
        index = self._index
        if index is None:
            with self._load_lock:
                if self._index is None:
                    self._index = self._load_index()
                index = self._index
        return index

    def _snapshot(self, meanwhile: Sequence[Callable[[], object]]) -> Index:
        """The live index (:attr:`index`). Where it is still to be read from disk, the
        ``meanwhile`` tasks run on threads of their own while it is (:mod:`qa.ahead`: the
        first question of a process loads the question encoder and the reader while the
        index loads), and are waited for.
        """
        if self._index is not None or self.settings.engine == "ray" or not meanwhile:
            return self.index
        workers = [ahead.start(task) for task in meanwhile]
        try:
            return self.index
        finally:
            for worker in workers:
                worker.join()

    def _embedding(self, query: str, mode: RetrievalMode | None) -> list[Callable[[], object]]:
        """The task that embeds ``query`` (memoised by the encoder, so retrieval finds it
        done), where retrieval in ``mode`` embeds it."""
        if (mode or self.settings.retrieval_mode) == "lexical":
            return []
        return [lambda: self.embedder.encode_query(query)]

    def _load_reader(self) -> None:
        _ = self.reading.reader

    def _load_index(self) -> Index:
        if self.settings.engine == "ray":
            # The cluster's router sends the documents the reader needs with the passages.
            from qa.scale.client import cluster_index

            return cluster_index(self.settings)
        return load_index(self.settings, embedding_name=self.embedder.name)

    def build(
        self,
        *,
        rebuild: bool = False,
        progress: ProgressCallback | None = None,
        show_progress: bool = True,
        timings: dict[str, float] | None = None,
        only: Sequence[str | Path] | None = None,
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
            only: Corpus files (relative to ``corpus_dir``, or paths inside it) to add,
                update or, where they are gone, remove; the rest of the corpus is taken as the
                live index recorded it, without walking the corpus folder (adding one article
                to a corpus of 10^5 files then costs no walk of them). Where there is no live
                index the whole corpus is read.

        Raises:
            ValueError: ``only`` names a path outside ``corpus_dir``, or comes with ``rebuild``.
        """
        if self.settings.engine == "ray":
            raise IndexProblem(
                "the ray engine's index is built on the cluster: `qa index --engine ray` "
                "(or QA.update)"
            )
        with self._build_lock:
            # Imported here: the format parsers (bs4, pypdf...) are slow to import and only
            # building needs them, not asking.
            from qa.ingest import KnownFiles, corpus_relative, scan_corpus

            clock = StageClock(timings)
            if only is not None and rebuild:
                raise ValueError("a rebuild reads the whole corpus: it takes no list of files")
            listed = corpus_relative(self.settings.corpus_dir, only) if only is not None else None
            live = self._live_index() if not rebuild else None
            skipped: dict[str, str] = {}
            known = known_files(live) if live is not None else None
            documents, files = scan_corpus(
                self.settings.corpus_dir,
                known,
                skipped=skipped,
                only=listed if live is not None else None,
            )
            # Listed files: their documents, before and now, are the only ones that may differ
            # from the live index's (the others are its own), so only they are compared.
            touched = None
            if listed is not None and known is not None:
                now = KnownFiles(documents, files)
                touched = known.ids_of(listed) | now.ids_of(listed)
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
                touched=touched,
                touched_files=listed if touched is not None else None,
            )
            report.skipped = skipped
            self._index = report.index
            return report

    def update(
        self,
        *,
        rebuild: bool = False,
        progress: ProgressCallback | None = None,
        show_progress: bool = True,
        only: Sequence[str | Path] | None = None,
    ) -> BuildReport | ShardedReport:
        """Bring the index up to date with ``corpus_dir`` on the engine the settings choose.

        Over a local index this is :meth:`build` (``only`` as there: the files to update
        for alone). With the ray engine the sharded index that
        ``qa deploy`` serves is updated on the cluster (``qa.scale.build``, with the shard count
        it has, so no document moves): only the shards of added, changed or removed documents
        are written, each served shard loads its new build for the next question, and the
        documents this process kept of the old builds are forgotten. ``progress`` and
        ``show_progress`` apply to the local engine only (Ray Data embeds on the cluster), and
        so does ``only``: the sharded build always reads the whole corpus, which takes in the
        files ``only`` names.

        Raises:
            IndexMissingError: The ray engine has no sharded index to update (build one with
                ``qa index --engine ray``).
        """
        if self.settings.engine != "ray":
            return self.build(
                rebuild=rebuild, progress=progress, show_progress=show_progress, only=only
            )
        from qa.scale.build import build_sharded, connect
        from qa.scale.layout import ShardedLayout

        with self._build_lock:
            try:
                layout = ShardedLayout.load(self.settings.index_dir)
            except FileNotFoundError as exc:
                raise IndexMissingError(str(exc)) from exc
            connect(self.settings)  # this process stays joined: it asks through the cluster
            settings = self.settings.replace(shards=layout.shards)
            report = build_sharded(settings, self.embedder, rebuild=rebuild)
            self._index = None  # the next question asks the router for the new manifest
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
        filter: Filter | None = None,
    ) -> list[Passage]:
        """Ranked passages for ``query`` (see ``Retriever.search``); with ``filter``, the best
        of the documents that pass it (``qa.filters.Filter``; anything else is refused with a
        ``ValueError``)."""
        filter = check_filter(filter)
        index = self._snapshot(self._embedding(query, mode))
        return self._make_retriever(index, self.embedder, self.settings).search(
            query, k=k, mode=mode, timings=timings, exclude=exclude, filter=filter
        )

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

    @property
    def reading(self) -> AnswerFinder:
        """The answer finder (the reader, or the sentence fallback), unless one was handed in
        built from the settings on first use; its models load lazily."""
        if self._reading is None:
            # Imported here: ``import qa`` should not pay for the reading modules.
            from qa.reading.answers import AnswerFinder

            embedder = self.embedder
            with self._component_lock:
                if self._reading is None:
                    self._reading = AnswerFinder(embedder, self.settings)
        return self._reading

    def ask(
        self,
        question: str,
        *,
        n_answers: int | None = None,
        threshold: float | None = None,
        mode: RetrievalMode | None = None,
        timings: dict[str, float] | None = None,
        exclude: frozenset[str] = frozenset(),
        conversation: Sequence[Turn] = (),
        filter: Filter | None = None,
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
            conversation: The earlier turns of the conversation, oldest first
                (``Turn.of(question, result)`` of each). A follow-up ("And when?") is read
                in their light (:func:`qa.conversation.understand`): retrieval and reading
                see the rewritten question, ``Result.understood_as`` holds it, and the
                answer is still a span of an article. Empty: the question stands alone.
            filter: Only documents that pass it are searched and read (``qa.filters.Filter``,
                e.g. ``Filter.parse(where=["folder=business"], since="2005-01-01")``).

        Returns:
            Answers, best first; or an abstention (``abstained=True``, ``answers=[]``) that
            still carries the ``settings.top_k`` closest passages as leads (each text once: a
            passage other articles carry word for word is read once, and their articles are
            among the answer's sources, see ``qa.reading.copies``). Every offset
            indexes a document of the one index snapshot the question was answered from,
            even when a build swaps the live index meanwhile.

        Raises:
            ValueError: If the question is empty or longer than ``MAX_QUESTION_CHARS``, an
                option is out of range (see :func:`check_request`), or ``filter`` is not a
                ``Filter``.
            IndexMissingError: If no index has been built.
        """
        check_request(question, n_answers=n_answers, threshold=threshold, mode=mode)
        filter = check_filter(filter)
        understood = understand(question, conversation)
        index = self._snapshot([*self._embedding(understood.search, mode), self._load_reader])
        k = max(self.settings.top_k, self.settings.read_passages)
        if understood.prefer:
            k = max(k, PREFER_DEPTH)  # deep enough to find the preferred article's passage
        passages = self._make_retriever(index, self.embedder, self.settings).search(
            understood.search, k=k, mode=mode, timings=timings, exclude=exclude, filter=filter
        )
        # Passages that other articles carry word for word are read once (qa.reading.copies).
        distinct, copies = set_apart(passages)
        to_read = prefer_documents(distinct, understood.prefer, self.settings.read_passages)
        result = self._read(
            index,
            understood.question,
            to_read,
            n_answers=n_answers,
            threshold=threshold,
            timings=timings,
        )
        cite_copies(result.answers, to_read, copies, index.documents)
        result.question = question
        if understood.used_context:
            result.understood_as = understood.shown
        result.passages = distinct[: self.settings.top_k]
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
        check_request(question, n_answers=n_answers, threshold=threshold)
        try:
            index: Index | None = self.index
        except IndexMissingError:
            index = None
        return self._read(
            index, question, passages, n_answers=n_answers, threshold=threshold, timings=timings
        )

    def _read(
        self,
        index: Index | None,
        question: str,
        passages: Sequence[Passage],
        *,
        n_answers: int | None,
        threshold: float | None,
        timings: dict[str, float] | None,
    ) -> Result:
        """Read ``passages`` with the documents and sentence vectors of ``index``."""
        documents = index.documents if index is not None else {}
        sentence_vectors = index.sentences if index is not None else None
        return self.reading.find(
            question,
            passages,
            documents,
            n_answers=n_answers,
            threshold=threshold,
            timings=timings,
            sentence_vectors=sentence_vectors,
        )
