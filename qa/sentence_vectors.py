"""Sentence vectors made at index time, so answering a question embeds nothing but the question.

Reading scores every sentence of the retrieved passages against the question (see
``qa.text``). Embedding those sentences when the question comes costs 100-200 ms
on a CPU core for the five passages of one question; embedding them on their own at index time
would add about 70% to the build. Instead, a sentence's vector is pooled from the token vectors
of a chunk that holds it, which the build computes anyway to embed that chunk: the mean of the
sentence's own token vectors, L2-normalised, the same mean pooling the model applies to a whole
text, over a sub-span. On eval/seed.jsonl these contextual vectors answered as well as vectors of
the sentences embedded alone (reader F1 0.76 against 0.78 at the shipped threshold, sentence mode
0.27 against 0.27: within one question of 85), at no embedding cost.

A sentence wholly inside a chunk takes its tokens from the first such chunk; one cut by chunk
boundaries (longer than the overlap) pools its pieces from every chunk that holds part of it.
A sentence with no token of its own in any chunk (only possible with unusual settings) is
embedded on its own.

Sentences are those of ``qa.text.split_sentences`` on the cleaned document text,
stored with their offsets; a lookup checks the offsets, so a sentence the index does not know
(another segmenter version, a passage from outside the index) is simply embedded when asked.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import overload

import numpy as np

from qa.appending import link_and_append
from qa.types import Chunk, Document, rows_by_document

#: The vectors as index format 2 saved them; format 3 saves them headerless (``RAW_VECTORS_FILE``)
#: so that an update in place can append to them.
VECTORS_FILE = "sentence_vectors.npy"
RAW_VECTORS_FILE = "sentence_vectors.f16"
#: The spans as formats 2 to 5 saved them, each build's whole; format 6 saves them headerless
#: (``RAW_SPANS_FILE``: int64 rows of three) and appends to them as to the vectors.
SPANS_FILE = "sentence_spans.npy"
RAW_SPANS_FILE = "sentence_spans.i64"


class StackedRows:
    """Row blocks of one float16 ``(n, dim)`` table, read as that table without being copied
    into one array.

    An update in place adds a few rows to a table of tens of thousands (millions at 10^6
    chunks) whose first block is mapped from the live build's file: copying them all together
    cost each update 0.01 to 0.4 s at BBC's 43,000 sentences (page faults of the mapped file and
    of the new array), and would cost gigabytes at 10^6 chunks. A document's rows lie in one
    block, so the slices ``SentenceVectors`` reads are views.
    """

    #: Blocks kept apart at most; past it, every block after the first is joined (the first
    #: is the mapped one, as large as the table).
    MAX_BLOCKS = 32

    blocks: list[np.ndarray]

    def __init__(self, blocks: Sequence[np.ndarray | StackedRows]) -> None:
        flat: list[np.ndarray] = []
        for block in blocks:
            flat.extend(block.blocks if isinstance(block, StackedRows) else [block])
        kept = [b for b in flat if len(b)] or flat[:1]
        if not kept:
            raise ValueError("a table needs at least one block (it may be empty)")
        if len({b.shape[1:] for b in kept}) != 1 or len({b.dtype for b in kept}) != 1:
            raise ValueError("blocks of one table must share their row shape and dtype")
        if len(kept) > self.MAX_BLOCKS:
            kept = [kept[0], np.concatenate(kept[1:])]
        self.blocks = kept
        self._starts = np.cumsum([0, *(len(b) for b in kept)]).tolist()

    @classmethod
    def of(cls, *blocks: np.ndarray | StackedRows) -> np.ndarray | StackedRows:
        """The table of ``blocks`` in order: the one block itself where there is only one."""
        stacked = cls(blocks)
        return stacked.blocks[0] if len(stacked.blocks) == 1 else stacked

    def __len__(self) -> int:
        return int(self._starts[-1])

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self), *self.blocks[0].shape[1:])

    @property
    def dtype(self) -> np.dtype:
        return self.blocks[0].dtype

    def __getitem__(self, key: int | slice) -> np.ndarray:
        """Row ``key`` or rows ``lo:hi`` (a view where they lie in one block)."""
        n = len(self)
        if isinstance(key, slice):
            lo, hi, step = key.indices(n)
            if step != 1:
                raise IndexError("only contiguous row ranges are read from a stacked table")
            hi = max(lo, hi)
            first = bisect.bisect_right(self._starts, lo) - 1
            if first >= len(self.blocks) or hi <= self._starts[first + 1]:
                block = self.blocks[min(first, len(self.blocks) - 1)]
                start = self._starts[min(first, len(self.blocks) - 1)]
                return block[lo - start : hi - start]
            pieces = []
            for b, block in enumerate(self.blocks):
                a, z = max(lo, self._starts[b]), min(hi, self._starts[b + 1])
                if a < z:
                    pieces.append(block[a - self._starts[b] : z - self._starts[b]])
            return np.concatenate(pieces)
        row = int(key) + n if int(key) < 0 else int(key)
        if not 0 <= row < n:
            raise IndexError(f"row {key} out of range for {n} rows")
        b = bisect.bisect_right(self._starts, row) - 1
        return self.blocks[b][row - self._starts[b]]

    def __array__(self, dtype: np.dtype | None = None, copy: bool | None = None) -> np.ndarray:
        joined = np.concatenate(self.blocks)
        return joined if dtype is None else joined.astype(dtype, copy=False)


@dataclass
class SentenceVectors:
    """Vectors of every sentence of the indexed documents.

    Attributes:
        doc_ids: The document each key of ``spans`` names (``doc_ids[key]``), None for a key
            that names none. An index's table (format 6) keys each sentence by a chunk row of
            its document, which updates in place never renumber, so the rows a table had
            stay as they are when it grows; ``doc_ids`` is then the chunk table's document
            ids (None on masked rows: the sentences of a document taken out name no
            document). Tables of formats 2 to 5 key by the document's position in id order.
        spans: ``(n, 3)`` int64 rows of (key, start, end), grouped by document, in text order
            within one; key -1 marks a row an update in place left behind in formats 2 to 5
            (its document removed or changed). An update in place's are the previous table's
            and its own blocks (``StackedRows``).
        vectors: ``(n, dim)`` float16 unit vectors, row i for span i (an update in place's
            are the previous table's and its own blocks, ``StackedRows``).
        base: ``(build folder, m)`` when the first ``m`` rows are those of that build's vectors
            file (an update in place): saving then links that file and appends the rest.
        blocks: Per document id, its rows ``(first, end)``, where the maker knows them (an
            update in place, from the table before: see :meth:`document_blocks`); found from
            ``spans`` otherwise.
    """

    doc_ids: Sequence[str | None]
    spans: np.ndarray | StackedRows
    vectors: np.ndarray | StackedRows
    base: tuple[Path, int] | None = None
    blocks: dict[str, tuple[int, int]] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.blocks is not None:
            self._rows = self.blocks
            return
        # A document's rows are one block (a build writes them together, an update in place
        # appends new documents' blocks), so its rows are found by where the owner changes,
        # in one pass, without sorting millions of rows.
        keys = np.asarray(self.spans)[:, 0]
        live = np.flatnonzero(keys >= 0)
        owners = keys[live]
        starts = np.flatnonzero(np.r_[True, owners[1:] != owners[:-1]]) if len(live) else live
        ends = np.r_[starts[1:], len(live)]
        first, sizes = live[starts].tolist(), (ends - starts).tolist()
        blocks = zip(owners[starts].tolist(), first, sizes, strict=True)
        doc_ids = self.doc_ids
        rows = ((doc_ids[k], r, n) for k, r, n in blocks)
        self._rows = {d: (r, r + n) for d, r, n in rows if d is not None}

    def __len__(self) -> int:
        return len(self.spans)

    def document_blocks(self) -> dict[str, tuple[int, int]]:
        """Per document id, its rows ``(first, end)`` (a copy, for a table made from this)."""
        return dict(self._rows)

    def of_document(self, doc_id: str) -> tuple[np.ndarray, np.ndarray]:
        """``(spans (m, 2), vectors (m, dim))`` of one document (empty if unknown)."""
        lo, hi = self._rows.get(doc_id, (0, 0))
        return self.spans[lo:hi][:, 1:], self.vectors[lo:hi]

    def lookup(self, doc_id: str, spans: Sequence[tuple[int, int]]) -> list[np.ndarray | None]:
        """The float32 vector of each ``(start, end)`` sentence of ``doc_id`` (None: unknown)."""
        lo, hi = self._rows.get(doc_id, (0, 0))
        where = {
            (int(a), int(b)): lo + i for i, (a, b) in enumerate(self.spans[lo:hi][:, 1:].tolist())
        }
        out: list[np.ndarray | None] = []
        for span in spans:
            row = where.get((int(span[0]), int(span[1])))
            out.append(None if row is None else np.asarray(self.vectors[row], dtype=np.float32))
        return out

    def save(self, directory: Path, live: Path | None = None) -> None:
        """Write the spans and the vectors, both headerless, into a new build folder.

        When this table's first rows are those of ``live``'s files (``base``, and ``live`` is
        the live build folder), those files are hard-linked and only the new rows appended:
        the builds share them, each reading as many rows as its manifest says (``sentences``),
        so the live one never sees the rows appended past its own (nor rows a failed build
        left there, which the next one cuts off first). A live build of format 5 or before
        has no headerless spans: they are written whole then, the vectors still appended.
        """
        shared = self.base[1] if self.base is not None and self.base[0] == live else -1
        for name, table, dtype in (
            (RAW_SPANS_FILE, self.spans, np.int64),
            (RAW_VECTORS_FILE, self.vectors, np.float16),
        ):
            target = directory / name
            if live is not None and shared >= 0:
                row_bytes = np.dtype(dtype).itemsize * int(np.prod(table.shape[1:]))
                tail = np.ascontiguousarray(table[shared:], dtype=dtype).tobytes()
                if link_and_append(live / name, target, shared * row_bytes, tail):
                    continue
            blocks = table.blocks if isinstance(table, StackedRows) else [table]
            with target.open("wb") as fh:
                for block in blocks:
                    np.ascontiguousarray(block, dtype=dtype).tofile(fh)

    @classmethod
    def load(
        cls, directory: Path, doc_ids: Sequence[str | None], dim: int, rows: int | None = None
    ) -> SentenceVectors:
        """Load from a build folder; the spans and vectors are memory-mapped, not read.

        Args:
            directory: The build folder.
            doc_ids: The document of each key (see the class).
            dim: The vector size.
            rows: The build's own rows, where its files are headerless and may run on past
                them (format 6: the manifest's ``sentences``); None: the spans file says.
        """
        if rows is not None:
            spans: np.ndarray = (
                np.memmap(directory / RAW_SPANS_FILE, np.int64, mode="r", shape=(rows, 3))
                if rows
                else np.zeros((0, 3), np.int64)
            )
        else:
            spans = np.load(directory / SPANS_FILE)
        if not (directory / RAW_VECTORS_FILE).exists():
            vectors = np.load(directory / VECTORS_FILE, mmap_mode="r")
        elif len(spans) == 0:
            vectors = np.zeros((0, dim), np.float16)
        else:
            # Maps this build's rows only: the file may run on (see ``save``).
            vectors = np.memmap(
                directory / RAW_VECTORS_FILE, np.float16, mode="r", shape=(len(spans), dim)
            )
        if len(spans) != len(vectors):
            raise ValueError(f"{len(spans)} sentence spans but {len(vectors)} sentence vectors")
        # Plain arrays over the mappings: slices of a ``np.memmap`` run its Python hooks.
        return cls(doc_ids, spans.view(np.ndarray), vectors)


class ChunkOwners(Sequence[str | None]):
    """The document of each row of a chunk table (None on a masked row), read from the table
    as asked: the keys of an index's sentence table, without a list of 10^6 ids made."""

    def __init__(self, chunks: Sequence[Chunk]) -> None:
        self._chunks = chunks

    def __len__(self) -> int:
        return len(self._chunks)

    @overload
    def __getitem__(self, row: int) -> str | None: ...
    @overload
    def __getitem__(self, row: slice) -> list[str | None]: ...
    def __getitem__(self, row: int | slice) -> str | None | list[str | None]:
        if isinstance(row, slice):
            return [c.doc_id or None for c in self._chunks[row]]
        return self._chunks[row].doc_id or None


def first_rows(chunks: Sequence[Chunk]) -> dict[str, int]:
    """Per document of a chunk table, its first row (masked rows left out)."""
    first: dict[str, int] = {}
    for row, chunk in enumerate(chunks):
        if chunk.doc_id:
            first.setdefault(chunk.doc_id, row)
    return first


def chunk_sentence_spans(
    documents: Sequence[Document], chunks: Sequence[Chunk]
) -> tuple[list[list[tuple[int, int]]], list[list[tuple[int, ...]]]]:
    """Which sentence pieces each chunk must pool, and where each sentence's pieces are.

    Args:
        documents: The documents being embedded.
        chunks: Their chunks, grouped by document in text order (as the chunker returns them).

    Returns:
        ``(requests, plan)``: ``requests[c]`` lists the chunk-relative ``(start, end)`` spans to
        pool in chunk ``c``; ``plan[d]`` lists, for each sentence of document ``d`` in order,
        the tuple ``(start, end, c1, r1, c2, r2, ...)``: its offsets, then the
        ``(chunk, request)`` index pairs whose pools add up to it.
    """
    from qa.text import split_sentences

    by_doc = rows_by_document(chunks)
    requests: list[list[tuple[int, int]]] = [[] for _ in chunks]
    plan: list[list[tuple[int, ...]]] = []
    for doc in documents:
        rows = by_doc.get(doc.doc_id, [])
        doc_plan: list[tuple[int, ...]] = []
        for s in split_sentences(doc.text):
            whole = next(
                (c for c in rows if chunks[c].start <= s.start and s.end <= chunks[c].end), None
            )
            holders = (
                [whole]
                if whole is not None
                else [c for c in rows if chunks[c].start < s.end and s.start < chunks[c].end]
            )
            pieces: list[int] = [s.start, s.end]
            for c in holders:
                base = chunks[c].start
                requests[c].append((max(s.start, base) - base, min(s.end, chunks[c].end) - base))
                pieces += [c, len(requests[c]) - 1]
            doc_plan.append(tuple(pieces))
        plan.append(doc_plan)
    return requests, plan


def assemble(
    documents: Sequence[Document],
    plan: list[list[tuple[int, ...]]],
    pools: Sequence[tuple[np.ndarray, np.ndarray]],
    embed_alone: Callable[[list[str]], np.ndarray],
    dim: int,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per document, its sentence spans ``(m, 2)`` and unit vectors ``(m, dim)`` (float16).

    Args:
        documents: As given to ``chunk_sentence_spans``.
        plan: Its plan.
        pools: Per chunk, ``(sums (r, dim), counts (r,))`` of the token vectors in each
            requested span (``Embedder.encode_pooled``).
        embed_alone: Encodes a list of texts (for sentences no chunk token fell in).
        dim: Vector dimension.
    """
    spans_out: list[np.ndarray] = []
    vectors_out: list[np.ndarray] = []
    orphans: list[tuple[int, int, str]] = []
    for d, (doc, doc_plan) in enumerate(zip(documents, plan, strict=True)):
        spans = np.zeros((len(doc_plan), 2), np.int64)
        vectors = np.zeros((len(doc_plan), dim), np.float32)
        for i, entry in enumerate(doc_plan):
            spans[i] = entry[:2]
            total = np.zeros(dim, np.float64)
            count = 0
            for c, r in zip(entry[2::2], entry[3::2], strict=True):
                total += pools[c][0][r]
                count += int(pools[c][1][r])
            norm = float(np.linalg.norm(total))
            if count and norm > 0:
                vectors[i] = total / norm
            else:
                orphans.append((d, i, doc.text[entry[0] : entry[1]]))
        spans_out.append(spans)
        vectors_out.append(vectors)
    if orphans:
        alone = embed_alone([text for _, _, text in orphans])
        for (d, i, _), vector in zip(orphans, alone, strict=True):
            vectors_out[d][i] = vector
    return spans_out, [v.astype(np.float16) for v in vectors_out]
