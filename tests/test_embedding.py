"""The embedder: the ONNX question encoders (built into the session's cache) against the
torch model, the fallback where it cannot be built, thread safety, hub ids."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import numpy as np
import pytest

from qa.embedding import Embedder, ModelLoadError, OnnxQueryEncoder, QueryMemo
from qa.models import checksums, export_query_encoder, query_encoder
from qa.settings import Settings

from .conftest import needs_shared

QUESTIONS = [
    "How many liaison officers would each side have had under the 1994 plan?",
    "Where did Kim Jong-un and Trump agree to resume working-level talks?",
    "Who won the match in Cardiff?",
    "Is the new phone cheaper than the old one?",
    "What is the capital of France?",
]


def test_query_encoder_setting_is_validated(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="query_encoder must be one of"):
        Settings(query_encoder="gpu")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="query_encoder must be one of"):
        Embedder(query_encoder="fast")  # type: ignore[arg-type]
    for onnx in ("onnx-int8", "onnx-fp32", "onnx-int8-blocks"):
        with pytest.raises(ValueError, match="ONNX copy of the default embedding model only"):
            Embedder(str(tmp_path), query_encoder=onnx)  # type: ignore[arg-type]


def test_torch_setting_and_other_models_use_no_onnx_encoder(tmp_path: Path) -> None:
    assert Embedder(query_encoder="torch").onnx_query_encoder is None
    assert Embedder(str(tmp_path), query_encoder="auto").onnx_query_encoder is None


def test_a_hub_id_fails_with_one_line_where_no_hub_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Not offline by setting: the hub is asked, and here nothing answers (a closed local port
    # stands for a machine without network, also where a network exists).
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr("huggingface_hub.constants.ENDPOINT", "http://127.0.0.1:9")
    with pytest.raises(ModelLoadError, match="hub could not be reached") as caught:
        _ = Embedder("someone/no-such-embedding-model", query_encoder="torch").model
    assert "\n" not in str(caught.value) and "local folder" in str(caught.value)


def test_a_hub_id_offline_by_setting_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="HF_HUB_OFFLINE is set"):
        _ = Embedder("someone/no-such-embedding-model", query_encoder="torch").model


@pytest.mark.slow
def test_encode_gives_the_sentence_transformers_vectors(embedder) -> None:  # noqa: ANN001
    texts = [*QUESTIONS, "A long article. " * 200]  # past the 256 word pieces the model keeps
    ours = embedder.encode(texts)
    theirs = embedder.model.encode(texts, normalize_embeddings=True)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_torch_embeds_questions_with_one_warning_where_the_export_cannot_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def missing_onnx(target: Path, source: Path, precision: str) -> dict[str, object]:
        raise ModuleNotFoundError("No module named 'onnx'")

    monkeypatch.setenv("QA_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(export_query_encoder, "export", missing_onnx)
    embedder = Embedder()
    with caplog.at_level(logging.WARNING):
        assert embedder.prepare_query_encoder() is None
        assert embedder.onnx_query_encoder is None
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 2  # the notice that it is being built, then why it could not be
    assert "No module named 'onnx'" in warnings[1] and "torch model instead" in warnings[1]


@pytest.mark.slow
def test_the_default_encoder_is_built_once_into_the_cache(
    embedder,  # noqa: ANN001
    query_encoder_cache: Path,
) -> None:
    precision = export_query_encoder.auto_precision()  # the CPU's: fp32 or int8-blocks
    folder = query_encoder_cache / f"minilm-{precision}" / query_encoder.cache_key(precision)
    assert embedder.prepare_query_encoder() == folder / "model.onnx"
    build = json.loads((folder / "build.json").read_text(encoding="utf-8"))
    assert build["sha256"] == checksums.sha256(folder / "model.onnx")
    assert build["source_sha256"] == checksums.recorded()["all-MiniLM-L6-v2/model.safetensors"]
    assert build["precision"] == precision
    assert build["recipe_version"] == export_query_encoder.RECIPE_VERSIONS[precision]
    # A second embedder (a second process alike) uses it as it is.
    assert Embedder().prepare_query_encoder() == folder / "model.onnx"
    assert build == json.loads((folder / "build.json").read_text(encoding="utf-8"))


def _onnx_embedder(embedder, setting: str) -> Embedder:  # noqa: ANN001
    return embedder if setting == "auto" else Embedder(query_encoder=setting, loaded=embedder.model)  # type: ignore[arg-type]


#: The least cosine of each ONNX copy's question vectors to the torch model's.
COSINES = {"fp32": 0.99999, "int8": 0.98, "int8-blocks": 0.998}


def test_auto_takes_the_block_wise_int8_encoder_only_where_the_cpu_has_avx512_vnni(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    flags = {"avx2", "avx512f"}
    monkeypatch.setattr(export_query_encoder, "cpu_flags", lambda: frozenset(flags))
    assert export_query_encoder.auto_precision() == "fp32"
    flags.add("avx512_vnni")
    assert export_query_encoder.auto_precision() == "int8-blocks"
    chosen: list[str] = []
    monkeypatch.setattr(
        "qa.models.query_encoder.query_encoder_file", lambda p: chosen.append(p) or Path(p)
    )
    for setting in ("auto", "onnx-fp32", "onnx-int8", "onnx-int8-blocks"):
        assert Embedder(query_encoder=setting).prepare_query_encoder() is not None  # type: ignore[arg-type]
    assert chosen == ["int8-blocks", "fp32", "int8", "int8-blocks"]
    with pytest.raises(ValueError, match="onnx-int8-blocks"):
        export_query_encoder.query_precision_of("onnx-int4")


@pytest.mark.slow
@pytest.mark.parametrize("setting", ["onnx-fp32", "onnx-int8", "onnx-int8-blocks", "auto"])
def test_onnx_question_vectors_agree_with_the_torch_model(
    embedder,  # noqa: ANN001
    setting: str,
) -> None:
    precision = export_query_encoder.auto_precision() if setting == "auto" else setting[5:]
    cosine = COSINES[precision]
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    onnx = _onnx_embedder(embedder, setting).onnx_query_encoder
    # Building a copy (here the first time in this session's cache) leaves logging as it was.
    assert (root.handlers, root.level) == (handlers, level)
    assert isinstance(onnx, OnnxQueryEncoder)
    ours = np.stack([onnx.encode([q])[0] for q in QUESTIONS])
    theirs = embedder.encode(QUESTIONS)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert np.sum(ours * theirs, axis=1).min() > cosine
    # Each question alone gives the same vector every time (the product embeds them alone).
    np.testing.assert_array_equal(np.stack([onnx.encode([q])[0] for q in QUESTIONS]), ours)
    batch = onnx.encode(QUESTIONS)
    if precision == "fp32":
        # A batch gives the vectors of the texts one by one (padding does not leak in).
        np.testing.assert_allclose(batch, ours, atol=1e-3)
    else:
        # The int8 copies quantise activations per call or per block of a padded batch, so a
        # batch differs a little from single texts (questions are embedded alone).
        assert np.sum(batch * ours, axis=1).min() > cosine


@pytest.mark.slow
@pytest.mark.shared
@pytest.mark.parametrize(
    ("precision", "least", "mean"), [("int8", 0.98, 0.99), ("int8-blocks", 0.997, 0.999)]
)
def test_int8_questions_retrieve_xquad_paragraphs_as_the_fp32_model_does(
    embedder,  # noqa: ANN001
    precision: str,
    least: float,
    mean: float,
) -> None:
    data = json.loads(
        needs_shared("data", "xquad-dev", "xquad.en.dev.json").read_text(encoding="utf-8")
    )
    paragraphs = [p for article in data["data"] for p in article["paragraphs"]]
    questions = [(q["question"], i) for i, p in enumerate(paragraphs) for q in p["qas"]][::3]
    contexts = embedder.encode([p["context"] for p in paragraphs])
    gold = np.array([i for _, i in questions])
    fp32 = embedder.encode([q for q, _ in questions])
    encoder = _onnx_embedder(embedder, f"onnx-{precision}").onnx_query_encoder
    int8 = np.stack([encoder.encode([q])[0] for q, _ in questions])
    cosines = np.sum(fp32 * int8, axis=1)
    assert cosines.min() > least and cosines.mean() > mean, (cosines.min(), cosines.mean())

    def recall_at_5(vectors: np.ndarray) -> float:
        top = np.argsort(-(vectors @ contexts.T), axis=1)[:, :5]
        return float(np.mean([g in row for g, row in zip(gold, top, strict=True)]))

    assert abs(recall_at_5(int8) - recall_at_5(fp32)) <= 0.005, (
        recall_at_5(int8),
        recall_at_5(fp32),
    )


@pytest.mark.slow
def test_questions_from_threads_while_passages_encode(embedder) -> None:  # noqa: ANN001
    """Questions from several threads, a rebuild encoding passages and chunking counting tokens
    (the Hugging Face tokenizer, called with other settings) all at once give the vectors each
    gives alone: no tokenizer setting is shared between them."""
    shared = Embedder(query_encoder="auto", loaded=embedder.model)
    passages = [f"{q} " * 40 for q in QUESTIONS]
    alone_queries = {q: embedder.onnx_query_encoder.encode([q])[0] for q in QUESTIONS}
    alone_passages = embedder.encode(passages)
    errors: list[BaseException] = []
    results: list[tuple[str, np.ndarray]] = []
    start = threading.Barrier(5)

    def ask(offset: int) -> None:
        start.wait()
        for i in range(12):
            q = QUESTIONS[(i + offset) % len(QUESTIONS)] + " " * (i // len(QUESTIONS))
            results.append((q.strip(), shared._query_vector.__wrapped__(q)))

    def rebuild() -> None:
        start.wait()
        for _ in range(3):
            np.testing.assert_allclose(shared.encode(passages), alone_passages, atol=1e-5)

    def count_tokens() -> None:
        start.wait()
        for p in passages * 3:
            shared.tokenizer(p, add_special_tokens=False)  # no truncation: other settings

    def guarded(target, *args) -> None:  # noqa: ANN001
        try:
            target(*args)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(ask, n)) for n in range(3)]
    threads += [threading.Thread(target=guarded, args=(f,)) for f in (rebuild, count_tokens)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(results) == 36
    for q, vector in results:
        np.testing.assert_allclose(vector, alone_queries[q], atol=1e-4)


def test_the_question_tokenizer_read_from_files_equals_the_loaded_models(embedder) -> None:  # noqa: ANN001
    from qa.embedding import frozen_tokenizer, packaged_tokenizer

    from_files = packaged_tokenizer(Path(embedder.path))
    from_model = frozen_tokenizer(embedder.model.tokenizer, embedder.max_tokens)
    texts = ["Who met Kim Jong-un?", "Zürich «quoted» — text " * 200, ""]
    for a, b in zip(from_files.encode_batch(texts), from_model.encode_batch(texts), strict=True):
        assert a.ids == b.ids and a.offsets == b.offsets and a.attention_mask == b.attention_mask
    assert len(from_files.encode(texts[1]).ids) == embedder.max_tokens == 256


def test_first_questions_at_once_make_one_onnx_session(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A command embeds its question ahead on a second thread while the first question may
    embed it too: however many threads ask first, one question encoder is made."""
    made: list[int] = []

    class SlowEncoder:
        def __init__(self, model_file: Path, tokenizer: object) -> None:
            made.append(1)
            threading.Event().wait(0.2)  # a session takes a while to build

        def encode(self, texts: list[str]) -> np.ndarray:
            return np.ones((len(texts), 3), dtype=np.float32) / np.sqrt(3)

    monkeypatch.setattr("qa.embedding.OnnxQueryEncoder", SlowEncoder)
    embedder = Embedder(query_encoder="onnx-fp32")
    embedder.__dict__["_onnx_file"] = tmp_path / "encoder.onnx"
    embedder.__dict__["text_tokenizer"] = object()
    start = threading.Barrier(4)
    vectors: list[np.ndarray] = []

    def ask(n: int) -> None:
        start.wait()
        vectors.append(embedder.encode_query(f"question {n}"))

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert made == [1] and len(vectors) == 4


def test_a_question_being_embedded_is_waited_for_not_embedded_again() -> None:
    """A cold command embeds its question ahead on a second thread, then asks for it: the
    second caller waits for the first's vector (two runs side by side took both cores)."""
    started = threading.Event()
    release = threading.Event()
    calls: list[str] = []

    def slow(text: str) -> np.ndarray:
        calls.append(text)
        if text == "who?":
            started.set()
            release.wait(timeout=10)
        return np.full(3, float(len(text)), dtype=np.float32)

    memo = QueryMemo(slow)
    results: list[np.ndarray] = []
    first = threading.Thread(target=lambda: results.append(memo("who?")))
    first.start()
    assert started.wait(timeout=10)
    second = threading.Thread(target=lambda: results.append(memo("who?")))
    other = threading.Thread(target=lambda: results.append(memo("when?")))
    second.start()
    other.start()
    other.join(timeout=10)  # another question is not held up by the first
    assert calls == ["who?", "when?"] and len(results) == 1
    release.set()
    first.join(timeout=10)
    second.join(timeout=10)
    assert calls == ["who?", "when?"] and len(results) == 3
    assert results[1] is results[2]  # the same vector, computed once
    memo.cache_clear()
    memo("who?")
    assert calls == ["who?", "when?", "who?"] and memo.__wrapped__ is slow


def test_the_loaded_model_objects_are_left_out_of_later_garbage_collections(embedder) -> None:  # noqa: ANN001
    """torch, transformers and the model leave some 450,000 long-lived objects: frozen once the
    model is loaded, a full collection no longer goes through them (0.26 s each)."""
    import gc

    _ = embedder.model
    assert gc.get_freeze_count() > 100_000
