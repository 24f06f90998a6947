"""The sharded index served by Ray Serve: a deployment per shard, a router, a batched reader.

- ``Shard``: loads one shard's index (FAISS, BM25, chunk and sentence tables) and answers
  :func:`qa.scale.shard.search_shard`; it loads the shard's new build when its ``current``
  link moves, so an update reaches the next question without a redeploy.
- ``Router``: embeds the question once while it gathers the shards' BM25 statistics of the
  question's terms (``Shard.statistics``, one round trip to every shard at once), asks every
  shard at once to search under their sum, fuses their lists
  (:func:`qa.scale.shard.fuse`) and fetches the reading context (whole documents, sentence
  vectors) of the passages kept from the shards that hold them. ``ask`` adds the reader.
- ``Reader``: the answer finder of ``qa.reading``, taking questions in batches
  (``serve.batch``): one replica serves many routers' questions, one after another.

Every deployment runs ``Settings.replicas`` replicas, spread over the nodes (no more than their
share on one node): with two or more, questions go on to a replica on another node when one is
lost. Replicas ask for no CPU of their own (``num_cpus=0``): they are servers that wait on
requests, and a node of one CPU must still take every replica of a lost node. Ray Serve restarts
a replica whose node is lost on a node that is left; each loads its shard from ``index_dir``,
which every node must be able to read (one host in tests; a shared file system on a real
cluster), memory-mapping its files.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from ray import serve

from qa.filters import Filter
from qa.indexing.persist import current_path, load_index
from qa.lexical import TermStatistics
from qa.scale.layout import ShardedLayout
from qa.scale.shard import (
    ReadingContext,
    ShardHits,
    fuse,
    reading_context,
    search_shard,
    statistics_terms,
)
from qa.settings import RetrievalMode, Settings
from qa.types import Document, DocumentRow, Passage, Result

#: The Serve application's name; the client finds the router by it.
APP_NAME = "qa"
ROUTER = "Router"
#: Questions the reader takes at once, and how long a batch waits to fill.
READER_BATCH = 8
READER_BATCH_WAIT_S = 0.01


def _node() -> str:
    import ray

    return str(ray.get_runtime_context().get_node_id())


class Shard:
    """One shard's index, searched on request."""

    def __init__(self, settings: Settings, shard: int, folder: str, embedding_name: str) -> None:
        self.shard = shard
        self.settings = settings.replace(index_dir=Path(folder))
        self.embedding_name = embedding_name
        self.index = load_index(self.settings, embedding_name=embedding_name)

    def _live(self):  # noqa: ANN202 - qa.store.Index
        """The shard's index, its new build loaded first if one was swapped in."""
        if current_path(self.settings.index_dir).resolve() != self.index.path:
            self.index = load_index(self.settings, embedding_name=self.embedding_name)
        return self.index

    def search(
        self,
        query: str,
        query_vector: Any,
        depth: int,
        mode: RetrievalMode,
        filter: Filter | None,
        exclude: frozenset[str],
        statistics: TermStatistics | None = None,
    ) -> ShardHits:
        return search_shard(
            self.shard,
            self._live(),
            query,
            query_vector,
            depth,
            mode,
            filter,
            exclude,
            statistics,
            self.settings.ivfpq_k_factor,
        )

    def statistics(self, terms: list[str]) -> TermStatistics:
        """The shard's BM25 statistics of ``terms``, for the router to sum."""
        return self._live().lexical.statistics(terms)

    def context(self, doc_ids: list[str]) -> ReadingContext:
        return reading_context(self._live(), doc_ids)

    def catalog(self) -> list[DocumentRow]:
        """The shard's documents, as the documents table lists them."""
        return self._live().catalog()

    def manifest(self) -> dict[str, Any]:
        """The shard's manifest without its per-document tables."""
        manifest = dict(self._live().manifest)
        manifest.pop("documents", None)
        manifest.pop("files", None)
        return manifest

    def node(self) -> str:
        return _node()


class Reader:
    """The answer finder, taking questions in batches."""

    def __init__(self, settings: Settings) -> None:
        from qa.embedding import Embedder
        from qa.reading.answers import AnswerFinder

        self.finder = AnswerFinder(
            Embedder(settings.embedding_model, query_encoder=settings.query_encoder), settings
        )

    @serve.batch(max_batch_size=READER_BATCH, batch_wait_timeout_s=READER_BATCH_WAIT_S)
    async def read(self, requests: list[tuple[str, list[Passage], ReadingContext]]) -> list[Result]:
        return [_read(self.finder, *request) for request in requests]

    def node(self) -> str:
        return _node()


def _read(finder: Any, question: str, passages: list[Passage], context: ReadingContext) -> Result:
    from qa.indexing.embed import sentence_table

    documents = list(context.documents.values())
    parts = [(n, *context.sentences[d.doc_id]) for n, d in enumerate(documents)]
    dimension = next((v.shape[1] for _, v in context.sentences.values()), 1)
    return finder.find(
        question,
        passages,
        context.documents,
        sentence_vectors=sentence_table([d.doc_id for d in documents], parts, dimension),
    )


class Router:
    """Embeds a question once, asks every shard at once, fuses their lists."""

    def __init__(self, settings: Settings, shards: list[Any], reader: Any) -> None:
        from qa.embedding import Embedder

        self.settings = settings
        self.shards = shards
        self.reader = reader
        self.embedder = Embedder(settings.embedding_model, query_encoder=settings.query_encoder)

    async def search(
        self,
        query: str,
        k: int | None = None,
        mode: RetrievalMode | None = None,
        exclude: frozenset[str] = frozenset(),
        filter: Filter | None = None,
    ) -> tuple[list[Passage], ReadingContext]:
        """The ``k`` best passages over every shard, and their documents for the reader."""
        k = k or self.settings.top_k
        mode = mode or self.settings.retrieval_mode
        depth = max(self.settings.candidates, k)
        # The shards' statistics of the question's terms are gathered while it is embedded.
        terms = statistics_terms(query, mode, len(self.shards))
        parts = (
            asyncio.gather(*(s.statistics.remote(terms) for s in self.shards)) if terms else None
        )
        vector = None
        if mode != "lexical" and query.strip():
            vector = await asyncio.to_thread(self.embedder.encode_query, query)
        statistics = None if parts is None else TermStatistics.total(await parts)
        found = await asyncio.gather(
            *(
                s.search.remote(query, vector, depth, mode, filter, exclude, statistics)
                for s in self.shards
            )
        )
        passages = fuse(list(found), k, depth, mode, self.settings)
        owners = {hits.shard: set(hits.sources) for hits in found}
        wanted = {p.chunk.doc_id for p in passages}
        context = ReadingContext()
        for part in await asyncio.gather(
            *(
                self.shards[shard].context.remote(sorted(wanted & docs))
                for shard, docs in owners.items()
                if wanted & docs
            )
        ):
            context.update(part)
        return passages, context

    async def ask(self, question: str, k: int | None = None) -> Result:
        """The answers to ``question``: the passages read by the reader deployment."""
        k = max(k or self.settings.top_k, self.settings.read_passages)
        passages, context = await self.search(question, k)
        result: Result = await self.reader.read.remote(
            (question, passages[: self.settings.read_passages], context)
        )
        result.question = question
        result.passages = passages[: self.settings.top_k]
        return result

    async def document(self, doc_id: str) -> Document | None:
        """The document ``doc_id`` from whichever shard holds it (None if none does)."""
        from qa.scale.layout import shard_of

        shard = shard_of(doc_id, len(self.shards))
        context = await self.shards[shard].context.remote([doc_id])
        return context.documents.get(doc_id)

    async def catalog(self) -> list[DocumentRow]:
        """Every shard's documents, as the documents table lists them (by title, then id)."""
        parts = await asyncio.gather(*(s.catalog.remote() for s in self.shards))
        return sorted((row for part in parts for row in part), key=DocumentRow.order)

    async def manifest(self) -> dict[str, Any]:
        """The first shard's manifest (model, chunking, FAISS kind, build time), with the
        shard count."""
        manifest: dict[str, Any] = await self.shards[0].manifest.remote()
        return {**manifest, "engine": "ray", "shards": len(self.shards)}

    async def nodes(self) -> dict[str, str]:
        """Which node each replica this router calls runs on, by deployment name."""
        found = await asyncio.gather(*(s.node.remote() for s in self.shards))
        where = {f"shard-{i}": node for i, node in enumerate(found)}
        where["reader"] = await self.reader.node.remote()
        where["router"] = _node()
        return where


def application(settings: Settings) -> Any:
    """The Serve application of the sharded index ``settings.index_dir`` names."""
    layout = ShardedLayout.load(settings.index_dir)
    options = _replica_options(settings.replicas)
    shards = [
        _deployment(Shard, f"shard-{i}", options).bind(
            settings, i, str(layout.path(i).resolve()), layout.embedding_model
        )
        for i in range(layout.shards)
    ]
    reader = _deployment(Reader, "reader", options).bind(settings)
    return _deployment(Router, ROUTER, options).bind(settings, shards, reader)


def _replica_options(replicas: int) -> dict[str, Any]:
    """Every deployment's replica count, spread over the nodes alive now: at most
    ``replicas / nodes`` (rounded up) on one node, so two replicas on two nodes are on both
    (Serve's own spreading is best effort, and kept a scaled-up deployment's replicas on one
    node in a test). A replica lost with its node then waits for a node with room while the
    others serve."""
    import ray

    options: dict[str, Any] = {"num_replicas": replicas}
    if replicas > 1:
        nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
        options["max_replicas_per_node"] = -(-replicas // max(1, nodes))
    return options


def _deployment(server: type, name: str, options: dict[str, Any]) -> Any:
    """``server`` as a Serve deployment whose replicas (``options``) ask for no CPU (see
    above)."""
    return serve.deployment(server, name=name, ray_actor_options={"num_cpus": 0}, **options)


def deploy(settings: Settings) -> Any:
    """Start (or update) the application on the connected cluster; the router's handle.

    The application outlives this process: it serves until ``serve.delete(APP_NAME)`` or the
    cluster stops. Questions come through Serve handles (``qa.scale.client``), not HTTP: no
    HTTP proxy is started (on one host, a proxy per node would all claim one port).
    """
    serve.start(proxy_location="Disabled")
    return serve.run(application(settings), name=APP_NAME, route_prefix=None)


def deploy_on_cluster(settings: Settings) -> dict[str, str]:
    """``qa deploy``: join the cluster, start the application, leave it serving (and the
    cluster, if this call joined it); where each replica runs."""
    import ray

    from qa.scale.build import connect

    joined = connect(settings)
    try:
        where: dict[str, str] = deploy(settings).nodes.remote().result()
        return where
    finally:
        if joined:
            ray.shutdown()
