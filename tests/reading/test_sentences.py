"""Sentence splitting with exact offsets, and the sentence extractor's scores."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from qa.ingest import load_corpus
from qa.reading.sentences import (
    MAX_SENTENCE_CHARS,
    SentenceExtractor,
    cached_sentences,
    content_terms,
    split_sentences,
)

from ..conftest import SEED_CORPUS, HashEmbedder


def assert_exact(text: str, max_chars: int = MAX_SENTENCE_CHARS) -> list[str]:
    """Check every invariant of a split and return the sentence texts."""
    sentences = split_sentences(text, max_chars=max_chars)
    previous_end = 0
    for s in sentences:
        assert text[s.start : s.end] == s.text
        assert s.text and s.text == s.text.strip()
        assert len(s.text) <= max_chars
        assert s.start >= previous_end
        # Nothing but whitespace is ever dropped between two sentences.
        assert not text[previous_end : s.start].strip()
        previous_end = s.end
    assert not text[previous_end:].strip()
    return [s.text for s in sentences]


def test_abbreviations_initials_and_decimals_do_not_end_sentences() -> None:
    text = (
        "Dr. Smith met Mr. J. R. Jones in the U.S. on Jan. 5 at 3.5 km from Washington, D.C. "
        "He said it was fine. Was it? Yes!"
    )
    assert assert_exact(text) == [
        "Dr. Smith met Mr. J. R. Jones in the U.S. on Jan. 5 at 3.5 km from Washington, D.C.",
        "He said it was fine.",
        "Was it?",
        "Yes!",
    ]


def test_line_breaks_end_sentences_and_whitespace_is_trimmed() -> None:
    text = "  Round two\n\nThe US and North Korea met.  It went well. \nA headline\nLast one.  "
    assert assert_exact(text) == [
        "Round two",
        "The US and North Korea met.",
        "It went well.",
        "A headline",
        "Last one.",
    ]


def test_offsets_count_characters_not_bytes() -> None:
    text = "Kim’s “summit” – in Hà Nội – ended early. Trump’s team left. Ünïcödé é."
    sentences = assert_exact(text)
    assert sentences[1] == "Trump’s team left."


def test_text_without_full_stops_is_cut_into_near_equal_pieces() -> None:
    text = " ".join(f"word{i}" for i in range(400))  # ~3,000 characters, no full stop
    pieces = assert_exact(text, max_chars=500)
    assert len(pieces) == -(-len(text) // 500)
    assert max(map(len, pieces)) - min(map(len, pieces)) < 50  # no stub at the end
    assert " ".join(pieces) == text


def test_a_run_without_spaces_is_cut_hard() -> None:
    assert [len(p) for p in assert_exact("x" * 1200, max_chars=500)] == [400, 400, 400]


def test_empty_and_blank_texts_have_no_sentences() -> None:
    assert split_sentences("") == []
    assert split_sentences(" \n\n  ") == []


def test_seed_articles_split_exactly_and_are_cached() -> None:
    for doc in load_corpus(SEED_CORPUS):
        sentences = assert_exact(doc.text)
        assert len(sentences) > 10
        assert cached_sentences(doc.text) is cached_sentences(doc.text)
        assert [s.text for s in cached_sentences(doc.text)] == sentences


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(list("ab .!?\n\"'’é") + ["Mr.", "U.S.", "3.5", "  ", "\r\n"]),
        max_size=120,
    ).map("".join),
    st.integers(min_value=5, max_value=80),
)
@example("aa  aa", 5)  # a cut after a run of spaces once left one in the first piece
def test_any_text_splits_exactly(text: str, max_chars: int) -> None:
    assert_exact(text, max_chars=max_chars)


def test_content_terms_are_stemmed_without_stopwords() -> None:
    terms = content_terms("How many liaison officers would each side have had under the 1994 plan?")
    assert {"liaison", "offic", "1994", "plan"} <= terms
    assert not {"how", "each", "the", "had", "under"} & terms


class CountingEmbedder(HashEmbedder):
    def __init__(self) -> None:
        self.encoded: list[str] = []

    def encode(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        self.encoded.extend(texts)
        return super().encode(texts)

    def encode_query(self, text: str) -> np.ndarray:
        return HashEmbedder.encode(self, [text])[0]  # count sentences only


def test_scores_reward_the_sentence_about_the_question() -> None:
    extractor = SentenceExtractor(HashEmbedder())
    sentences = [
        "Up to seven liaison officers were to be exchanged under the 1994 plan.",
        "The weather in Hanoi was warm for the summit.",
        "",
    ]
    scores = extractor.score("How many liaison officers under the 1994 plan?", sentences)
    assert scores.shape == (3,)
    assert np.all((scores >= 0) & (scores <= 1))
    assert scores[0] > scores[1] >= scores[2] == 0


def test_score_is_the_documented_blend_of_cosine_and_overlap() -> None:
    embedder = HashEmbedder()
    extractor = SentenceExtractor(embedder, lexical_weight=0.25)
    question, sentence = "liaison officers in Pyongyang", "Officers went to Seoul."
    cosine = float(embedder.encode([sentence])[0] @ embedder.encode_query(question))
    overlap = 1 / 3  # "offic" of {"liaison", "offic", "pyongyang"}
    expected = 0.75 * max(cosine, 0.0) + 0.25 * overlap
    assert extractor.score(question, [sentence])[0] == pytest.approx(expected, abs=1e-6)


def test_a_score_does_not_depend_on_the_other_sentences() -> None:
    extractor = SentenceExtractor(HashEmbedder())
    question = "Where did Kim and Trump agree to resume talks?"
    target = "Kim and Trump agreed at Panmunjom to resume talks."
    alone = extractor.score(question, [target])[0]
    crowded = extractor.score(question, ["Talks resumed.", target, "Kim left."])[1]
    assert alone == pytest.approx(crowded)


def test_sentence_vectors_are_computed_once_and_evicted_when_over_size() -> None:
    embedder = CountingEmbedder()
    extractor = SentenceExtractor(embedder, cache_size=2)
    extractor.score("q one", ["a b", "c d", "a b"])
    assert embedder.encoded == ["a b", "c d"]
    extractor.score("q two", ["c d", "a b"])
    assert embedder.encoded == ["a b", "c d"]
    extractor.score("q three", ["e f"])  # evicts the least recently used, "c d"
    extractor.score("q four", ["a b", "c d"])
    assert embedder.encoded == ["a b", "c d", "e f", "c d"]
