"""The answer model: one calibrated probability that a span is right, from signals we have.

Every candidate span the reader finds is described by a few signals the pipeline already
computes (:data:`FEATURES`): the reader's probability of the span in its window and of "no
answer" there, how well its sentence matches the question, how highly retrieval ranked its
passage, whether other passages found the same words, and how the span compares with the
question's best one. A logistic regression over those signals, fitted by ``qa calibrate`` on
open-corpus asks (answerable ones, and ones made unanswerable by taking the question's own
paragraph out of the index), turns them into ``P(span is a right answer)``.

That one number both ranks spans across passages and decides abstention (the system answers
when the best span's probability reaches the threshold chosen on the validation set). It means
the same for every passage and document, and it is what ``Answer.score`` reports.

The fitted model is a small JSON file (``answer_model.json``): feature names, the
standardisation, coefficients and intercept, and a record of how it was fitted. Applying it is
a dot product, so asking needs no scikit-learn.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: The model shipped with the package, fitted for the packaged reader.
DEFAULT_ANSWER_MODEL = Path(__file__).with_name("answer_model.json")

#: The signals of one candidate span, in the order the model's coefficients use.
FEATURES: tuple[str, ...] = (
    "log_span_prob",  # log of the reader's probability of the span in its window
    "log_answer_prob",  # log of 1 - the window's "no answer" probability
    "sentence_score",  # extractor score of the best sentence holding the span
    "inverse_rank",  # 1 / retrieval rank of the best passage holding the span
    "dense_score",  # cosine of that passage to the question (0 if unknown)
    "lexical_share",  # its BM25 score over the best BM25 score of the passages read
    "log_support",  # log(1 + summed span probability of the same words elsewhere)
    "relative_prob",  # span probability over the best span probability of the question
    "log_best_prob",  # log of the best span probability of the question
    "best_sentence_score",  # best sentence score among all passages read
    "log_words",  # log of the span's length in words
)

_EPS = 1e-6


@dataclass(frozen=True)
class Signals:
    """The raw signals of one candidate, before they become :data:`FEATURES`.

    Attributes:
        span_prob: Reader probability of the span in its window.
        null_prob: Reader probability of "no answer" in that window.
        sentence_score: Extractor score of the best sentence holding the span.
        rank: 1-based retrieval rank of the best passage holding the span.
        dense_score: Cosine of that passage to the question, if known.
        lexical_share: Its BM25 score over the best BM25 score of the passages read.
        support: Summed span probability of other readings of the same words.
        best_prob: Best span probability among the question's candidates.
        best_sentence_score: Best sentence score among the passages read.
        words: Words in the span.
    """

    span_prob: float
    null_prob: float
    sentence_score: float
    rank: int
    dense_score: float | None
    lexical_share: float
    support: float
    best_prob: float
    best_sentence_score: float
    words: int

    def features(self) -> np.ndarray:
        """The feature vector, in :data:`FEATURES` order."""
        return np.array(
            [
                math.log(max(self.span_prob, _EPS)),
                math.log(max(1.0 - self.null_prob, _EPS)),
                self.sentence_score,
                1.0 / max(self.rank, 1),
                self.dense_score or 0.0,
                self.lexical_share,
                math.log1p(self.support),
                self.span_prob / max(self.best_prob, _EPS),
                math.log(max(self.best_prob, _EPS)),
                self.best_sentence_score,
                math.log(max(self.words, 1)),
            ],
            dtype=np.float64,
        )


class AnswerModelError(ValueError):
    """The answer model file is missing, malformed or made for other features."""


@dataclass(frozen=True)
class AnswerModel:
    """A fitted logistic regression over standardised :data:`FEATURES`.

    Attributes:
        mean: Per-feature mean subtracted before weighting.
        scale: Per-feature standard deviation divided by before weighting.
        coef: Per-feature weight.
        intercept: Bias.
        info: How the model was fitted (data, sizes, validation figures), kept for the record.
    """

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    info: Mapping[str, Any]

    def probability(self, features: np.ndarray) -> np.ndarray:
        """``P(right)`` for each row of ``features`` (shape ``(n, len(FEATURES))``)."""
        z = ((np.atleast_2d(features) - self.mean) / self.scale) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-z))

    def to_dict(self) -> dict[str, Any]:
        return {
            "features": list(FEATURES),
            "mean": [round(float(x), 8) for x in self.mean],
            "scale": [round(float(x), 8) for x in self.scale],
            "coef": [round(float(x), 8) for x in self.coef],
            "intercept": round(float(self.intercept), 8),
            "info": dict(self.info),
        }

    def save(self, path: Path) -> None:
        Path(path).write_text(
            json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AnswerModel:
        """Build from :meth:`to_dict` output.

        Raises:
            AnswerModelError: If the features differ from :data:`FEATURES` or a field is
                missing or of the wrong length.
        """
        try:
            names = tuple(data["features"])
            arrays = [np.asarray(data[k], dtype=np.float64) for k in ("mean", "scale", "coef")]
            intercept = float(data["intercept"])
        except (KeyError, TypeError, ValueError) as exc:
            raise AnswerModelError(f"malformed answer model: {exc}") from None
        if names != FEATURES:
            raise AnswerModelError(
                f"answer model made for features {names}, this version computes {FEATURES}: "
                "fit it again with `qa calibrate`"
            )
        if any(a.shape != (len(FEATURES),) for a in arrays) or (arrays[1] <= 0).any():
            raise AnswerModelError("answer model arrays do not match the feature count")
        mean, scale, coef = arrays
        return cls(mean, scale, coef, intercept, dict(data.get("info", {})))

    @classmethod
    def neutral(cls) -> AnswerModel:
        """A model that ranks by the reader's span probability alone (``p / (1 + p)``).

        Used where no fitted model can be had; its scores are not calibrated.
        """
        coef = np.zeros(len(FEATURES))
        coef[FEATURES.index("log_span_prob")] = 1.0
        n = len(FEATURES)
        return cls(np.zeros(n), np.ones(n), coef, 0.0, {"how": "neutral: span probability only"})

    @classmethod
    def load(cls, path: Path = DEFAULT_ANSWER_MODEL) -> AnswerModel:
        """Read a model file (the packaged one by default).

        Raises:
            AnswerModelError: If it cannot be read or does not fit this version.
        """
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise AnswerModelError(f"cannot read answer model {path}: {exc}") from None
        return cls.from_dict(data)


def fit_answer_model(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    c: float = 1.0,
    info: Mapping[str, Any] | None = None,
) -> AnswerModel:
    """Fit the logistic regression (scikit-learn) on candidate features and right/wrong labels.

    Args:
        features: ``(n, len(FEATURES))`` candidate features.
        labels: ``(n,)`` 1 where the candidate is a right answer, else 0.
        c: Inverse L2 regularisation strength.
        info: Facts to record with the model.

    Raises:
        ValueError: If the labels are all one class or the shapes disagree.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    if x.ndim != 2 or x.shape[1] != len(FEATURES) or len(x) != len(y):
        raise ValueError(f"features {x.shape} and labels {y.shape} do not match {FEATURES}")
    if len(set(y.tolist())) < 2:
        raise ValueError("the answer model needs both right and wrong candidates to fit")
    scaler = StandardScaler().fit(x)
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    regression = LogisticRegression(C=c, max_iter=2000).fit((x - scaler.mean_) / scale, y)
    return AnswerModel(
        mean=scaler.mean_.copy(),
        scale=scale,
        coef=regression.coef_[0].copy(),
        intercept=float(regression.intercept_[0]),
        info=dict(info or {}),
    )


def support(probs: Sequence[float], keys: Sequence[str]) -> list[float]:
    """For each candidate, the summed probability of the *other* candidates with its key.

    Args:
        probs: Candidate span probabilities.
        keys: Normalised candidate texts: equal keys say the same thing.
    """
    totals: dict[str, float] = {}
    for key, p in zip(keys, probs, strict=True):
        totals[key] = totals.get(key, 0.0) + p
    return [totals[key] - p for key, p in zip(keys, probs, strict=True)]
