"""The persist stage: a build folder written, swapped in atomically, old ones pruned; loading.

Layout under ``Settings.index_dir``::

    current -> builds/<id>      a symlink, swapped atomically when a build completes
    builds/<id>/manifest.json   what the index was built from and with (small: the per-document
                                content hashes are those of documents.jsonl, the per-file
                                signatures are in files.jsonl)
    builds/<id>/files.jsonl     per corpus file, ``[path, size, mtime_ns]``; a later line of the
                                same path replaces it, a line ``{"removed": path}`` takes it out
    builds/<id>/documents.jsonl cleaned documents (the coordinate system of every offset); a
                                later line of the same id replaces a document, a line
                                ``{"removed": id}`` takes it out
    builds/<id>/chunks.jsonl    chunk table, row i = FAISS id i = BM25 row i; ``null`` for a
                                masked row (a chunk an update in place took out)
    builds/<id>/masked.npy      the masked rows, when some are (their lines in chunks.jsonl
                                may still be the chunks they were)
    builds/<id>/dense.faiss     FAISS index (inner product over normalised vectors)
    builds/<id>/dense_tail.faiss
                                the exact tail of rows updates in place added after it, if
                                any (``qa.store.TailedIndex``)
    builds/<id>/bm25/           BM25 (``qa.lexical``): terms, every row's term ids, postings
                                of the rows before the tail, the masked rows (format 5; before
                                it, bm25s's score matrix)
    builds/<id>/sentence_*      sentence offsets and vectors (``qa.sentence_vectors``), keyed by
                                chunk row (format 6), headerless; the manifest's ``sentences``
                                says how many rows are the build's own

An update in place hard-links the live build's ``documents.jsonl``, ``chunks.jsonl``,
``files.jsonl``, sentence spans and vectors files and BM25 term ids and terms, and appends to
them (``qa.appending``): the
manifest's ``table_bytes`` (and ``bm25/bm25.json``) says how much of each file is the build's
own. It hard-links the live ``dense.faiss`` and BM25 postings too, unchanged, while the new
rows fit the tails (written whole, small); every other file is written anew.

Loading memory-maps what the libraries allow rather than reading it into the process: the
FAISS index's stored vectors or codes (``faiss.IO_FLAG_MMAP_IFC``: the exact vectors of a flat
or HNSW index, the half-precision re-ranking vectors of IVF-PQ; IVF-PQ's inverted lists are
read), the BM25 postings and term ids, and the sentence vectors. So processes serving one
build on a machine share its pages, and a shard of a few GB costs its server little memory of
its own. No mapped byte is ever rewritten: the FAISS index and the BM25 postings are written
whole into each new build or linked, never changed, and the sentence vectors and BM25 term ids
files are only appended to (by a later build, through its hard link), so the mappings stay
valid (a pruned build's files live on while mapped).

A build writes a fresh ``builds/<id>`` and only then repoints ``current``, so a build that dies
half way leaves the previous index loadable. Chunk text is not stored: it is sliced from the
document on load, so a chunk and its document can never disagree.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import compress
from operator import is_not
from pathlib import Path
from typing import Any, TypeVar

import faiss
import numpy as np
import orjson

from qa.appending import link_and_append, link_files
from qa.indexing.dense import DENSE_FILE, TAIL_FILE, base_of, set_search_depth
from qa.lexical import LexicalIndex
from qa.sentence_vectors import ChunkOwners, SentenceVectors
from qa.settings import Settings
from qa.store import MASKED, Index, IndexMismatchError, IndexMissingError, TailedIndex, is_masked
from qa.types import Chunk, Document, FileSignature, row_ranges

#: 2: sentence vectors made at index time. 3: masked rows and a generation number (updates
#: in place); a version 2 index is read as one with neither. 4: table files shared and
#: appended to (``table_bytes``, ``masked.npy``, documents taken out by a later line).
#: 5: BM25 postings (``qa.lexical``). 6: the sentence table keyed by chunk rows and appended
#: to, headerless (``qa.sentence_vectors``; its rows in the manifest's ``sentences``); the
#: file signatures in ``files.jsonl``, appended to, and the documents' hashes left to
#: ``documents.jsonl``, so the manifest no longer grows with the corpus.
FORMAT_VERSION = 6
READABLE_FORMATS = (2, 3, 4, 5, 6)
#: The first index format whose sentence table keys rows by chunk row (``SentenceVectors``).
KEYED_BY_CHUNK_ROWS = 6
DOCUMENTS_FILE = "documents.jsonl"
CHUNKS_FILE = "chunks.jsonl"
FILES_FILE = "files.jsonl"
#: Manifest entries that grow with the corpus: kept in memory (``Index.manifest``), read from
#: the table files on load, never written into ``manifest.json``.
TABLE_ENTRIES = ("documents", "files")
MASKED_FILE = "masked.npy"

V = TypeVar("V")


def chunking_settings(settings: Settings) -> dict[str, Any]:
    return {
        "unit": "tokens of the embedding model",
        "chunk_size": settings.chunk_size,
        "chunk_overlap": settings.chunk_overlap,
    }


def make_manifest(
    settings: Settings,
    *,
    embedding_model: str,
    dimension: int,
    faiss_index: str,
    documents: dict[str, str],
    files: dict[str, FileSignature] | None,
    chunks: int,
    masked: int = 0,
) -> dict[str, object]:
    """What an index is built from and with, as ``manifest.json`` records it.

    Args:
        settings: The chunking settings.
        embedding_model: The resolved name of the model that embedded the chunks.
        dimension: Its vector size.
        faiss_index: ``flat``, ``hnsw`` or ``ivfpq``.
        documents: Content hash per document id.
        files: Signature per corpus file (``scan_corpus``).
        chunks: How many rows the chunk table has (FAISS holds as many vectors).
        masked: How many of them are masked.

    ``generation`` is set when the build is published (:func:`publish`).
    """
    return {
        "format_version": FORMAT_VERSION,
        "embedding_model": embedding_model,
        "dimension": dimension,
        "chunking": chunking_settings(settings),
        "faiss_index": faiss_index,
        "documents": documents,
        "files": files or {},
        "chunks": chunks,
        "masked_chunks": masked,
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
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
    manifest = orjson.loads((path / "manifest.json").read_bytes())
    _check_manifest(manifest, settings, embedding_name)
    sizes = manifest.get("table_bytes", {})
    documents = _read_documents(path / DOCUMENTS_FILE, sizes.get(DOCUMENTS_FILE))
    _read_table_entries(manifest, path, documents)
    masked = np.load(path / MASKED_FILE) if (path / MASKED_FILE).exists() else None
    chunks, derived = _read_chunks(path / CHUNKS_FILE, documents, sizes.get(CHUNKS_FILE), masked)
    base = faiss.read_index(str(path / DENSE_FILE), faiss.IO_FLAG_MMAP_IFC)
    dense: faiss.Index | TailedIndex = base
    if (path / TAIL_FILE).exists():
        dense = TailedIndex(base, faiss.read_index(str(path / TAIL_FILE)))
    set_search_depth(dense)
    if dense.ntotal != len(chunks) or manifest["chunks"] != len(chunks):
        raise IndexMismatchError(
            f"index at {path} is inconsistent ({dense.ntotal} vectors, {len(chunks)} chunks): "
            "rebuild it with `qa index --rebuild`"
        )
    lexical = LexicalIndex.load(path / "bm25", len(chunks))
    if manifest["format_version"] >= KEYED_BY_CHUNK_ROWS:
        sentences = SentenceVectors.load(
            path, ChunkOwners(chunks), int(manifest["dimension"]), int(manifest["sentences"])
        )
    else:
        sentences = SentenceVectors.load(path, list(documents), int(manifest["dimension"]))
    return Index(
        manifest, documents, chunks, dense, lexical, path, sentences, True, derived=derived
    )


def _check_manifest(
    manifest: dict[str, Any], settings: Settings, embedding_name: str | None
) -> None:
    if manifest.get("format_version") not in READABLE_FORMATS:
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


def publish(
    index_dir: Path,
    index: Index,
    base: Index | None = None,
    touched: Collection[str] | None = None,
    touched_files: Collection[str] | None = None,
) -> Path:
    """Write ``index`` as a new build, make it the live one, prune old builds; its folder.

    Under the build lock, so two processes building the same index take turns; the build's
    ``generation`` is the live one's plus one (1 for the first).

    Args:
        index_dir: Where the builds are.
        index: The index to write.
        base: The index ``index`` was made from by an update in place (its documents and
            chunk rows, masks aside, are the first of ``index``'s): when it is still the live
            build, its table files are shared and appended to instead of written whole.
        touched: Ids of the only documents of ``index`` that may differ from ``base``'s (see
            ``qa.indexing.build.build_index``): the documents file then gets their lines
            alone, found without a comparison of every document.
        touched_files: With ``touched``, the only corpus files whose signatures may differ
            from ``base``'s: the files table gets their lines alone, likewise.
    """
    # Absolute, so the build's path (``Index.path``) compares equal to the live one's resolved
    # link: pruning keeps the build before, and the next update in place finds its base live.
    index_dir = Path(index_dir).resolve()
    with _build_lock(index_dir):
        live = current_path(index_dir).resolve() if current_path(index_dir).exists() else None
        # The live manifest is read only where ``base`` is not the live build already loaded.
        known = base.manifest.get("generation") if base is not None and base.path == live else None
        index.manifest["generation"] = (
            known if known is not None else _live_generation(index_dir)
        ) + 1
        path = _write_build(index_dir, index, live, base, touched, touched_files)
        _swap(index_dir, path)
        _prune(index_dir)
    return path


def current_path(index_dir: Path) -> Path:
    return index_dir / "current"


def _live_generation(index_dir: Path) -> int:
    try:
        manifest = orjson.loads((current_path(index_dir) / "manifest.json").read_bytes())
    except (OSError, ValueError):
        return 0
    return int(manifest.get("generation", 0))


def _write_build(
    index_dir: Path,
    index: Index,
    live: Path | None,
    base: Index | None,
    touched: Collection[str] | None = None,
    touched_files: Collection[str] | None = None,
) -> Path:
    builds = index_dir / "builds"
    builds.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    tmp = builds / f".tmp-{stamp}-{os.getpid()}"
    tmp.mkdir()
    shared = live is not None and base is not None and base.path == live
    index.manifest["table_bytes"] = _write_tables(
        tmp, index, base if shared else None, touched, touched_files
    )
    if index.masked:
        assert index.live_rows is not None
        np.save(tmp / MASKED_FILE, np.flatnonzero(~index.live_rows))
    _write_dense(tmp, index.dense, base if shared else None)
    index.lexical.save(tmp / "bm25", base.path / "bm25" if shared and base else None)
    index.sentences.save(tmp, live)
    index.manifest["sentences"] = len(index.sentences)
    # The manifest goes last: a directory without one is never mistaken for a complete build.
    # Without the entries the table files hold: at 170,000 documents their hashes and file
    # signatures made it 27 MB, written whole by every update.
    written = {k: v for k, v in index.manifest.items() if k not in TABLE_ENTRIES}
    (tmp / "manifest.json").write_bytes(orjson.dumps(written))
    _fsync_tree(tmp)
    final = builds / stamp
    os.replace(tmp, final)
    return final


def _write_dense(tmp: Path, dense: faiss.Index | TailedIndex, base: Index | None) -> None:
    """Write the FAISS index, and its exact tail if it has one; an index that is the live
    build's (``base``, the live index an update in place grew) is hard-linked from it instead."""
    index = base_of(dense)
    if isinstance(dense, TailedIndex):
        faiss.write_index(dense.tail, str(tmp / TAIL_FILE))
        if base is not None and base_of(base.dense) is index:
            if link_files(base.path, tmp, (DENSE_FILE,)):
                return
    faiss.write_index(index, str(tmp / DENSE_FILE))


def _swap(index_dir: Path, build: Path) -> None:
    link = current_path(index_dir)
    tmp_link = index_dir / f".current-{os.getpid()}"
    if tmp_link.is_symlink() or tmp_link.exists():
        tmp_link.unlink()
    tmp_link.symlink_to(build.relative_to(index_dir))
    os.replace(tmp_link, link)


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
    with (index_dir / ".lock").open("w", encoding="utf-8") as fh:
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


def _write_tables(
    tmp: Path,
    index: Index,
    base: Index | None,
    touched: Collection[str] | None = None,
    touched_files: Collection[str] | None = None,
) -> dict[str, int]:
    """Write the build's ``documents.jsonl``, ``chunks.jsonl`` and ``files.jsonl``; the bytes
    of each that are the build's (``table_bytes``).

    From a ``base`` that is the live build (of format 4), each file is the live one's,
    hard-linked, with the documents and files added, changed or removed since and the new chunk
    rows appended (the rows the update masked are listed in ``masked.npy``); otherwise, or
    where that fails, written whole. A base of format 5 or before keeps its file signatures in
    its manifest: ``files.jsonl`` is then written whole.
    """
    # A base of format 3 or before reads its table files whole: appending to them would
    # change that build, which a process may still be loading.
    kept = base.manifest.get("table_bytes") if base is not None else None
    files = index.manifest.get("files") or {}
    if base is not None and kept is not None:
        documents = _encode_lines(
            _table_changes(base.documents, index.documents, _document_line, touched)
        )
        chunks = _encode_lines(_chunk_row(c) for c in index.chunks[len(base.chunks) :])
        if link_and_append(
            base.path / DOCUMENTS_FILE, tmp / DOCUMENTS_FILE, kept[DOCUMENTS_FILE], documents
        ):
            if link_and_append(
                base.path / CHUNKS_FILE, tmp / CHUNKS_FILE, kept[CHUNKS_FILE], chunks
            ):
                changes = (
                    _encode_lines(
                        _table_changes(
                            base.manifest.get("files") or {}, files, _file_line, touched_files
                        )
                    )
                    if FILES_FILE in kept
                    else b""
                )
                shared = FILES_FILE in kept and link_and_append(
                    base.path / FILES_FILE, tmp / FILES_FILE, kept[FILES_FILE], changes
                )
                return {
                    DOCUMENTS_FILE: kept[DOCUMENTS_FILE] + len(documents),
                    CHUNKS_FILE: kept[CHUNKS_FILE] + len(chunks),
                    FILES_FILE: kept[FILES_FILE] + len(changes)
                    if shared
                    else _write_files(tmp, files),
                }
            (tmp / DOCUMENTS_FILE).unlink()
    return {
        DOCUMENTS_FILE: _write_lines(
            tmp / DOCUMENTS_FILE, (doc.to_dict() for doc in index.documents.values())
        ),
        CHUNKS_FILE: _write_lines(tmp / CHUNKS_FILE, (_chunk_row(c) for c in index.chunks)),
        FILES_FILE: _write_files(tmp, files),
    }


def _write_files(tmp: Path, files: Mapping[str, Sequence[int]]) -> int:
    """Write ``files.jsonl`` whole: a line per file, by path; the bytes written."""
    return _write_lines(tmp / FILES_FILE, (_file_line(p, files[p]) for p in sorted(files)))


def _read_table_entries(
    manifest: dict[str, Any], path: Path, documents: dict[str, Document]
) -> None:
    """Put into ``manifest`` the entries of a build of format 6 that its table files hold (see
    ``TABLE_ENTRIES``): the content hash of every document, each file's signature."""
    if "documents" not in manifest:
        manifest["documents"] = {d: doc.content_hash for d, doc in documents.items()}
    if "files" not in manifest:
        sizes = manifest.get("table_bytes", {})
        files: dict[str, FileSignature] = {}
        if (path / FILES_FILE).exists():
            for line in _lines(path / FILES_FILE, sizes.get(FILES_FILE)):
                row = orjson.loads(line)
                if isinstance(row, dict):
                    files.pop(row["removed"], None)
                else:
                    files[row[0]] = (int(row[1]), int(row[2]))
        manifest["files"] = files


def stored_hashes(build: Path) -> dict[str, str]:
    """The content hash of every document of the build in folder ``build``, read from its
    manifest and documents table alone (nothing else of the index is loaded)."""
    manifest = orjson.loads((build / "manifest.json").read_bytes())
    if "documents" in manifest:
        return dict(manifest["documents"])
    sizes = manifest.get("table_bytes", {})
    documents = _read_documents(build / DOCUMENTS_FILE, sizes.get(DOCUMENTS_FILE))
    return {d: doc.content_hash for d, doc in documents.items()}


def _table_changes(
    before: Mapping[str, V],
    after: Mapping[str, V],
    line: Callable[[str, V], Any],
    touched: Collection[str] | None = None,
) -> Iterator[Any]:
    """The lines of a table file keyed like ``before`` and ``after`` (``line`` makes an
    entry's; a later line of a key replaces it, ``{"removed": key}`` takes it out) that make
    ``before`` into ``after``, where only the keys ``touched`` may differ, those alone looked
    at: the documents of ``documents.jsonl``, the file signatures of ``files.jsonl``."""
    if touched is not None:
        for key in sorted(touched):
            value = after.get(key)
            if value is None:
                if key in before:
                    yield {"removed": key}
            elif before.get(key) != value:
                yield line(key, value)
        return
    for key in sorted(before.keys() - after.keys()):
        yield {"removed": key}
    # The entries an update kept are the very objects of ``before``: an identity test,
    # mapped in C over every entry, leaves the few others to compare (at 170,000 documents a
    # Python loop over all took 0.1 s of each update).
    for key in compress(after, map(is_not, map(before.get, after), after.values())):
        value = after[key]
        if before.get(key) != value:
            yield line(key, value)


def _document_line(_: str, doc: Document) -> dict[str, Any]:
    return doc.to_dict()


def _file_line(path: str, signature: Sequence[int]) -> list[Any]:
    return [path, *signature]


def _chunk_row(chunk: Chunk) -> dict[str, Any] | None:
    """A chunk's ``chunks.jsonl`` line (its text is sliced from its document on load)."""
    if is_masked(chunk):
        return None
    return {
        "chunk_id": chunk.chunk_id,
        "doc_id": chunk.doc_id,
        "index": chunk.index,
        "start": chunk.start,
        "end": chunk.end,
    }


def _json_line(row: Any) -> bytes:
    """One line of a table file."""
    return (json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8")


def _encode_lines(rows: Iterable[Any]) -> bytes:
    return b"".join(map(_json_line, rows))


def _write_lines(path: Path, rows: Iterable[Any]) -> int:
    """Write ``rows`` to ``path`` as JSON lines; the bytes written."""
    with path.open("wb") as fh:
        return sum(fh.write(_json_line(row)) for row in rows)


def _lines(path: Path, size: int | None) -> Iterator[bytes]:
    """The lines of ``path``'s first ``size`` bytes (all of them for None): a shared table
    file may run on past a build's own share."""
    left = size
    with path.open("rb") as fh:
        for line in fh:
            if left is not None:
                if left <= 0:
                    return
                left -= len(line)
            yield line
    if left:
        raise IndexMismatchError(
            f"{path} is shorter than its build says: rebuild it with `qa index --rebuild`"
        )


def _read_documents(path: Path, size: int | None) -> dict[str, Document]:
    documents: dict[str, Document] = {}
    for line in _lines(path, size):
        row = json.loads(line)
        if "removed" in row:
            documents.pop(row["removed"], None)
        else:
            documents[row["doc_id"]] = Document(**row)
    if size is None:
        return documents
    # Appended to (format 4): in document id order, as a build orders them.
    return dict(sorted(documents.items()))


def _read_chunks(
    path: Path, documents: dict[str, Document], size: int | None, masked: np.ndarray | None
) -> tuple[list[Chunk], dict[str, Any]]:
    """The chunk table, and the tables ``Index`` derives from it, found at load rather than
    by the first update (``live``, and ``document_rows`` where each document's rows are
    consecutive)."""
    out = set() if masked is None else set(masked.tolist())
    chunks = []
    dead: list[int] = []
    for n, line in enumerate(_lines(path, size)):
        row = json.loads(line)
        if row is None or n in out:
            chunks.append(MASKED)
            dead.append(n)
            continue
        text = documents[row["doc_id"]].text[row["start"] : row["end"]]
        chunks.append(Chunk(text=text, **row))
    live = np.ones(len(chunks), bool)
    live[dead] = False
    ranges = row_ranges(chunks)
    return chunks, {"live": live} if ranges is None else {"live": live, "document_rows": ranges}
