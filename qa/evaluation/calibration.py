"""Fit the answer model and choose the abstention threshold from data (``qa calibrate``).

How the shipped answer model is made:

1. **Fitting asks.** Questions of a SQuAD-format training file that the packaged reader was
   *not* trained on (worked out from the reader's ``metrics.json``: the files, shares and seed
   of its training sample), asked over an open corpus of all that file's paragraphs. Half of
   them are asked with their own paragraph left out of the index, so the corpus cannot answer
   them and every candidate is wrong: on-topic unanswerable questions, like the ones users
   ask. Every candidate span the pipeline proposes (:meth:`AnswerFinder.candidates`) gives one
   row of signals, labelled right when its token F1 against a reference is at least
   ``RIGHT_F1``.
2. **Validation asks.** The same on the validation file (qa-val), half without their paragraph.
   The threshold is chosen there by the product's promise: the lowest threshold (so the most
   answers) that still abstains on at least ``MIN_ABSTAIN`` of the questions the corpus cannot
   answer; the regularisation strength is the one with the best F1 at that point (SQuAD v2
   convention: abstaining on an unanswerable question scores 1). ``min_abstain=None`` chooses
   the threshold with the best F1 instead, which on a half-unanswerable set abstains far more
   than the promise asks and leaves answerable questions unanswered.
3. The model (:class:`qa.reading.scoring.AnswerModel`) and the threshold are written with a
   record of all of the above; the development set (xquad-dev) is never used.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from qa.evaluation.datasets import EvalQuestion, load_squad, sample
from qa.evaluation.metrics import (
    Observation,
    best_threshold,
    compute_metrics,
    f1_score,
    sweep,
)
from qa.evaluation.runner import as_unanswerable, measuring, without_gold
from qa.indexing.build import build_index
from qa.pipeline import QA
from qa.reading.answers import THRESHOLDS_PATH, AnswerFinder
from qa.reading.scoring import DEFAULT_ANSWER_MODEL, FEATURES, AnswerModel, fit_answer_model
from qa.settings import Settings
from qa.types import Document

if TYPE_CHECKING:
    from qa.protocols import Reader

#: A candidate counts as right when its token F1 against a reference reaches this.
RIGHT_F1 = 0.5
#: Inverse regularisation strengths tried; the one with the best validation F1 is kept.
C_GRID = (0.01, 0.1, 1.0, 10.0)
#: Share of the questions asked without their own paragraph.
UNANSWERABLE_SHARE = 0.5
#: The operating point abstains on at least this share of the validation questions the corpus
#: cannot answer: the product says so when it does not hold the answer at least 4 times in 5,
#: and 0.05 more covers the sampling error of some 200 such questions (one standard error is
#: about 0.025).
MIN_ABSTAIN = 0.85


@dataclass(frozen=True)
class Asked:
    """One question asked: every candidate's features and F1.

    ``question`` is as scored: a question asked without its paragraph is unanswerable.
    """

    question: EvalQuestion
    features: np.ndarray  # (candidates, len(FEATURES))
    f1: np.ndarray  # (candidates,) token F1 of each candidate (0 when unanswerable)
    texts: tuple[str, ...]


def held_out(
    data_dir: Path, file_name: str, training: dict[str, Any]
) -> tuple[list[EvalQuestion], list[Document]]:
    """The questions of ``data_dir/file_name`` the reader was not trained on, and the paragraphs.

    Args:
        data_dir: The training data folder.
        file_name: One SQuAD file in it.
        training: The ``training`` record of the reader's ``metrics.json`` (its ``fractions``
            and ``sample_seed``, or ``seed`` when absent, reproduce which questions it sampled).
    """
    from qa.evaluation.datasets import load_examples

    seed = training.get("sample_seed", training["seed"])
    trained = {e.qid for e in load_examples(data_dir, training.get("fractions"), seed)}
    questions, documents = load_squad(data_dir / file_name)
    return [q for q in questions if f"{file_name}/{q.id}" not in trained], documents


def ask_candidates(
    settings: Settings,
    questions: Sequence[EvalQuestion],
    documents: Sequence[Document],
    *,
    unanswerable_share: float = UNANSWERABLE_SHARE,
    progress: bool = True,
    reader: Reader | None = None,
) -> list[Asked]:
    """Ask each question over an open corpus of ``documents`` and keep every candidate.

    A share of the questions is asked with its own paragraph left out of retrieval
    (:func:`qa.evaluation.runner.without_gold`); their candidates are all wrong. ``reader``
    replaces the one ``settings`` names.
    """
    hidden = without_gold(questions, unanswerable_share)
    asked: list[Asked] = []
    with tempfile.TemporaryDirectory(prefix="qa-calibrate-") as tmp:
        # Every passage read: the model is fitted on the spans of a whole reading.
        scratch = measuring(settings).replace(
            index_dir=Path(tmp) / "index", corpus_dir=Path(tmp) / "corpus", stop_reading_at=1.0
        )
        qa = QA(scratch)
        build_index(scratch, list(documents), qa.embedder, show_progress=progress)
        index = qa.index
        # The signals do not depend on the answer model, so any model will do here; the
        # neutral one keeps calibration working before a model has ever been fitted.
        finder = AnswerFinder(
            qa.embedder, scratch, reader=reader, answer_model=AnswerModel.neutral()
        )
        for q in tqdm(questions, desc="Asking", unit="question", disable=not progress):
            exclude: frozenset[str] = frozenset()
            if q.id in hidden and q.doc_id is not None:
                exclude = frozenset({q.doc_id})
                q = as_unanswerable(q)
            passages = qa.search(q.question, k=scratch.read_passages, exclude=exclude)
            kind, candidates = finder.candidates(
                q.question, passages, index.documents, sentence_vectors=index.sentences
            )
            if kind != "reader":
                raise ValueError("calibration needs the transformer reader; none could be loaded")
            texts = tuple(c.answer.text for c in candidates)
            asked.append(
                Asked(
                    question=q,
                    features=np.stack([c.signals.features() for c in candidates])
                    if candidates
                    else np.zeros((0, len(FEATURES))),
                    f1=np.array([f1_score(t, q.answers) for t in texts]),
                    texts=texts,
                )
            )
    return asked


def _observations(model: AnswerModel, asked: Sequence[Asked]) -> list[Observation]:
    """Each question's best candidate under ``model``, as the evaluation metrics take it."""
    out = []
    for a in asked:
        text, score = None, None
        if len(a.features):
            p = model.probability(a.features)
            best = int(np.argmax(p))
            text, score = a.texts[best], float(p[best])
        out.append(Observation(a.question, text, score, None, None, (), 0.0))
    return out


def best_operating_point(
    observations: Sequence[Observation], min_abstain: float | None = MIN_ABSTAIN
) -> dict[str, float]:
    """The threshold that answers the most while abstaining on at least ``min_abstain`` of the
    unanswerable questions (the lowest such threshold), and what it does. With ``min_abstain``
    None, or no unanswerable question, the threshold with the best F1 (abstention scores 1 on
    an unanswerable question). Thresholds come from the evaluation's own sweep
    (:func:`qa.evaluation.metrics.sweep`).

    Returns:
        ``threshold``, ``f1`` (all questions), ``f1_answerable``, ``answered_answerable`` (share
        of answerable questions answered) and ``abstained_unanswerable`` (NaN where undefined).
    """
    points = sweep(observations)
    unanswerable = [o for o in observations if not o.question.answerable]
    if min_abstain is None or not unanswerable:
        point = best_threshold(points)
    else:

        def abstained(threshold: float) -> float:
            return compute_metrics(unanswerable, threshold).abstain_recall or 0.0

        # Never empty: the sweep's highest threshold abstains on every question.
        keeping = [p for p in points if abstained(p.threshold) >= min_abstain]
        point = min(keeping, key=lambda p: p.threshold)
    everything = compute_metrics(observations, point.threshold)
    answerable = [o for o in observations if o.question.answerable]
    abstained_share = (
        compute_metrics(answerable, point.threshold).abstain_rate if answerable else None
    )

    def value(x: float | None) -> float:
        return float("nan") if x is None else float(x)

    return {
        "threshold": float(point.threshold),
        "f1": float(point.f1),
        "f1_answerable": value(everything.f1_answerable),
        "answered_answerable": value(None if abstained_share is None else 1.0 - abstained_share),
        "abstained_unanswerable": value(everything.abstain_recall),
    }


def calibrate(
    data_dir: Path,
    files: Sequence[str],
    val_file: Path,
    settings: Settings,
    *,
    reader_metrics: Path,
    limit: int | None = None,
    out: Path = DEFAULT_ANSWER_MODEL,
    thresholds: Path = THRESHOLDS_PATH,
    progress: bool = True,
    reader: Reader | None = None,
    min_abstain: float | None = MIN_ABSTAIN,
) -> dict[str, Any]:
    """Fit the answer model on held-out training questions and choose it and its threshold on
    the validation file; write both (see the module docstring).

    Args:
        data_dir: Training data folder.
        files: SQuAD files of ``data_dir`` whose held-out questions fit the model.
        val_file: SQuAD-format validation file.
        settings: Settings to ask with (reader, retrieval).
        reader_metrics: The reader's ``metrics.json`` (which questions it was trained on).
        limit: Fit on a deterministic sample of this many held-out questions per file.
        out: Where the answer model is written.
        thresholds: The thresholds file whose ``reader`` entry is rewritten.
        progress: Show progress bars.
        reader: A reader to use instead of the one ``settings`` names.
        min_abstain: Share of the validation file's unanswerable questions the threshold
            abstains on at least (``best_operating_point``); None: the best F1.

    Returns:
        The record written into the model's ``info``.
    """
    began = time.perf_counter()
    training = json.loads(Path(reader_metrics).read_text(encoding="utf-8"))["training"]
    fit_asks: list[Asked] = []
    sources = {}
    for name in files:
        questions, documents = held_out(data_dir, name, training)
        chosen = sample(questions, limit)
        sources[name] = {"held_out": len(questions), "asked": len(chosen)}
        fit_asks += ask_candidates(settings, chosen, documents, progress=progress, reader=reader)
    val_questions, val_documents = load_squad(val_file)
    val_asks = ask_candidates(
        settings, val_questions, val_documents, progress=progress, reader=reader
    )

    x = np.concatenate([a.features for a in fit_asks if len(a.features)])
    y = (np.concatenate([a.f1 for a in fit_asks if len(a.features)]) >= RIGHT_F1).astype(int)
    trials = []
    for c in C_GRID:
        model = fit_answer_model(x, y, c=c)
        trials.append((best_operating_point(_observations(model, val_asks), min_abstain), c, model))
    point, c, model = max(trials, key=lambda trial: trial[0]["f1"])
    best_f1 = best_operating_point(_observations(model, val_asks), None)
    info = {
        "fitted": datetime.now(UTC).date().isoformat(),
        "how": (
            "logistic regression (scikit-learn) over the candidate signals of "
            "qa.reading.scoring; a candidate is right when its token F1 reaches "
            f"{RIGHT_F1}. Fitted on open-corpus asks of held-out training questions, "
            f"{UNANSWERABLE_SHARE:.0%} of them asked with their own paragraph left out of the "
            f"index; on the validation file (asked the same way) {_rule(min_abstain)}, and C "
            "the one with the best F1 there (abstention scoring 1 on unanswerable "
            "questions)."
        ),
        "min_abstain": min_abstain,
        "fit_files": sources,
        "fit_questions": len(fit_asks),
        "fit_candidates": int(len(y)),
        "fit_right_share": round(float(y.mean()), 4),
        "validation_file": Path(val_file).name,
        "validation_questions": len(val_asks),
        "c": c,
        "c_grid": {str(cc): round(t[0]["f1"], 4) for t, cc in zip(trials, C_GRID, strict=True)},
        "validation": {k: round(v, 4) for k, v in point.items()},
        "validation_best_f1": {k: round(v, 4) for k, v in best_f1.items()},
        "reader": _reader_identity(Path(reader_metrics).parent, settings.reader_model),
        "seconds": round(time.perf_counter() - began, 1),
    }
    model = AnswerModel(model.mean, model.scale, model.coef, model.intercept, info)
    model.save(out)
    _write_threshold(thresholds, point, info)
    return info


def _reader_identity(folder: Path, name: str) -> dict[str, str]:
    """Which reader the model was fitted for: its setting and its weights' SHA-256."""
    weights = folder / "model.safetensors"
    identity = {"reader_model": name}
    if weights.is_file():
        identity["weights_sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    return identity


def _rule(min_abstain: float | None) -> str:
    """How the threshold was chosen, in words (the model's record and the thresholds file)."""
    if min_abstain is None:
        return "the threshold with the best F1"
    return (
        f"the lowest threshold that abstains on at least {min_abstain:.0%} of the unanswerable "
        "questions"
    )


def _write_threshold(path: Path, point: dict[str, float], info: dict[str, Any]) -> None:
    table = json.loads(Path(path).read_text(encoding="utf-8"))
    table["reader"] = {
        "value": round(point["threshold"], 4),
        "score": (
            "the answer model's probability that the span is right (qa.reading.scoring: "
            "logistic regression over reader, sentence and retrieval signals)"
        ),
        "how": (
            f"`qa calibrate` on {info['fitted']}: {_rule(info.get('min_abstain'))}"
            f" on {info['validation_file']} ({info['validation_questions']} questions, half "
            "asked without their paragraph), where it answers "
            f"{point['answered_answerable']:.1%} of the answerable questions and abstains on "
            f"{point['abstained_unanswerable']:.1%} of the others (F1 {point['f1']:.3f})."
        ),
    }
    Path(path).write_text(json.dumps(table, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
