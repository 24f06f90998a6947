"""The transformer reader: joint span decoding, offsets, deduplication and model loading."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from qa.reading import transformer
from qa.reading.transformer import (
    ReaderModelError,
    TransformerReader,
    decode_windows,
    load_reader,
)

NEG = -1e4


def _logits(values: dict[int, float], length: int = 8) -> torch.Tensor:
    out = torch.full((1, length), NEG)
    for position, value in values.items():
        out[0, position] = value
    return out


def _mask(positions: range, length: int = 8) -> torch.Tensor:
    mask = torch.zeros(1, length, dtype=torch.bool)
    mask[0, list(positions)] = True
    return mask


def test_joint_search_never_returns_end_before_start() -> None:
    # Independent argmaxes would give start 5, end 3; the best valid pair is (3, 3).
    start = _logits({0: 0.0, 3: 2.0, 5: 3.0})
    end = _logits({0: 0.0, 3: 3.0, 6: 0.5})
    spans = decode_windows(start, end, _mask(range(2, 8)), max_answer_tokens=5, top_k=3)
    best = spans[0]
    assert (best.start_token, best.end_token) == (3, 3)
    assert all(s.start_token <= s.end_token for s in spans)
    assert [s.score for s in spans] == sorted((s.score for s in spans), reverse=True)


def test_joint_search_respects_the_length_limit() -> None:
    start = _logits({2: 5.0, 5: 1.0})
    end = _logits({7: 5.0, 5: 1.0})
    long_allowed = decode_windows(start, end, _mask(range(2, 8)), max_answer_tokens=6, top_k=1)
    assert (long_allowed[0].start_token, long_allowed[0].end_token) == (2, 7)
    limited = decode_windows(start, end, _mask(range(2, 8)), max_answer_tokens=3, top_k=5)
    assert all(s.end_token - s.start_token < 3 for s in limited)
    assert (limited[0].start_token, limited[0].end_token) != (2, 7)


def test_spans_never_touch_the_question_part() -> None:
    # The question (positions 1-3) has the highest logits, but only 4-7 are context.
    start = _logits({1: 9.0, 2: 9.0, 5: 1.0})
    end = _logits({2: 9.0, 3: 9.0, 6: 1.0})
    spans = decode_windows(start, end, _mask(range(4, 8)), max_answer_tokens=4, top_k=20)
    assert spans
    assert all(4 <= s.start_token <= s.end_token < 8 for s in spans)
    assert (spans[0].start_token, spans[0].end_token) == (5, 6)


def test_scores_are_probabilities_against_all_spans_and_no_answer() -> None:
    torch.manual_seed(0)
    start, end = torch.randn(2, 10), torch.randn(2, 10)
    mask = torch.zeros(2, 10, dtype=torch.bool)
    mask[:, 3:9] = True
    spans = decode_windows(start, end, mask, max_answer_tokens=4, top_k=100)
    for w in range(2):
        mine = [s for s in spans if s.window == w]
        valid = sum(1 for i in range(3, 9) for j in range(i, min(i + 4, 9)))
        assert len(mine) == valid  # top_k beyond the valid count returns every valid span
        total = sum(s.score for s in mine) + mine[0].null_score
        assert total == pytest.approx(1.0, abs=1e-5)
    # A confident [CLS] pushes every span score down and the null score up.
    start[0, 0] = end[0, 0] = 20.0
    confident = decode_windows(start, end, mask, max_answer_tokens=4, top_k=1)
    assert confident[0].null_score > 0.99 and confident[0].score < 0.01


def test_a_window_without_context_gives_no_span() -> None:
    spans = decode_windows(
        torch.randn(1, 6),
        torch.randn(1, 6),
        torch.zeros(1, 6, dtype=torch.bool),
        max_answer_tokens=3,
        top_k=5,
    )
    assert spans == []


CONTEXTS = [
    "The Eiffel Tower was finished in 1889 for the World's Fair in Paris.  ",
    " ".join(f"Line {i}: the river level rose by {i} cm near the old bridge." for i in range(40)),
    "Short.",
]


def test_reader_returns_exact_spans_over_all_contexts(tiny_reader_dir: Path) -> None:
    reader = TransformerReader(tiny_reader_dir, max_length=64, stride=16, max_answer_tokens=8)
    spans = reader.read("When was the tower finished?", CONTEXTS, top_n=25)
    assert 0 < len(spans) <= 25
    for s in spans:
        context = CONTEXTS[s.context_index]
        assert context[s.start : s.end] == s.text
        assert s.text == s.text.strip() and s.text
        assert 0.0 <= s.score <= 1.0 and 0.0 <= s.null_score <= 1.0
    assert [s.score for s in spans] == sorted((s.score for s in spans), reverse=True)
    keys = [(s.context_index, s.start, s.end) for s in spans]
    assert len(keys) == len(set(keys)), "overlapping windows must not repeat a span"


def test_read_many_matches_read_and_handles_empty_input(tiny_reader_dir: Path) -> None:
    reader = TransformerReader(tiny_reader_dir, max_length=64, stride=16, batch_size=3)
    one = reader.read("Where is the bridge?", CONTEXTS[1:], top_n=3)
    many = reader.read_many(
        [("Where is the bridge?", CONTEXTS[1:]), ("Anything?", []), ("Q?", CONTEXTS[:1])],
        top_n=3,
    )
    assert [(s.context_index, s.start, s.end) for s in many[0]] == [
        (s.context_index, s.start, s.end) for s in one
    ]
    assert [s.score for s in many[0]] == pytest.approx([s.score for s in one], abs=1e-5)
    assert many[1] == []
    assert all(s.context_index == 0 for s in many[2])


def test_construction_is_lazy_and_warm_up_loads(tiny_reader_dir: Path) -> None:
    reader = TransformerReader(tiny_reader_dir)
    assert reader._model is None
    reader.warm_up()
    assert reader._model is not None and not reader._model.training


def test_a_missing_folder_fails_with_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ReaderModelError, match="does not exist"):
        load_reader(tmp_path / "nowhere")
    with pytest.raises(ReaderModelError, match="Cannot load"):
        load_reader(tmp_path)  # exists but holds no model


def test_a_hub_id_offline_fails_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ReaderModelError, match="HF_HUB_OFFLINE"):
        TransformerReader("someone/not-a-cached-qa-model").warm_up()


def test_a_missing_default_reader_says_how_to_train_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transformer, "DEFAULT_READER_DIR", tmp_path / "reader")
    with pytest.raises(ReaderModelError, match="train-reader"):
        load_reader("default")


def test_native_bf16_follows_the_cpu_flags(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real_open = open

    def fake(flags: str):
        info = tmp_path / "cpuinfo"
        info.write_text(f"processor\t: 0\nflags\t\t: {flags}\n", encoding="utf-8")
        return lambda path, *a, **k: real_open(info if path == "/proc/cpuinfo" else path, *a, **k)

    monkeypatch.setattr("builtins.open", fake("fpu sse2 avx2 avx512f"))
    assert transformer.native_bf16() is False
    monkeypatch.setattr("builtins.open", fake("fpu avx2 avx512f avx512_bf16"))
    assert transformer.native_bf16() is True
    monkeypatch.setattr("builtins.open", fake("fpu avx2 amx_tile amx_bf16"))
    assert transformer.native_bf16() is True
    assert TransformerReader("default", bf16=None).bf16 is True
    assert TransformerReader("default", bf16=False).bf16 is False


def test_reader_precision_setting_reaches_the_reader() -> None:
    from qa.embedding import Embedder
    from qa.reading.answers import AnswerFinder
    from qa.settings import Settings

    embedder = Embedder.__new__(Embedder)  # the finder only keeps it
    for precision, expected in (("fp32", False), ("bf16", True)):
        settings = Settings(reader_precision=precision, reader_runtime="torch")
        reader = AnswerFinder(embedder, settings)._reader
        assert isinstance(reader, TransformerReader) and reader.bf16 is expected
    with pytest.raises(ValueError, match="reader_precision"):
        Settings(reader_precision="int4")  # type: ignore[arg-type]


SHIPPED = transformer.DEFAULT_READER_DIR / "model.safetensors"


@pytest.mark.slow
@pytest.mark.skipif(not SHIPPED.exists(), reason="the reader is not shipped")
def test_bf16_reads_the_same_answers_as_fp32() -> None:
    """The shipped reader under bfloat16 autocast finds the same best spans as in float32."""
    question_contexts = [
        ("When was the tower finished?", CONTEXTS),
        ("How much did the river rise at line 7?", CONTEXTS),
    ]
    loaded = transformer.load_reader("default")
    fp32 = TransformerReader.from_loaded(*loaded, bf16=False)
    bf16 = TransformerReader.from_loaded(*loaded, bf16=True)
    for question, contexts in question_contexts:
        a, b = fp32.read(question, contexts, top_n=1), bf16.read(question, contexts, top_n=1)
        assert (a[0].context_index, a[0].start, a[0].end) == (
            b[0].context_index,
            b[0].start,
            b[0].end,
        )
        assert b[0].score == pytest.approx(a[0].score, abs=0.05)
