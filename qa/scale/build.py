"""The distributed build: Ray Data chunks and embeds on every node, each changed shard is
written by the single-machine road.

The driver reads the corpus and plans per shard what the live shard already has (the plan
stage of ``qa.indexing``); only the documents no shard can reuse travel to the cluster, as one
Ray Data dataset whose ``map_batches`` runs an actor per CPU of the cluster, each holding the
embedding model and running the same chunking and embedding functions as a local build
(``qa.indexing.build.chunk_and_embed``). Each shard whose documents changed is then built by
``qa.indexing.build.build_index`` with those vectors handed in, so its folder is exactly what a
local build of its documents writes. A shard whose documents are all unchanged is not touched:
its folder, its build and its ``current`` link stay as they are.
"""

from __future__ import annotations

import json
import pickle
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from qa.indexing.build import build_index, chunk_and_embed
from qa.indexing.persist import chunking_settings, current_path, stored_hashes
from qa.indexing.plan import Plan, compare, plan_build
from qa.scale import require_ray
from qa.scale.layout import ShardedLayout, shard_of
from qa.settings import Settings
from qa.store import BuildReport
from qa.text import counted
from qa.types import Chunk, Document, FileSignature, rows_by_document

if TYPE_CHECKING:
    from qa.indexing.embed import DocumentSentences
    from qa.protocols import Encoder

#: Documents per Ray Data batch: small enough that both nodes get work on a small corpus,
#: large enough that the model's batches stay full (about six chunks a news article).
DOCS_PER_BATCH = 8


@dataclass
class ShardedReport:
    """What a distributed build did.

    Attributes:
        shards: Per shard, its build report, or None where it was left untouched.
        embedded_chunks: Chunks embedded on the cluster.
        nodes: The cluster nodes that embedded them (Ray node ids).
        seconds: Wall time of the whole build, corpus scan included.
        timings: Seconds per stage: ``scan``, ``plan``, ``embedding`` (the Ray Data pass),
            ``shards`` (writing the changed shards).
        skipped: Corpus files that could not be read, with the reason.
    """

    layout: ShardedLayout
    shards: list[BuildReport | None]
    embedded_chunks: int
    nodes: list[str]
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def touched(self) -> list[int]:
        """The shards that were written."""
        return [i for i, report in enumerate(self.shards) if report is not None]

    @property
    def path(self) -> Path:
        """The index folder (``shards.json`` and the shard folders)."""
        return self.layout.index_dir

    def describe(self) -> str:
        """One sentence on what the build did (the CLI and the web page say it)."""
        built = self.touched
        written = [report for report in self.shards if report is not None]
        changes = ", ".join(
            f"{sum(len(getattr(r, what)) for r in written)} {what}"
            for what in ("added", "changed", "removed")
        )
        said = (
            f"Sharded index built in {self.seconds:.1f} s: {counted(len(self.shards), 'shard')}, "
            f"{counted(len(built), 'shard')} written "
            f"({', '.join(str(i) for i in built) or 'none'}; {changes}), "
            f"{counted(self.embedded_chunks, 'chunk')} embedded on "
            f"{counted(len(self.nodes), 'node')}."
        )
        if self.skipped:
            said += f" {counted(len(self.skipped), 'file')} skipped."
        return said

    def to_dict(self) -> dict[str, Any]:
        return {
            "shards": len(self.shards),
            "written": self.touched,
            "embedded_chunks": self.embedded_chunks,
            "nodes": len(self.nodes),
            "seconds": round(self.seconds, 3),
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "skipped": dict(self.skipped),
            "reports": [r.to_dict() if r is not None else None for r in self.shards],
        }


def connect(settings: Settings) -> bool:
    """Join the Ray cluster ``settings.ray_address`` names, unless this process already has;
    whether it joined now (and so should leave when done)."""
    require_ray()
    import ray

    if ray.is_initialized():
        return False
    ray.init(address=settings.ray_address, log_to_driver=False)
    return True


def build_on_cluster(settings: Settings, *, rebuild: bool = False) -> ShardedReport:
    """``qa index --engine ray``: join the cluster, build, leave it if this call joined it
    (the cluster stays up)."""
    require_ray()
    import ray

    from qa.embedding import Embedder

    joined = connect(settings)
    try:
        return build_sharded(settings, Embedder(settings.embedding_model), rebuild=rebuild)
    finally:
        if joined:
            ray.shutdown()


def build_sharded(
    settings: Settings,
    embedder: Encoder,
    *,
    rebuild: bool = False,
    documents: list[Document] | None = None,
) -> ShardedReport:
    """Build or update the sharded index of ``settings.corpus_dir`` on the connected cluster.

    Args:
        settings: ``index_dir``, ``shards`` and the chunking and FAISS settings of every shard.
        embedder: The model the driver names in the manifests (the cluster's actors load the
            same ``settings.embedding_model`` themselves).
        rebuild: Embed and write every shard again.
        documents: The documents to index instead of reading ``settings.corpus_dir``.

    Returns:
        What was built; shards left untouched have no report.
    """
    require_ray()
    started = time.perf_counter()
    timings: dict[str, float] = {}
    skipped: dict[str, str] = {}
    files: dict[str, FileSignature] = {}
    if documents is None:
        from qa.ingest import scan_corpus

        documents, files = scan_corpus(settings.corpus_dir, None, skipped=skipped)
    timings["scan"] = time.perf_counter() - started

    layout = ShardedLayout.of(
        settings.index_dir, settings.shards, embedder.name, embedder.dimension
    )
    by_shard: list[list[Document]] = [[] for _ in range(layout.shards)]
    for doc in sorted(documents, key=lambda d: d.doc_id):
        by_shard[shard_of(doc.doc_id, layout.shards)].append(doc)

    lap = time.perf_counter()
    plans: list[Plan | None] = []
    for shard, docs in enumerate(by_shard):
        shard_settings = settings.replace(index_dir=layout.path(shard))
        if not rebuild and _up_to_date(shard_settings, docs, embedder.name):
            plans.append(None)
        elif rebuild:
            plans.append(compare(docs, None))
        else:
            plans.append(plan_build(shard_settings, docs, embedder.name, None))
    timings["plan"] = time.perf_counter() - lap

    lap = time.perf_counter()
    fresh = [
        d for plan, docs in zip(plans, by_shard, strict=True) if plan for d in plan.fresh(docs)
    ]
    embedded, nodes = embed_on_cluster(settings, fresh)
    timings["embedding"] = time.perf_counter() - lap

    lap = time.perf_counter()
    reports: list[BuildReport | None] = []
    for shard, (plan, docs) in enumerate(zip(plans, by_shard, strict=True)):
        if plan is None:
            reports.append(None)
            continue
        shard_files = {d.path: files[d.path] for d in docs if d.path in files}
        reports.append(
            build_index(
                settings.replace(index_dir=layout.path(shard)),
                docs,
                embedder,
                rebuild=rebuild,
                show_progress=False,
                previous=plan.previous,
                files=shard_files,
                embed=lambda wanted: _gather(wanted, embedded, embedder.dimension),
            )
        )
    layout.save([len(docs) for docs in by_shard])
    _prune_other_layouts(layout)
    timings["shards"] = time.perf_counter() - lap
    return ShardedReport(
        layout=layout,
        shards=reports,
        embedded_chunks=sum(len(chunks) for chunks, _, _ in embedded.values()),
        nodes=nodes,
        seconds=time.perf_counter() - started,
        timings=timings,
        skipped=skipped,
    )


#: Per document id, what the cluster made of it: its chunks, their vectors, and its sentence
#: spans and vectors.
Embedded = dict[str, tuple[list[Chunk], np.ndarray, tuple[np.ndarray, np.ndarray]]]


def embed_on_cluster(settings: Settings, documents: list[Document]) -> tuple[Embedded, list[str]]:
    """Chunk and embed ``documents`` with Ray Data, one actor per CPU of the cluster.

    Returns:
        What each document became, and the ids of the nodes whose actors did the work.
    """
    if not documents:
        return {}, []
    import ray

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    actors = max(1, int(ray.cluster_resources().get("CPU", 1)))
    # At least a few blocks per actor, and one task at a time per actor: an actor that is
    # ready first must not queue every block while another is still loading its model.
    blocks = max(1, min(len(documents), max(len(documents) // DOCS_PER_BATCH, 4 * actors)))
    dataset = ray.data.from_items(
        [{"document": json.dumps(d.to_dict())} for d in documents], override_num_blocks=blocks
    ).map_batches(
        ChunkAndEmbed,
        fn_constructor_kwargs={"settings": settings},
        batch_size=DOCS_PER_BATCH,
        compute=ray.data.ActorPoolStrategy(size=actors, max_tasks_in_flight_per_actor=1),
        num_cpus=1,
    )
    embedded: Embedded = {}
    nodes: set[str] = set()
    for row in dataset.iter_rows():
        embedded[row["doc_id"]] = pickle.loads(row["embedded"])
        nodes.add(row["node"])
    return embedded, sorted(nodes)


class ChunkAndEmbed:
    """A Ray Data actor: holds the embedding model, chunks and embeds batches of documents.

    One per CPU, each on one thread, so the actors of a node share its cores instead of
    fighting over them.
    """

    def __init__(self, settings: Settings) -> None:
        import torch

        from qa.embedding import Embedder

        torch.set_num_threads(1)
        self.settings = settings
        self.embedder = Embedder(settings.embedding_model, batch_size=settings.batch_size)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import ray

        docs = [Document(**json.loads(text)) for text in batch["document"]]
        chunks, vectors, sentences = chunk_and_embed(self.settings, self.embedder, docs)
        rows = rows_by_document(chunks)
        payloads = [
            pickle.dumps(
                (
                    [chunks[r] for r in rows.get(d.doc_id, [])],
                    vectors[rows.get(d.doc_id, [])],
                    sentences[d.doc_id],
                )
            )
            for d in docs
        ]
        node = ray.get_runtime_context().get_node_id()
        return {
            "doc_id": np.array([d.doc_id for d in docs], dtype=object),
            "embedded": np.array(payloads, dtype=object),
            "node": np.array([node] * len(docs), dtype=object),
        }


def _gather(
    documents: list[Document], embedded: Embedded, dim: int
) -> tuple[list[Chunk], np.ndarray, DocumentSentences]:
    """The :data:`qa.indexing.build.EmbedStage` result for ``documents`` from the cluster's."""
    chunks: list[Chunk] = []
    parts: list[np.ndarray] = [np.zeros((0, dim), dtype=np.float32)]
    sentences: DocumentSentences = {}
    for doc in documents:
        doc_chunks, vectors, doc_sentences = embedded[doc.doc_id]
        chunks.extend(doc_chunks)
        parts.append(vectors)
        sentences[doc.doc_id] = doc_sentences
    return chunks, np.concatenate(parts), sentences


def _up_to_date(settings: Settings, documents: list[Document], embedding_name: str) -> bool:
    """Whether the live index of one shard holds exactly ``documents``, as they are, built with
    this model and chunking (read from its manifest and documents table alone: nothing else is
    loaded)."""
    manifest_path = current_path(settings.index_dir) / "manifest.json"
    if not manifest_path.exists():
        return False
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    return (
        manifest.get("embedding_model") == embedding_name
        and manifest.get("chunking") == chunking_settings(settings)
        and stored_hashes(manifest_path.parent.resolve())
        == {d.doc_id: d.content_hash for d in documents}
    )


def _prune_other_layouts(layout: ShardedLayout) -> None:
    """Remove the shard folders of another shard count (a build with a new S)."""
    folder = layout.index_dir / "shards"
    if not folder.is_dir():
        return
    keep = {Path(f).name for f in layout.folders}
    for path in folder.iterdir():
        if path.name not in keep:
            shutil.rmtree(path, ignore_errors=True)
