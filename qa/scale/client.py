"""The retriever ``QA`` uses when ``Settings.engine`` is ``ray``: the router of the cluster.

``QA`` asks through the same ``qa.protocols.Retriever`` role as over a local index, so
``qa ask``, ``qa search``, ``qa serve`` and the web chat run unchanged. Its live index is a
:class:`ClusterIndex`: no vectors or BM25 of its own, only the documents (and their sentence
vectors) that the router sent with the passages of recent questions, which is all the reader
reads. ray is imported on first use, not with this module.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import faiss
import numpy as np

from qa.lexical import LexicalIndex
from qa.scale import require_ray
from qa.sentence_vectors import SentenceVectors
from qa.settings import RetrievalMode, Settings
from qa.store import Index, IndexMissingError
from qa.types import Document, DocumentRow, Passage

if TYPE_CHECKING:
    from qa.filters import Filter
    from qa.protocols import Encoder
    from qa.scale.shard import ReadingContext

#: Documents a client keeps of those the router sent (a question reads at most a few).
KEPT_DOCUMENTS = 4096

_ROUTERS: dict[str, Any] = {}
_ROUTERS_LOCK = threading.Lock()


def router(settings: Settings) -> Any:
    """The handle of the router deployed on the cluster ``settings.ray_address`` names
    (connecting this process first), one per process."""
    require_ray()
    import ray

    with _ROUTERS_LOCK:
        if not ray.is_initialized():
            _ROUTERS.clear()  # handles of a cluster this process has left
        if settings.ray_address not in _ROUTERS:
            from qa.scale.build import connect
            from qa.scale.serving import APP_NAME, ROUTER

            connect(settings)
            from ray import serve

            try:
                _ROUTERS[settings.ray_address] = serve.get_deployment_handle(
                    ROUTER, app_name=APP_NAME
                )
            except Exception as exc:  # noqa: BLE001 - Ray's own errors name no remedy
                raise IndexMissingError(
                    f"no qa application on the Ray cluster at {settings.ray_address} ({exc}): "
                    "start it with `qa deploy`"
                ) from exc
        return _ROUTERS[settings.ray_address]


class _KeptDocuments(OrderedDict[str, Document]):
    """The documents the router sent, the most recently used kept; a document asked for by id
    (``qa doc``, the web page's article view) that is not kept is fetched."""

    def __init__(self, fetch: Any) -> None:
        super().__init__()
        self._fetch = fetch

    def __missing__(self, doc_id: str) -> Document:
        doc = self._fetch(doc_id)
        if doc is None:
            raise KeyError(doc_id)
        return doc


class _KeptSentences(SentenceVectors):
    """Sentence vectors of the kept documents, one small table per document."""

    def __init__(self, dimension: int) -> None:
        super().__init__([], np.zeros((0, 3), np.int64), np.zeros((0, dimension), np.float16))
        self._tables: dict[str, SentenceVectors] = {}

    def add(self, doc_id: str, spans: np.ndarray, vectors: np.ndarray) -> None:
        rows = np.zeros((len(spans), 3), np.int64)
        rows[:, 1:] = spans
        self._tables[doc_id] = SentenceVectors([doc_id], rows, vectors)

    def forget(self, doc_id: str) -> None:
        self._tables.pop(doc_id, None)

    def of_document(self, doc_id: str) -> tuple[np.ndarray, np.ndarray]:
        table = self._tables.get(doc_id)
        return table.of_document(doc_id) if table else super().of_document(doc_id)

    def lookup(self, doc_id: str, spans: Any) -> list[np.ndarray | None]:
        table = self._tables.get(doc_id)
        return table.lookup(doc_id, spans) if table else [None] * len(spans)


@dataclass
class ClusterIndex(Index):
    """The live index of a client of the cluster: what the reader needs of the documents the
    router sent, nothing searchable (the shards search); the documents table comes from the
    shards (``fetch_catalog``)."""

    fetch_catalog: Callable[[], list[DocumentRow]] = list

    def catalog(self) -> list[DocumentRow]:
        """Every document of every shard (asked of the router: this index keeps only those
        recent questions read)."""
        return self.fetch_catalog()

    def keep(self, context: ReadingContext) -> None:
        """Keep the documents of a question's passages (before the question reads them)."""
        assert isinstance(self.documents, _KeptDocuments)
        assert isinstance(self.sentences, _KeptSentences)
        with self._lock:
            for doc_id, doc in context.documents.items():
                self.documents[doc_id] = doc
                self.documents.move_to_end(doc_id)
                self.sentences.add(doc_id, *context.sentences[doc_id])
            while len(self.documents) > KEPT_DOCUMENTS:
                dropped, _ = self.documents.popitem(last=False)
                self.sentences.forget(dropped)

    _lock = threading.Lock()


def cluster_index(settings: Settings) -> ClusterIndex:
    """The client's live index over the application deployed on the cluster."""
    handle = router(settings)
    manifest: dict[str, Any] = handle.manifest.remote().result()
    dimension = int(manifest["dimension"])
    return ClusterIndex(
        manifest=manifest,
        documents=_KeptDocuments(lambda doc_id: handle.document.remote(doc_id).result()),
        chunks=[],
        dense=faiss.IndexFlatIP(dimension),
        lexical=LexicalIndex.build([]),
        path=Path(settings.index_dir),
        sentences=_KeptSentences(dimension),
        fetch_catalog=lambda: handle.catalog.remote().result(),
    )


class RayRetriever:
    """Searches the sharded index through the cluster's router (a ``qa.protocols.Retriever``).

    Args:
        index: The client's :class:`ClusterIndex` (receives the passages' documents).
        embedder: Unused: the router embeds the question, once for every shard.
        settings: ``ray_address``.
    """

    def __init__(self, index: Index, embedder: Encoder, settings: Settings) -> None:
        if not isinstance(index, ClusterIndex):
            raise TypeError("the ray engine searches through a ClusterIndex (qa.scale.client)")
        self.index = index
        self.settings = settings

    def search(
        self,
        query: str,
        k: int | None = None,
        mode: RetrievalMode | None = None,
        timings: dict[str, float] | None = None,
        exclude: frozenset[str] = frozenset(),
        filter: Filter | None = None,
    ) -> list[Passage]:
        """The ``k`` best passages over every shard (``timings`` receives ``cluster``)."""
        import time

        started = time.perf_counter()
        passages, context = (
            router(self.settings).search.remote(query, k, mode, exclude, filter).result()
        )
        self.index.keep(context)
        if timings is not None:
            timings["cluster"] = time.perf_counter() - started
        return passages
