"""The answer model: signals to features, fitting, saving, loading and the packaged file."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from qa.reading.answers import recommended_threshold
from qa.reading.scoring import (
    DEFAULT_ANSWER_MODEL,
    FEATURES,
    AnswerModel,
    AnswerModelError,
    Signals,
    fit_answer_model,
    support,
)


def signals(**changes: float) -> Signals:
    base = dict(
        span_prob=0.5,
        null_prob=0.2,
        sentence_score=0.6,
        rank=2,
        dense_score=0.4,
        lexical_share=0.5,
        support=0.0,
        best_prob=0.5,
        best_sentence_score=0.6,
        words=3,
    )
    return Signals(**{**base, **changes})  # type: ignore[arg-type]


def test_features_follow_the_declared_order_and_stay_finite_at_the_edges() -> None:
    x = signals().features()
    assert x.shape == (len(FEATURES),)
    assert x[FEATURES.index("log_span_prob")] == pytest.approx(math.log(0.5))
    assert x[FEATURES.index("inverse_rank")] == pytest.approx(0.5)
    assert x[FEATURES.index("relative_prob")] == pytest.approx(1.0)
    edge = signals(span_prob=0.0, null_prob=1.0, rank=0, dense_score=None, best_prob=0.0, words=0)
    assert np.isfinite(edge.features()).all()


def test_support_sums_the_other_readings_of_the_same_words() -> None:
    assert support([0.5, 0.2, 0.1], ["seoul", "seoul", "1994"]) == pytest.approx([0.2, 0.5, 0.0])


def _synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Candidates whose rightness depends on span probability and sentence score."""
    rng = np.random.default_rng(seed)
    rows, labels = [], []
    for _ in range(n):
        p, s = rng.uniform(0.01, 1), rng.uniform(0, 1)
        rows.append(signals(span_prob=p, sentence_score=s, best_prob=max(p, 0.5)).features())
        labels.append(int(rng.uniform() < 1 / (1 + math.exp(-(4 * p + 3 * s - 4)))))
    return np.stack(rows), np.array(labels)


def test_a_fitted_model_orders_and_calibrates_held_out_candidates(tmp_path: Path) -> None:
    x, y = _synthetic(3000, 1)
    model = fit_answer_model(x, y, c=1.0, info={"data": "synthetic"})
    coef = dict(zip(FEATURES, model.coef, strict=True))
    assert coef["log_span_prob"] > 0 and coef["sentence_score"] > 0
    x_test, y_test = _synthetic(3000, 2)
    p = model.probability(x_test)
    assert ((p > 0) & (p < 1)).all()
    # Calibrated: in each probability band the share of right candidates is close to it.
    for lo, hi in ((0.0, 0.3), (0.3, 0.6), (0.6, 1.0)):
        band = (p >= lo) & (p < hi)
        assert band.sum() > 100
        assert abs(y_test[band].mean() - p[band].mean()) < 0.06
    path = tmp_path / "model.json"
    model.save(path)
    again = AnswerModel.load(path)
    assert np.allclose(again.probability(x_test), p, atol=1e-6)
    assert again.info == {"data": "synthetic"}


def test_fitting_needs_both_classes_and_matching_shapes() -> None:
    x, _ = _synthetic(20, 3)
    with pytest.raises(ValueError, match="both right and wrong"):
        fit_answer_model(x, np.ones(20))
    with pytest.raises(ValueError, match="do not match"):
        fit_answer_model(x[:, :3], np.arange(20) % 2)


def test_a_model_made_for_other_features_is_refused(tmp_path: Path) -> None:
    data = AnswerModel.neutral().to_dict()
    path = tmp_path / "m.json"
    path.write_text(
        json.dumps({**data, "features": ["something_else"] * len(FEATURES)}), encoding="utf-8"
    )
    with pytest.raises(AnswerModelError, match="qa calibrate"):
        AnswerModel.load(path)
    path.write_text(json.dumps({**data, "coef": [1.0]}), encoding="utf-8")
    with pytest.raises(AnswerModelError, match="feature count"):
        AnswerModel.load(path)
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(AnswerModelError, match="cannot read"):
        AnswerModel.load(path)


def test_the_neutral_model_ranks_by_span_probability() -> None:
    model = AnswerModel.neutral()
    low, high = signals(span_prob=0.2).features(), signals(span_prob=0.8).features()
    p = model.probability(np.stack([low, high]))
    assert p[1] > p[0] and p[1] == pytest.approx(0.8 / 1.8)


def test_the_packaged_model_loads_and_records_how_it_was_fitted() -> None:
    model = AnswerModel.load(DEFAULT_ANSWER_MODEL)
    for key in ("how", "fit_questions", "validation_file", "validation", "c"):
        assert key in model.info
    assert model.info["validation_file"] != "xquad.en.dev.json", "never tuned on xquad-dev"
    coef = dict(zip(FEATURES, model.coef, strict=True))
    # A surer reader and a better sentence match must both raise the probability.
    assert coef["log_span_prob"] > 0 or coef["relative_prob"] > 0
    assert coef["sentence_score"] > 0 or coef["best_sentence_score"] > 0
    sure = signals(
        span_prob=0.95,
        null_prob=0.01,
        best_prob=0.95,
        sentence_score=0.8,
        rank=1,
        dense_score=0.6,
        lexical_share=1.0,
    )
    unsure = signals(span_prob=0.05, null_prob=0.9, best_prob=0.05, sentence_score=0.1, rank=9)
    p = model.probability(np.stack([sure.features(), unsure.features()]))
    # The sure answer is given, the unsure one abstained on, at the shipped threshold.
    assert p[0] > recommended_threshold("reader") > p[1]
