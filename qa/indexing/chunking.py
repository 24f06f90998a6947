"""Split documents into overlapping, sentence-aware chunks with exact offsets.

Chunk length is counted in tokens of the embedding model's tokenizer (see ``Settings``), so a
chunk never exceeds what the embedding model reads. The splitting rules are those of
langchain's ``RecursiveCharacterTextSplitter``: try paragraph breaks, then sentence ends, then
clause marks, then spaces, then characters, so text with no punctuation at all still makes
bounded chunks; merge neighbouring pieces up to the chunk size, carrying a tail of at most the
overlap into the next chunk.

The rules are applied here to positions rather than to strings. langchain hands back chunk
texts only, and finding them again in the document is both wrong and slow: its
``add_start_index`` uses ``str.find``, which points at an earlier copy of a repeated text, and
any search for the right copy costs far more than linear time on text that repeats without
spaces (a line of ``=====``, one character 40,000 times). Every piece the rules make is a slice
of the document by construction, so offsets are exact and the work is linear in the text's
length. The tests hold the chunk texts to langchain's own output.
"""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Callable, Iterable
from itertools import pairwise

from qa.types import Chunk, Document

#: Paragraphs, lines, sentence ends (incl. the curly quotes news text closes sentences with),
#: clauses, words, characters: coarsest first.
SEPARATORS = [
    "\n\n",
    "\n",
    ". ",
    ".” ",
    '." ',
    "? ",
    "! ",
    "; ",
    ": ",
    ", ",
    " ",
    "",
]

LengthFunction = Callable[[str], int]
Span = tuple[int, int]


class Chunker:
    """Splits documents into chunks whose offsets index into ``Document.text``.

    Args:
        chunk_size: Maximum chunk length in units of ``length_function``.
        chunk_overlap: Overlap between consecutive chunks, same unit.
        length_function: Measures a piece of text (token count of the embedding tokenizer in
            production; ``len`` in tests).
    """

    def __init__(
        self, chunk_size: int, chunk_overlap: int, length_function: LengthFunction = len
    ) -> None:
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap
        self._length = length_function
        #: Measures all the parts of a split at once where the length function can.
        self._lengths: Callable[[list[str]], list[int]] = getattr(
            length_function, "many", lambda texts: [length_function(t) for t in texts]
        )

    def split(self, doc: Document) -> list[Chunk]:
        """Split one document; chunks come in document order."""
        return [
            Chunk(
                chunk_id=f"{doc.doc_id}::{index}",
                doc_id=doc.doc_id,
                index=index,
                start=start,
                end=end,
                text=doc.text[start:end],
            )
            for index, (start, end) in enumerate(self.spans(doc.text))
        ]

    def split_all(self, docs: Iterable[Document]) -> list[Chunk]:
        return [chunk for doc in docs for chunk in self.split(doc)]

    def spans(self, text: str) -> list[Span]:
        """``(start, end)`` of each chunk of ``text``, in order.

        ``text[start:end]`` is the chunk langchain's ``RecursiveCharacterTextSplitter`` makes
        with ``separators=SEPARATORS``, ``keep_separator="end"`` and ``strip_whitespace=True``,
        less any chunk that starts where the next one starts (langchain can emit ``"a"`` then
        ``"a b"`` when the overlap carries a whole chunk over): every start is unique and no
        text is lost, since the next chunk holds it.
        """
        spans = self._split(text, 0, len(text), SEPARATORS)
        return [s for s, after in pairwise([*spans, (-1, -1)]) if s[0] != after[0]]

    def _split(self, text: str, start: int, end: int, separators: list[str]) -> list[Span]:
        """Chunks of ``text[start:end]``: split at the coarsest separator found, merge the
        pieces that fit, split the ones that do not with the finer separators."""
        piece = text[start:end]
        separator, finer = "", []
        for i, candidate in enumerate(separators):
            if not candidate or candidate in piece:
                separator, finer = candidate, separators[i + 1 :]
                break
        chunks: list[Span] = []
        fitting: list[tuple[Span, int]] = []
        at = start
        parts = _split_keeping_end(piece, separator)
        for part, length in zip(parts, self._lengths(parts), strict=True):
            span = (at, at + len(part))
            at = span[1]
            if length < self.chunk_size:
                fitting.append((span, length))
                continue
            chunks.extend(self._merge(text, fitting))
            fitting = []
            # Only single characters come out of the "" separator, which has nothing finer.
            chunks.extend(self._split(text, *span, finer) if finer else [span])
        chunks.extend(self._merge(text, fitting))
        return chunks

    def _merge(self, text: str, parts: list[tuple[Span, int]]) -> list[Span]:
        """Merge consecutive parts into chunks of at most ``chunk_size``, each starting with
        the previous chunk's last parts that measure at most ``chunk_overlap`` in all.

        The parts join with nothing between them (separators stay at the end of their part),
        so a chunk is the slice from its first part's start to its last part's end, less white
        space at either end; a chunk of only white space is dropped.
        """
        chunks: list[Span] = []
        current: deque[tuple[Span, int]] = deque()
        total = 0
        for span, length in parts:
            if current and total + length > self.chunk_size:
                chunks.append(_strip(text, current[0][0][0], current[-1][0][1]))
                # langchain's rule, kept exactly: parts measuring 0 (white space) may stay.
                while total > self.chunk_overlap or (
                    total + length > self.chunk_size and total > 0
                ):
                    total -= current.popleft()[1]
            current.append((span, length))
            total += length
        if current:
            chunks.append(_strip(text, current[0][0][0], current[-1][0][1]))
        return [(start, end) for start, end in chunks if start < end]


def _split_keeping_end(text: str, separator: str) -> list[str]:
    """Split ``text`` after each ``separator`` (kept at the end of its part); ``""`` splits
    into characters. The non-empty parts, which put together give ``text`` back."""
    if not separator:
        return list(text)
    parts = text.split(separator)
    return [p for p in (*(p + separator for p in parts[:-1]), parts[-1]) if p]


def _strip(text: str, start: int, end: int) -> Span:
    """``(start, end)`` narrowed to exclude white space at either end (as ``str.strip``)."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


class TokenCounter:
    """Counts word pieces the way the embedding model will see them (without special tokens):
    a length function (``counter(text)``) that also measures many texts in one call
    (``counter.many(texts)``), which the chunker uses for the parts of each split.

    A fast tokenizer is asked for a whole split's parts at once, through a copy of its Rust
    backend with truncation and padding switched off (the tokenizer's own backend is shared by
    every thread embedding questions, and set to truncate and pad). One call per split instead
    of one transformers call per part (~0.25 ms each, most of it Python around the tokenizer)
    made the chunking of the BBC corpus several times faster; the counts are the same. A slow
    tokenizer is called per text. Memoised either way: the splitter measures the same text more
    than once (on the BBC articles, 7,480 measurements of 2,941 distinct texts).
    """

    def __init__(self, tokenizer, memo: int = 16_384) -> None:  # noqa: ANN001 - any HF tokenizer
        self._tokenizer = tokenizer
        backend = getattr(tokenizer, "backend_tokenizer", None)
        self._backend = copy.deepcopy(backend)
        if self._backend is not None:
            self._backend.no_truncation()
            self._backend.no_padding()
        self._memo: dict[str, int] = {}
        self._room = memo

    def __call__(self, text: str) -> int:
        return self.many([text])[0]

    def many(self, texts: list[str]) -> list[int]:
        """The word pieces of each of ``texts``."""
        memo = self._memo
        unknown = list(dict.fromkeys(t for t in texts if t not in memo))
        if unknown:
            if len(memo) + len(unknown) > self._room:
                # Full: start again, keeping what this call still reads from it.
                known = {t: memo[t] for t in texts if t in memo}
                memo.clear()
                memo.update(known)
            memo.update(zip(unknown, self._count(unknown), strict=True))
        return [memo[t] for t in texts]

    def _count(self, texts: list[str]) -> list[int]:
        if self._backend is not None:
            return [
                len(e.ids) for e in self._backend.encode_batch_fast(texts, add_special_tokens=False)
            ]
        # verbose=False: measuring a long text is not feeding it to the model; skip the warning.
        return [
            len(self._tokenizer(t, add_special_tokens=False, verbose=False)["input_ids"])
            for t in texts
        ]


def token_length_function(tokenizer) -> TokenCounter:  # noqa: ANN001 - any HF tokenizer
    """The chunker's length function for ``tokenizer`` (see :class:`TokenCounter`)."""
    return TokenCounter(tokenizer)
