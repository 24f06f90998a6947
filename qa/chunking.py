"""Split documents into overlapping, sentence-aware chunks with exact offsets.

Chunk length is counted in tokens of the embedding model's tokenizer (see ``Settings``), so a
chunk never exceeds what the embedding model reads. langchain's recursive splitter tries
paragraph breaks, then sentence ends, then clause marks, then spaces, then characters, so text
with no punctuation at all still makes bounded chunks.

Offsets are computed here, not with langchain's ``add_start_index``, whose ``str.find`` points
at the wrong place when a chunk's text also occurs earlier in the document.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from langchain_text_splitters import RecursiveCharacterTextSplitter

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
        self._splitter = RecursiveCharacterTextSplitter(
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
            length_function=length_function,
            separators=SEPARATORS,
            # Keep each sentence end with the sentence it closes, so chunks start on a new one.
            keep_separator="end",
            strip_whitespace=True,
        )

    def split(self, doc: Document) -> list[Chunk]:
        """Split one document; chunks come in document order."""
        pieces = self._splitter.split_text(doc.text)
        chunks: list[Chunk] = []
        spans = locate(doc.text, pieces, self.chunk_overlap, self._length)
        for index, (start, end) in enumerate(spans):
            chunks.append(
                Chunk(
                    chunk_id=f"{doc.doc_id}::{index}",
                    doc_id=doc.doc_id,
                    index=index,
                    start=start,
                    end=end,
                    text=doc.text[start:end],
                )
            )
        return chunks

    def split_all(self, docs: Iterable[Document]) -> list[Chunk]:
        return [chunk for doc in docs for chunk in self.split(doc)]


def locate(
    text: str, pieces: list[str], overlap: int, length_function: LengthFunction = len
) -> list[tuple[int, int]]:
    """Find where each splitter piece stands in ``text``.

    The splitter emits contiguous pieces in document order: each starts after the previous
    piece's start, no later than the first non-space character after its end (only white space
    is dropped between pieces), ends past it, and shares with it the longest tail that measures
    at most ``overlap``. So the piece starts at the first occurrence in that window whose shared
    tail fits the overlap. Where text repeats, this is the position the splitter used.

    Raises:
        ValueError: if a piece cannot stand there (a splitter contract broken).
    """
    spans: list[tuple[int, int]] = []
    prev_start, prev_end = -1, 0
    for piece in pieces:
        limit = prev_end
        while limit < len(text) and text[limit].isspace():
            limit += 1
        lo = max(prev_start + 1, prev_end - len(piece) + 1)
        start = text.find(piece, lo, limit + len(piece))
        while 0 <= start < prev_end and length_function(text[start:prev_end]) > overlap:
            start = text.find(piece, start + 1, limit + len(piece))
        if start < 0:
            raise ValueError(f"chunk does not follow on at offset {prev_end}: {piece!r:.80}")
        spans.append((start, start + len(piece)))
        prev_start, prev_end = start, start + len(piece)
    return spans


def token_length_function(tokenizer) -> LengthFunction:  # noqa: ANN001 - any HF tokenizer
    """Count word pieces the way the embedding model will see them (without special tokens)."""

    def length(text: str) -> int:
        # verbose=False: measuring a long text is not feeding it to the model; skip the warning.
        return len(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])

    return length
