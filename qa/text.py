"""Text helpers shared by both roads and the faces (this module imports nothing of qa).

:func:`normalize_answer` is the one answer normalisation of the project. Evaluation uses it
as the official SQuAD v1.1 script does (ASCII punctuation only), so exact match and F1 equal
the official scores. Answer deduplication uses it with ``typographic_punctuation=True``:
news text writes "Kim’s" and "Kim's", "27–28" and "27-28" alike, and both spellings are one
answer.
"""

from __future__ import annotations

import re
import string

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
