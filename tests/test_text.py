"""One answer normalisation: SQuAD's for the metrics, the same plus typographic marks for dedup.

Evaluation and answer deduplication once kept their own copies, with different punctuation
sets; these tests fail if either drifts from the official script or from the other.
"""

from __future__ import annotations

import ast
import re
import string
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import qa
from qa.evaluation import metrics
from qa.evaluation.metrics import exact_match, f1_score
from qa.reading import answers
from qa.reading.answers import dedupe
from qa.text import TYPOGRAPHIC_PUNCTUATION, normalize_answer
from qa.types import Answer


def official_normalize_answer(s: str) -> str:
    """``normalize_answer`` of the official SQuAD v1.1 evaluation script, verbatim."""

    def remove_articles(text: str) -> str:
        return re.sub(r"\b(a|an|the)\b", " ", text)

    def white_space_fix(text: str) -> str:
        return " ".join(text.split())

    def remove_punc(text: str) -> str:
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    def lower(text: str) -> str:
        return text.lower()

    return white_space_fix(remove_articles(remove_punc(lower(s))))


# Answer-like text: letters, digits, spaces, articles, ASCII and typographic punctuation.
_ALPHABET = st.sampled_from(
    list("aAnNtThHeEkKiImMsS19 \t\n")
    + ["the ", " a ", "An "]
    + list(string.punctuation)
    # Unicode marks with special cases: typographic ones, a non-breaking space, "İ" (lowers
    # to two characters), a combining accent.
    + list(TYPOGRAPHIC_PUNCTUATION + "\u00a0İ\u0301«»")
)
_TEXTS = st.lists(_ALPHABET, max_size=30).map("".join)


@given(_TEXTS)
def test_normalize_answer_is_the_official_squad_normalisation(text: str) -> None:
    assert normalize_answer(text) == official_normalize_answer(text)


@given(_TEXTS)
def test_the_typographic_option_only_also_drops_typographic_marks(text: str) -> None:
    bare = text.translate(str.maketrans("", "", TYPOGRAPHIC_PUNCTUATION))
    assert normalize_answer(text, typographic_punctuation=True) == official_normalize_answer(bare)


@pytest.mark.parametrize(
    ("text", "squad", "typographic"),
    [
        ('  The "Agreed  Framework".', "agreed framework", "agreed framework"),
        ("Kim’s – summit", "kim’s – summit", "kims summit"),
        ("“Agreed Framework”…", "“agreed framework”…", "agreed framework"),
        ("27—28 February.", "27—28 february", "2728 february"),
        ("the", "", ""),
        ("Theatre an anthem", "theatre anthem", "theatre anthem"),
    ],
)
def test_normalize_answer_by_hand(text: str, squad: str, typographic: str) -> None:
    assert normalize_answer(text) == squad
    assert normalize_answer(text, typographic_punctuation=True) == typographic


def test_metrics_and_dedup_use_the_one_normalisation() -> None:
    assert metrics.normalize_answer is normalize_answer
    assert answers.normalize_answer is normalize_answer


def test_no_other_module_defines_an_answer_normalisation() -> None:
    root = Path(qa.__file__).parent
    defining = [
        str(path.relative_to(root))
        for path in sorted(root.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.FunctionDef) and "normali" in node.name and "answer" in node.name
    ]
    assert defining == ["text.py"]


def _normalize_calls(package: str) -> list[tuple[str, bool]]:
    """Each ``normalize_answer(...)`` call under ``qa/<package>``: where, and whether it
    passes ``typographic_punctuation=True``."""
    root = Path(qa.__file__).parent
    calls = []
    for path in sorted((root / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "normalize_answer":
                typographic = any(
                    k.arg == "typographic_punctuation"
                    and isinstance(k.value, ast.Constant)
                    and k.value.value is True
                    for k in node.keywords
                )
                calls.append((f"{path.relative_to(root)}:{node.lineno}", typographic))
    return calls


def test_reading_folds_typographic_marks_and_evaluation_does_not() -> None:
    """Dedup and the support signal group answers with one key; the metrics stay SQuAD's."""
    reading, evaluation = _normalize_calls("reading"), _normalize_calls("evaluation")
    assert reading and evaluation
    assert [where for where, typographic in reading if not typographic] == []
    assert [where for where, typographic in evaluation if typographic] == []


def test_exact_match_keeps_squads_ascii_punctuation() -> None:
    # The official script drops ASCII punctuation only: a curly apostrophe is a character.
    assert exact_match("Kim's summit", ["kims summit"]) == 1.0
    assert exact_match("Kim’s summit", ["Kim's summit"]) == 0.0
    assert f1_score("Kim’s summit", ["Kim's summit"]) == 0.5


def _answer(text: str, doc_id: str, score: float) -> Answer:
    return Answer(text, score, 0, len(text), doc_id, "T", doc_id, text, 0)


def test_dedup_treats_typographic_and_ascii_spellings_as_one_answer() -> None:
    kept = dedupe(
        [
            _answer("Kim’s summit", "a", 0.4),
            _answer("Kim's summit", "b", 0.6),
            _answer("27–28 June", "c", 0.3),
            _answer("27-28 June", "d", 0.2),
            _answer("Panmunjom", "e", 0.1),
        ]
    )
    assert [a.text for a in kept] == ["Kim's summit", "27–28 June", "Panmunjom"]
