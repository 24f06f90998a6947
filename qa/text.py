"""Text helpers shared by both roads and the faces (this module imports nothing of qa).

:func:`split_sentences` splits text into sentences with exact offsets, for indexing (sentence
vectors) and reading alike. It uses sentencex (Wikimedia's rule-based segmenter:
abbreviation-aware, ~0.3 ms for a news article, with character offsets). Two safety rules sit
on top of it: a line break always ends a sentence, and a "sentence" longer than
``MAX_SENTENCE_CHARS`` (text with no full stops) is cut at spaces into near-equal pieces, so a
sentence is always a small unit to read or show.

:func:`normalize_answer` is the one answer normalisation of the project. Evaluation uses it
as the official SQuAD v1.1 script does (ASCII punctuation only), so exact match and F1 equal
the official scores. Answer deduplication uses it with ``typographic_punctuation=True``:
news text writes "Kim’s" and "Kim's", "27–28" and "27-28" alike, and both spellings are one
answer.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from functools import lru_cache

import sentencex

#: Marks the official SQuAD script keeps (it drops ``string.punctuation`` only) that
#: ``typographic_punctuation=True`` drops too: curly quotes, en and em dashes, the ellipsis.
TYPOGRAPHIC_PUNCTUATION = "‘’“”–—…"

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_ASCII_PUNCTUATION = str.maketrans("", "", string.punctuation)
_ALL_PUNCTUATION = str.maketrans("", "", string.punctuation + TYPOGRAPHIC_PUNCTUATION)


def normalize_answer(text: str, *, typographic_punctuation: bool = False) -> str:
    """SQuAD v1.1 answer normalisation: lower case, no punctuation, no articles, single spaces.

    Args:
        text: An answer or reference text.
        typographic_punctuation: Also drop :data:`TYPOGRAPHIC_PUNCTUATION`. Off, the result
            equals the official SQuAD v1.1 script's (ASCII punctuation only), which the
            evaluation metrics need; on, curly quotes and dashes count as punctuation too,
            which answer deduplication needs.
    """
    table = _ALL_PUNCTUATION if typographic_punctuation else _ASCII_PUNCTUATION
    text = _ARTICLES.sub(" ", text.lower().translate(table))
    return " ".join(text.split())


def counted(n: int, noun: str) -> str:
    """``"1 chunk"``, ``"2 chunks"``: ``n`` and ``noun``, plural when ``n`` is not 1."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


#: Longest sentence kept whole, in characters; longer runs are cut at a space.
MAX_SENTENCE_CHARS = 500

_LINE_BREAK = re.compile(r"\n+")


@dataclass(frozen=True)
class Sentence:
    """A sentence located in a text: ``text[start:end] == sentence.text``."""

    start: int
    end: int
    text: str


def split_sentences(text: str, *, max_chars: int = MAX_SENTENCE_CHARS) -> list[Sentence]:
    """Split ``text`` into sentences with exact offsets, whitespace trimmed at both ends.

    Args:
        text: Any text; the cleaned document text in the product.
        max_chars: Longest sentence; longer ones are cut at spaces into near-equal pieces
            (or hard where a run has no space).

    Returns:
        Non-empty sentences in text order; ``text[s.start:s.end] == s.text`` for each.
    """
    sentences: list[Sentence] = []
    for segment in sentencex.get_sentence_boundaries("en", text):
        seg_start = segment["start_index"]
        seg_end = segment["end_index"]
        line_start = seg_start
        for brk in _LINE_BREAK.finditer(text, seg_start, seg_end):
            sentences.extend(_trimmed_pieces(text, line_start, brk.start(), max_chars))
            line_start = brk.end()
        sentences.extend(_trimmed_pieces(text, line_start, seg_end, max_chars))
    return sentences


def _trimmed_pieces(text: str, start: int, end: int, max_chars: int) -> list[Sentence]:
    """The stripped ``text[start:end]``, cut into near-equal pieces of at most ``max_chars``."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    pieces = []
    while end - start > max_chars:
        # Aim at an even share of what is left, so no piece ends up a stub of a few words.
        share = -(-(end - start) // -(-(end - start) // max_chars))
        cut = text.rfind(" ", start + 1, start + share + 1)
        cut = cut if cut > start else start + share
        # A run of spaces before the cut belongs to neither piece.
        piece_end = cut
        while text[piece_end - 1].isspace():
            piece_end -= 1
        pieces.append(Sentence(start, piece_end, text[start:piece_end]))
        start = cut
        while start < end and text[start].isspace():
            start += 1
    if end > start:
        pieces.append(Sentence(start, end, text[start:end]))
    return pieces


@lru_cache(maxsize=2048)
def cached_sentences(text: str) -> tuple[Sentence, ...]:
    """``split_sentences(text)``, memoised: documents are split once, not once per question."""
    return tuple(split_sentences(text))
