"""BM25: the vectorised index build equals bm25s's own, and updates reuse saved token ids."""

from __future__ import annotations

import random
from pathlib import Path

import bm25s
import numpy as np
import pytest
from bm25s.stopwords import STOPWORDS_EN_PLUS

import qa.lexical
from qa.lexical import LexicalIndex, tokenize

WORDS = (
    "election minister budget deficit striker goal match club phone mobile sales price "
    "oil market shares bank rate film award actor music chart album court ruling police "
    "the of and a to in is was"
).split()
QUERIES = ["budget deficit", "striker goal match", "mobile phone sales", "oil", "film award"]


def corpus(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS, k=rng.randint(3, 40))) + "." for _ in range(n)]


def bm25s_scores(texts: list[str], query: str) -> np.ndarray:
    reference = bm25s.BM25()
    reference.index(tokenize(texts), show_progress=False)
    return np.asarray(reference.get_scores(tokenize([query])[0]), dtype=np.float32)


def test_vectorised_build_scores_like_bm25s() -> None:
    texts = corpus(300)
    ours = LexicalIndex.build(texts)
    for query in QUERIES:
        np.testing.assert_allclose(ours.scores(query), bm25s_scores(texts, query), rtol=1e-6)
        top = ours.search(query, 5)
        assert top and all(s > 0 for _, s in top)
        assert [s for _, s in top] == sorted((s for _, s in top), reverse=True)


def test_update_reuses_token_ids_and_equals_a_fresh_build(monkeypatch) -> None:  # noqa: ANN001
    old_texts = corpus(200, seed=1)
    previous = LexicalIndex.build(old_texts)
    # Drop rows 0-9, keep the rest in a new order, add 5 new chunks.
    kept = list(range(10, 200))
    random.Random(2).shuffle(kept)
    new_texts = corpus(5, seed=3)
    texts = [old_texts[r] for r in kept] + new_texts
    rows = kept + [-1] * len(new_texts)

    tokenised: list[str] = []
    real = qa.lexical.tokenize

    def counting(batch: list[str]) -> list[list[str]]:
        tokenised.extend(batch)
        return real(batch)

    monkeypatch.setattr(qa.lexical, "tokenize", counting)
    updated = LexicalIndex.build(texts, previous, rows)
    assert tokenised == new_texts  # only the new chunks were tokenised
    monkeypatch.setattr(qa.lexical, "tokenize", real)

    fresh = LexicalIndex.build(texts)
    for query in QUERIES:
        np.testing.assert_allclose(updated.scores(query), fresh.scores(query), rtol=1e-6)
    # Words only the dropped chunks had are gone from the vocabulary.
    assert set(updated.vocabulary) - {""} == set(fresh.vocabulary) - {""}


def test_saved_token_ids_round_trip(tmp_path: Path) -> None:
    texts = corpus(50, seed=4)
    built = LexicalIndex.build(texts)
    built.save(tmp_path / "bm25")
    loaded = LexicalIndex.load(tmp_path / "bm25", len(texts))
    assert loaded.token_ids is not None and loaded.token_offsets is not None
    np.testing.assert_array_equal(loaded.token_ids, built.token_ids)
    np.testing.assert_array_equal(loaded.token_offsets, built.token_offsets)
    again = LexicalIndex.build(texts + ["oil price"], loaded, [*range(len(texts)), -1])
    np.testing.assert_allclose(
        again.scores("oil"), LexicalIndex.build(texts + ["oil price"]).scores("oil"), rtol=1e-6
    )


def test_masked_rows_score_as_if_absent_and_round_trip(tmp_path: Path) -> None:
    old_texts = corpus(120, seed=5)
    previous = LexicalIndex.build(old_texts)
    masked = set(range(0, 120, 7))
    added = corpus(4, seed=6)
    # Rows keep their numbers; masked ones are None; new chunks are appended.
    texts = [None if r in masked else t for r, t in enumerate(old_texts)] + added
    rows = [-1 if r in masked else r for r in range(120)] + [-1] * len(added)
    updated = LexicalIndex.build(texts, previous, rows)
    live = [r for r, t in enumerate(texts) if t is not None]
    alone = LexicalIndex.build([texts[r] for r in live])
    updated.save(tmp_path / "bm25")
    loaded = LexicalIndex.load(tmp_path / "bm25", len(texts))
    for index in (updated, loaded):
        for query in QUERIES:
            scores = index.scores(query)
            assert not scores[sorted(masked)].any()
            np.testing.assert_allclose(scores[live], alone.scores(query), rtol=1e-6)
            found, expected = index.search(query, 5), alone.search(query, 5)
            assert [r for r, _ in found] == [live[i] for i, _ in expected]
            assert [s for _, s in found] == pytest.approx([s for _, s in expected])
        allowed = np.zeros(len(texts), bool)
        allowed[len(old_texts) :] = True
        assert {r for r, _ in index.search("oil market", 10, allowed)} <= set(range(120, 124))


@pytest.mark.parametrize("texts", [[], ["the of and", "a to in"]])
def test_corpora_without_terms_never_match(tmp_path: Path, texts: list[str]) -> None:
    built = LexicalIndex.build(texts)
    assert built.search("anything at all", 5) == []
    assert built.scores("anything").shape == (len(texts),)
    built.save(tmp_path / "bm25")
    assert LexicalIndex.load(tmp_path / "bm25", len(texts)).search("anything", 5) == []


def test_bm25_terms_are_those_saved_indexes_were_built_with() -> None:
    """Saved indexes hold token ids of these terms: a change to the default tokenising (its
    stop words, its stemmer) would make updates mix two tokenisings, so it must be deliberate."""
    text = "How had the banks raised their rates under the new minister?"
    assert tokenize([text]) == [["how", "had", "bank", "rais", "rate", "under", "new", "minist"]]
    # The sentence scorer's longer list drops question words and auxiliaries too.
    assert tokenize([text], stopwords=STOPWORDS_EN_PLUS) == [
        ["bank", "rais", "rate", "new", "minist"]
    ]
