from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qa.chunking import Chunker, locate
from qa.types import Document


def make_doc(text: str) -> Document:
    return Document(doc_id="d", title="t", path="d.txt", text=text, content_hash="h")


def check_invariants(doc: Document, chunker: Chunker) -> None:
    chunks = chunker.split(doc)
    for i, c in enumerate(chunks):
        assert doc.text[c.start : c.end] == c.text
        assert c.index == i and c.doc_id == doc.doc_id
        assert chunker._length(c.text) <= chunker.chunk_size
    starts = [c.start for c in chunks]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)
    # Every non-space character of the document is in some chunk: nothing is lost.
    covered = [False] * len(doc.text)
    for c in chunks:
        covered[c.start : c.end] = [True] * (c.end - c.start)
    assert all(covered[i] or ch.isspace() for i, ch in enumerate(doc.text))


sentences = st.sampled_from(
    [
        "The talks resumed.",
        "Officers were exchanged!",
        "Was it agreed?",
        "No.",
        "Kim met Trump at Panmunjom on 30 June.",
        "“Quoted,” he said.",
        "a b c",
    ]
)
texts = st.lists(sentences, min_size=0, max_size=40).map(lambda parts: " ".join(parts)) | st.text(
    alphabet=st.sampled_from("ab .\n!?,"), max_size=400
)


def word_count(text: str) -> int:
    return len(text.split())


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    text=texts,
    size=st.integers(20, 120),
    overlap_ratio=st.floats(0, 0.5),
    by_words=st.booleans(),
)
def test_chunk_offsets_always_index_the_document(
    text: str, size: int, overlap_ratio: float, by_words: bool
) -> None:
    if by_words:
        size //= 5
    chunker = Chunker(size, int(size * overlap_ratio), word_count if by_words else len)
    check_invariants(make_doc(text), chunker)


def test_repeated_sentences_get_their_own_offsets() -> None:
    text = " ".join(["The same sentence again."] * 30)
    chunks = Chunker(60, 20).split(make_doc(text))
    assert len(chunks) > 5
    assert len({c.start for c in chunks}) == len(chunks)
    for c in chunks:
        assert text[c.start : c.end] == c.text


def test_text_without_punctuation_makes_bounded_chunks() -> None:
    text = " ".join(f"word{i}" for i in range(5000))
    chunks = Chunker(200, 40).split(make_doc(text))
    assert max(len(c.text) for c in chunks) <= 200
    assert chunks[-1].text.endswith("word4999")


def test_text_without_spaces_still_splits() -> None:
    text = "x" * 1000
    chunks = Chunker(100, 10).split(make_doc(text))
    assert all(len(c.text) <= 100 for c in chunks)
    assert sum(1 for _ in chunks) >= 10


def test_chunks_prefer_sentence_boundaries() -> None:
    text = "First sentence is here. Second sentence follows it. Third one ends the text."
    chunks = Chunker(55, 0).split(make_doc(text))
    assert [c.text for c in chunks][0] == "First sentence is here. Second sentence follows it."


def test_locate_rejects_text_not_in_document() -> None:
    with pytest.raises(ValueError):
        locate("abc", ["abd"], 0)


def test_token_length_keeps_chunks_within_model_window(embedder) -> None:
    from qa.chunking import token_length_function

    length = token_length_function(embedder.tokenizer)
    text = " ".join(["Negotiators from both countries discussed liaison offices at length."] * 80)
    chunks = Chunker(200, 40, length).split(make_doc(text))
    assert all(length(c.text) <= 200 for c in chunks)
    assert all(length(c.text) + 2 <= embedder.max_tokens for c in chunks)


def test_a_repeat_just_past_the_overlap_is_not_taken_for_the_next_chunk() -> None:
    # The splitter measures its overlap with the space after it: "Kim ... June. " is 39
    # characters, one more than the overlap, so the second chunk shares nothing with the first,
    # although the same two sentences also occur overlapping it (a case hypothesis found).
    text = (
        "The talks resumed. Kim met Trump at Panmunjom on 30 June. Kim met Trump at Panmunjom "
        "on 30 June. Kim met Trump at Panmunjom on 30 June. The talks resumed."
    )
    chunks = Chunker(79, 38).split(make_doc(text))
    assert [(c.start, c.end) for c in chunks] == [(0, 57), (58, 135), (136, 154)]
    check_invariants(make_doc(text), Chunker(79, 38))
