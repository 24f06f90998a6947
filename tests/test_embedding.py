"""The embedder's question encoders: the int8 ONNX copy against the torch model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qa.embedding import Embedder, ModelLoadError, OnnxQueryEncoder
from qa.settings import Settings

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
    with pytest.raises(ValueError, match="int8 copy of the default embedding model only"):
        Embedder(str(tmp_path), query_encoder="onnx-int8")


def test_torch_setting_and_other_models_use_no_onnx_encoder(tmp_path: Path) -> None:
    assert Embedder(query_encoder="torch").onnx_query_encoder is None
    assert Embedder(str(tmp_path), query_encoder="auto").onnx_query_encoder is None


def test_forced_onnx_without_its_packages_says_what_to_install(monkeypatch) -> None:  # noqa: ANN001
    import builtins

    real_import = builtins.__import__

    def no_onnxruntime(name: str, *args: object, **kwargs: object) -> object:
        if name == "onnxruntime":
            raise ImportError("No module named 'onnxruntime'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnxruntime)
    with pytest.raises(ModelLoadError, match="QA_QUERY_ENCODER=torch"):
        _ = Embedder(query_encoder="onnx-int8").onnx_query_encoder
    assert Embedder(query_encoder="auto").onnx_query_encoder is None  # auto falls back quietly


@pytest.mark.slow
def test_onnx_question_vectors_agree_with_the_torch_model(embedder) -> None:  # noqa: ANN001
    onnx = Embedder(query_encoder="auto").onnx_query_encoder
    assert isinstance(onnx, OnnxQueryEncoder)
    ours = np.stack([onnx.encode([q])[0] for q in QUESTIONS])
    theirs = embedder.encode(QUESTIONS)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    cosines = np.sum(ours * theirs, axis=1)
    assert cosines.min() > 0.995, cosines
    # Each question is nearest to its own torch vector: the copy ranks like the model.
    assert (np.argmax(ours @ theirs.T, axis=1) == np.arange(len(QUESTIONS))).all()
    # A batch gives the vectors of the texts one by one (padding does not leak in).
    np.testing.assert_allclose(onnx.encode(QUESTIONS), ours, atol=1e-4)


@pytest.mark.slow
def test_encode_query_uses_the_configured_encoder(embedder) -> None:  # noqa: ANN001
    torch_q = Embedder(query_encoder="torch")
    torch_q.__dict__["model"] = embedder.model
    np.testing.assert_allclose(
        torch_q.encode_query(QUESTIONS[0]), embedder.encode([QUESTIONS[0]])[0], atol=1e-6
    )
    onnx_q = Embedder(query_encoder="onnx-int8")
    onnx_q.__dict__["model"] = embedder.model
    vector = onnx_q.encode_query(QUESTIONS[0])
    assert not np.allclose(vector, embedder.encode([QUESTIONS[0]])[0], atol=1e-6)
    assert float(vector @ embedder.encode([QUESTIONS[0]])[0]) > 0.995
