"""The index on disk: FAISS vectors, chunk table, BM25, documents and a manifest.

Layout under ``Settings.index_dir``::

    current -> builds/<id>      a symlink, swapped atomically when a build completes
    builds/<id>/manifest.json   what the index was built from and with
    builds/<id>/documents.jsonl cleaned documents (the coordinate system of every offset)
    builds/<id>/chunks.jsonl    chunk table, row i = FAISS id i = BM25 id i
    builds/<id>/dense.faiss     FAISS index (inner product over normalised vectors)
    builds/<id>/bm25/           bm25s index
    builds/<id>/sentence_*.npy  sentence offsets and vectors (``qa.sentence_vectors``)

A build writes a fresh ``builds/<id>`` and only then repoints ``current``, so a build that dies
half way leaves the previous index loadable. Chunk text is not stored: it is sliced from the
document on load, so a chunk and its document can never disagree.
"""

from __future__ import annotations

import copy
import fcntl
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import faiss
import numpy as np
from tqdm import tqdm

from qa.lexical import LexicalIndex
from qa.sentence_vectors import SentenceVectors, assemble, chunk_sentence_spans
from qa.settings import Settings
from qa.text import counted
from qa.timing import StageClock
from qa.types import Chunk, Document, FileSignature

if TYPE_CHECKING:
    from qa.protocols import Encoder

log = logging.getLogger(__name__)

#: 2: sentence vectors made at index time.
FORMAT_VERSION = 2
# HNSW parameters, measured in benchmarks/ (RESULTS.md) on 384-d vectors shaped like
# all-MiniLM-L6-v2 chunk embeddings: at 10^5 vectors, M=32 with efConstruction=64 and
# efSearch=256 finds 0.978 of the exact top 10 (M=16: 0.927). efConstruction=64 rather than
# 200 builds the graph about three times faster at that recall, which matters because every
# update rebuilds it; efSearch is where recall is bought, at about 2 ms a query.
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 64
HNSW_EF_SEARCH = 256


def hnsw_ef_search(n: int) -> int:
    """efSearch for an HNSW index of ``n`` vectors: recall falls as the graph grows.

    Synthetic 384-d vectors (benchmarks/RESULTS.md), recall@10 against exact search: at 10^5,
    efSearch 256 finds 0.95 in 1.9 ms; at 10^6, 0.74 at 256, 0.84 at 512, 0.91 at 1024
    (9.5 ms, against 140 ms for exact search). Real chunk vectors are easier (0.999 at 256 on
    the BBC chunks).
    """
    if n <= 200_000:
        return HNSW_EF_SEARCH
    if n <= 500_000:
        return 2 * HNSW_EF_SEARCH
    return 4 * HNSW_EF_SEARCH


ProgressCallback = Callable[[int, int], None]


class IndexProblem(RuntimeError):
    """Base class of index problems; the message says what to do."""


class IndexMissingError(IndexProblem):
    pass


class IndexMismatchError(IndexProblem):
    pass


@dataclass
class Index:
    """A loaded index: everything retrieval and reading need, in memory."""

    manifest: dict[str, Any]
    documents: dict[str, Document]
    chunks: list[Chunk]
    dense: faiss.Index
    lexical: LexicalIndex
    path: Path
    sentences: SentenceVectors

    def vectors(self) -> np.ndarray:
        """The chunk vectors, row i for chunk i (reconstructed from FAISS)."""
        if self.dense.ntotal == 0:
            return np.zeros((0, self.dense.d), dtype=np.float32)
        return self.dense.reconstruct_n(0, self.dense.ntotal)


@dataclass
class BuildReport:
    """What a build did, for the CLI, the web page and benchmarks."""

    documents: int
    chunks: int
    added: list[str]
    changed: list[str]
    removed: list[str]
    embedded_chunks: int
    seconds: float
    path: Path
    rebuilt: bool
    index: Index | None = None
    #: Corpus files that could not be read, by path, with the reason (nothing of them is
    #: indexed; the rest of the corpus is).
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def unchanged(self) -> bool:
        return not (self.added or self.changed or self.removed) and not self.rebuilt

    def describe(self) -> str:
        """One sentence on what the build did (the CLI, the web page and ``qa serve`` say it)."""
        if self.unchanged:
            said = (
                f"The index is up to date: {counted(self.documents, 'document')}, "
                f"{counted(self.chunks, 'chunk')}."
            )
        else:
            verb = "rebuilt" if self.rebuilt else "updated"
            said = (
                f"Index {verb} in {self.seconds:.1f} s: {counted(self.documents, 'document')}, "
                f"{counted(self.chunks, 'chunk')} ({len(self.added)} added, "
                f"{len(self.changed)} changed, {len(self.removed)} removed; "
                f"{counted(self.embedded_chunks, 'chunk')} embedded)."
            )
        return said + self._describe_skipped()

    def _describe_skipped(self, shown: int = 3) -> str:
        """The files skipped, as " 2 files skipped: a.html (why); b.pdf (why).", or nothing."""
        if not self.skipped:
            return ""
        items = [f"{path} ({why})" for path, why in sorted(self.skipped.items())[:shown]]
        more = len(self.skipped) - shown
        if more > 0:
            items.append(f"and {more:,} more (see the log)")
        return f" {counted(len(self.skipped), 'file')} skipped: " + "; ".join(items) + "."

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (``qa index --json``), without the index itself."""
        return {
            "documents": self.documents,
            "chunks": self.chunks,
            "added": self.added,
            "changed": self.changed,
            "removed": self.removed,
            "embedded_chunks": self.embedded_chunks,
            "rebuilt": self.rebuilt,
            "skipped": dict(self.skipped),
            "seconds": round(self.seconds, 3),
            "path": str(self.path),
        }


def chunking_settings(settings: Settings) -> dict[str, Any]:
    return {
        "unit": "tokens of the embedding model",
        "chunk_size": settings.chunk_size,
        "chunk_overlap": settings.chunk_overlap,
    }


def load_index(settings: Settings, *, embedding_name: str | None = None) -> Index:
    """Load the live index and check it was built with these settings.

    Args:
        settings: The settings asking will use.
        embedding_name: The resolved embedding model name to check against (defaults to
            resolving ``settings.embedding_model``).

    Raises:
        IndexMissingError: no index has been built yet.
        IndexMismatchError: the index was built with another model or chunking.
    """
    path = current_path(settings.index_dir)
    if not (path / "manifest.json").exists():
        raise IndexMissingError(f"no index at {settings.index_dir}: build it with `qa index`")
    path = path.resolve()
    manifest = json.loads((path / "manifest.json").read_text())
    _check_manifest(manifest, settings, embedding_name)
    documents = {d.doc_id: d for d in _read_documents(path / "documents.jsonl")}
    chunks = _read_chunks(path / "chunks.jsonl", documents)
    dense = faiss.read_index(str(path / "dense.faiss"))
    if isinstance(dense, faiss.IndexHNSW):
        dense.hnsw.efSearch = hnsw_ef_search(dense.ntotal)
    if dense.ntotal != len(chunks) or manifest["chunks"] != len(chunks):
        raise IndexMismatchError(
            f"index at {path} is inconsistent ({dense.ntotal} vectors, {len(chunks)} chunks): "
            "rebuild it with `qa index --rebuild`"
        )
    lexical = LexicalIndex.load(path / "bm25", len(chunks))
    sentences = SentenceVectors.load(path, list(documents))
    return Index(manifest, documents, chunks, dense, lexical, path, sentences)


def _check_manifest(
    manifest: dict[str, Any], settings: Settings, embedding_name: str | None
) -> None:
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexMismatchError(
            "the index was written by another version of qa: rebuild it with `qa index --rebuild`"
        )
    if embedding_name is None:
        from qa.embedding import resolve_model

        embedding_name = resolve_model(settings.embedding_model)[1]
    problems = []
    if manifest["embedding_model"] != embedding_name:
        problems.append(
            f"embedding model {manifest['embedding_model']!r} (settings: {embedding_name!r})"
        )
    if manifest["chunking"] != chunking_settings(settings):
        problems.append(
            f"chunking {manifest['chunking']} (settings: {chunking_settings(settings)})"
        )
    if problems:
        raise IndexMismatchError(
            "the index was built with "
            + "; ".join(problems)
            + ": rebuild it with `qa index --rebuild`, or use the settings it was built with"
        )


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
        previous = None
    elif previous is None or previous.path != current_path(settings.index_dir).resolve():
        previous = _load_reusable(settings, embedder)
    clock.lap("previous")
    old_hashes: dict[str, str] = previous.manifest["documents"] if previous else {}
    new_hashes = {d.doc_id: d.content_hash for d in documents}
    added = sorted(set(new_hashes) - set(old_hashes))
    removed = sorted(set(old_hashes) - set(new_hashes))
    changed = sorted(k for k in new_hashes if k in old_hashes and old_hashes[k] != new_hashes[k])

    # Per reused document: its rows in the previous chunk table.
    reused: dict[str, list[int]] = {}
    if previous is not None:
        by_doc: dict[str, list[int]] = {}
        for row, chunk in enumerate(previous.chunks):
            by_doc.setdefault(chunk.doc_id, []).append(row)
        reused = {
            doc_id: by_doc.get(doc_id, [])
            for doc_id in old_hashes
            if new_hashes.get(doc_id) == old_hashes[doc_id]
        }

    # Imported here: langchain is slow to import and only building needs it, not asking.
    from qa.chunking import Chunker, token_length_function

    # Counting tokens switches truncation and padding off in the tokenizer's shared state,
    # which questions embedded meanwhile (on other threads) rely on: count on a private copy.
    chunker = Chunker(
        settings.chunk_size,
        settings.chunk_overlap,
        token_length_function(copy.deepcopy(embedder.tokenizer)),
    )
    fresh_docs = [d for d in documents if d.doc_id not in reused]
    fresh_chunks = chunker.split_all(fresh_docs)
    clock.lap("chunking")
    fresh_vectors, fresh_sentences = _embed(
        fresh_docs, fresh_chunks, embedder, progress, show_progress
    )
    clock.lap("embedding")

    fresh_by_doc: dict[str, list[int]] = {}
    for row, chunk in enumerate(fresh_chunks):
        fresh_by_doc.setdefault(chunk.doc_id, []).append(row)
    old_vectors = previous.vectors() if previous is not None and reused else None
    chunks: list[Chunk] = []
    parts: list[np.ndarray] = []
    previous_rows: list[int] = []  # per chunk: its row in the previous index, or -1
    sentence_parts: list[tuple[int, np.ndarray, np.ndarray]] = []
    for position, doc in enumerate(documents):
        if doc.doc_id in reused:
            assert previous is not None and old_vectors is not None
            rows = reused[doc.doc_id]
            chunks.extend(previous.chunks[r] for r in rows)
            parts.append(old_vectors[rows])
            previous_rows.extend(rows)
            sentence_parts.append((position, *previous.sentences.of_document(doc.doc_id)))
        else:
            rows = fresh_by_doc.get(doc.doc_id, [])
            chunks.extend(fresh_chunks[r] for r in rows)
            parts.append(fresh_vectors[rows])
            previous_rows.extend([-1] * len(rows))
            sentence_parts.append((position, *fresh_sentences[doc.doc_id]))
    dim = embedder.dimension
    matrix = np.concatenate(parts) if parts else np.zeros((0, dim), dtype=np.float32)
    faiss_kind = _faiss_kind(settings, len(chunks))
    manifest: dict[str, object] = {
        "format_version": FORMAT_VERSION,
        "embedding_model": embedder.name,
        "dimension": dim,
        "chunking": chunking_settings(settings),
        "faiss_index": faiss_kind,
        "documents": new_hashes,
        "files": files or {},
        "chunks": len(chunks),
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    dense = make_dense_index(matrix, faiss_kind)
    clock.lap("faiss")
    lexical = LexicalIndex.build(
        [c.text for c in chunks], previous.lexical if previous is not None else None, previous_rows
    )
    clock.lap("bm25")
    sentences = _sentence_table(documents, sentence_parts, dim)
    clock.lap("sentences")
    index = Index(
        manifest=manifest,
        documents={d.doc_id: d for d in documents},
        chunks=chunks,
        dense=dense,
        lexical=lexical,
        path=Path(),
        sentences=sentences,
    )
    with _build_lock(settings.index_dir):
        index.path = _write_build(settings.index_dir, index)
        _swap(settings.index_dir, index.path)
        _prune(settings.index_dir)
    clock.lap("write")
    return BuildReport(
        documents=len(documents),
        chunks=len(chunks),
        added=added,
        changed=changed,
        removed=removed,
        embedded_chunks=len(fresh_chunks),
        seconds=time.perf_counter() - started,
        path=index.path,
        rebuilt=previous is None,
        index=index,
    )


def known_files(index: Index) -> dict[str, tuple[FileSignature, list[Document]]]:
    """Per corpus file the index recorded: its signature and its documents (for ``scan_corpus``)."""
    by_path: dict[str, list[Document]] = {}
    for doc in index.documents.values():
        by_path.setdefault(doc.path, []).append(doc)
    return {
        path: ((int(sig[0]), int(sig[1])), by_path[path])
        for path, sig in index.manifest.get("files", {}).items()
        if path in by_path
    }


def make_dense_index(vectors: np.ndarray, kind: str) -> faiss.Index:
    """An inner-product FAISS index over normalised ``vectors``: exact or HNSW."""
    dim = vectors.shape[1]
    index: faiss.Index
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = hnsw_ef_search(len(vectors))
    else:
        index = faiss.IndexFlatIP(dim)
    if len(vectors):
        # Searching runs on one OpenMP thread (qa.retrieval); building a graph uses them all.
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        try:
            index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        finally:
            faiss.omp_set_num_threads(threads)
    return index


def _faiss_kind(settings: Settings, n: int) -> str:
    if settings.faiss_index != "auto":
        return settings.faiss_index
    return "hnsw" if n > settings.hnsw_threshold else "flat"


def _load_reusable(settings: Settings, embedder: Encoder) -> Index | None:
    try:
        return load_index(settings, embedding_name=embedder.name)
    except IndexMismatchError as exc:
        log.warning("not reusing the existing index: %s", exc)
        return None
    except IndexMissingError:
        return None
    except Exception as exc:  # noqa: BLE001 - a damaged index is rebuilt, not fatal
        log.warning("existing index unreadable (%s); building from scratch", exc)
        return None


def _embed(
    documents: list[Document],
    chunks: list[Chunk],
    embedder: Encoder,
    progress: ProgressCallback | None,
    show_progress: bool,
) -> tuple[np.ndarray, dict[str, tuple[np.ndarray, np.ndarray]]]:
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


def _sentence_table(
    documents: list[Document],
    parts: list[tuple[int, np.ndarray, np.ndarray]],
    dim: int,
) -> SentenceVectors:
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


def _write_build(index_dir: Path, index: Index) -> Path:
    builds = index_dir / "builds"
    builds.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    tmp = builds / f".tmp-{stamp}-{os.getpid()}"
    tmp.mkdir()
    with (tmp / "documents.jsonl").open("w", encoding="utf-8") as fh:
        for doc in index.documents.values():
            fh.write(json.dumps(doc.to_dict(), ensure_ascii=False) + "\n")
    with (tmp / "chunks.jsonl").open("w", encoding="utf-8") as fh:
        for c in index.chunks:
            row = {
                "chunk_id": c.chunk_id,
                "doc_id": c.doc_id,
                "index": c.index,
                "start": c.start,
                "end": c.end,
            }
            fh.write(json.dumps(row) + "\n")
    faiss.write_index(index.dense, str(tmp / "dense.faiss"))
    index.lexical.save(tmp / "bm25")
    index.sentences.save(tmp)
    # The manifest goes last: a directory without one is never mistaken for a complete build.
    (tmp / "manifest.json").write_text(json.dumps(index.manifest, indent=2, ensure_ascii=False))
    _fsync_tree(tmp)
    final = builds / stamp
    os.replace(tmp, final)
    return final


def _swap(index_dir: Path, build: Path) -> None:
    link = current_path(index_dir)
    tmp_link = index_dir / f".current-{os.getpid()}"
    if tmp_link.is_symlink() or tmp_link.exists():
        tmp_link.unlink()
    tmp_link.symlink_to(build.relative_to(index_dir))
    os.replace(tmp_link, link)


def current_path(index_dir: Path) -> Path:
    return index_dir / "current"


def _prune(index_dir: Path) -> None:
    """Remove abandoned temporary builds and all complete builds but the live and previous one.

    The previous build stays so a process that resolved ``current`` just before the swap can
    still finish loading it.
    """
    builds = index_dir / "builds"
    live = current_path(index_dir).resolve()
    complete = sorted(p for p in builds.iterdir() if not p.name.startswith(".") and p != live)
    for stale in [p for p in builds.iterdir() if p.name.startswith(".tmp-")] + complete[:-1]:
        shutil.rmtree(stale, ignore_errors=True)


@contextmanager
def _build_lock(index_dir: Path) -> Iterator[None]:
    index_dir.mkdir(parents=True, exist_ok=True)
    with (index_dir / ".lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _fsync_tree(directory: Path) -> None:
    for path in directory.rglob("*"):
        if path.is_file():
            with path.open("rb") as fh:
                os.fsync(fh.fileno())


def _read_documents(path: Path) -> list[Document]:
    with path.open(encoding="utf-8") as fh:
        return [Document(**json.loads(line)) for line in fh]


def _read_chunks(path: Path, documents: dict[str, Document]) -> list[Chunk]:
    chunks = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            text = documents[row["doc_id"]].text[row["start"] : row["end"]]
            chunks.append(Chunk(text=text, **row))
    return chunks
