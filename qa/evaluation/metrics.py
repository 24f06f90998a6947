"""Scoring: SQuAD answer metrics, retrieval ranks, abstention and latency, and threshold sweeps.

Every question is asked once with the abstention threshold at 0, which records its best answer
and that answer's score (:class:`Observation`). Metrics at any threshold ``t`` follow from those
records alone: the system answers when its best score is at least ``t`` and abstains otherwise.
So one run gives the metrics at the threshold in use, at every other threshold, and the
threshold that scores best.

Answer metrics follow the official SQuAD evaluation scripts: v1.1's normalisation, exact match
and token F1 (best over the reference answers), and v2.0's convention for questions without an
answer (1 for an abstention, 0 for any answer).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from qa.evaluation.datasets import EvalQuestion
from qa.text import normalize_answer

#: The ranks at which retrieval recall is reported; the deepest is how many passages are ranked.
RECALL_KS = (1, 5, 10)
RETRIEVAL_DEPTH = max(RECALL_KS)


def exact_match(prediction: str, references: Sequence[str]) -> float:
    """1.0 when the normalised prediction equals a normalised reference, else 0.0."""
    normalised = normalize_answer(prediction)
    return float(any(normalised == normalize_answer(r) for r in references))


def f1_score(prediction: str, references: Sequence[str]) -> float:
    """SQuAD token F1 of ``prediction``: the best over ``references`` (0.0 if there are none)."""
    predicted = normalize_answer(prediction).split()
    best = 0.0
    for reference in references:
        gold = normalize_answer(reference).split()
        same = sum((Counter(predicted) & Counter(gold)).values())
        if same:
            precision, recall = same / len(predicted), same / len(gold)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def contains_reference(context: str, references: Sequence[str]) -> bool:
    """Whether the normalised ``context`` holds a normalised reference as whole tokens.

    Padding with spaces makes the containment token-aligned: "seven" is not found in
    "seventeen".
    """
    haystack = f" {normalize_answer(context)} "
    return any((needle := normalize_answer(r)) and f" {needle} " in haystack for r in references)


def gold_rank(ranked_ids: Sequence[str], gold_id: str | None) -> int | None:
    """1-based rank of the first passage from ``gold_id``, or None when none was retrieved."""
    if gold_id is None:
        return None
    for rank, found in enumerate(ranked_ids, start=1):
        if found == gold_id:
            return rank
    return None


def recall_at(ranks: Sequence[int | None], k: int) -> float | None:
    """Share of questions whose gold passage ranks within ``k`` (None without questions)."""
    if not ranks:
        return None
    return sum(r is not None and r <= k for r in ranks) / len(ranks)


def mean_reciprocal_rank(ranks: Sequence[int | None]) -> float | None:
    """Mean of ``1/rank`` (0 for a gold passage not retrieved) over questions."""
    if not ranks:
        return None
    return sum(1.0 / r for r in ranks if r is not None) / len(ranks)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (linear interpolation), or None without values."""
    return float(np.percentile(values, q)) if values else None


def _mean(values: Iterable[float]) -> float | None:
    values = list(values)
    return sum(values) / len(values) if values else None


@dataclass(frozen=True)
class Observation:
    """What the system did for one question, asked once with the threshold at 0.

    Attributes:
        question: The question and its references.
        text: The best answer's text, or None when the system returned no answer at all.
        score: That answer's score.
        context: The answer's supporting sentence or passage.
        doc_id: The document the answer comes from.
        ranked_doc_ids: Document ids of the top retrieved passages, best first.
        latency_ms: Wall time of the ask call.
        gold_passage_text: The reader's best span when given only the gold passage(s), never
            abstaining; None for unanswerable questions or when it found nothing.
        understood_as: The question as the system read it when it rewrote a follow-up in the
            light of its conversation (``Result.understood_as``); None when it stood alone.
    """

    question: EvalQuestion
    text: str | None
    score: float | None
    context: str | None
    doc_id: str | None
    ranked_doc_ids: tuple[str, ...]
    latency_ms: float
    gold_passage_text: str | None = None
    understood_as: str | None = None

    @property
    def rank(self) -> int | None:
        return gold_rank(self.ranked_doc_ids, self.question.doc_id)

    @property
    def best_score(self) -> float:
        """The best answer's score; minus infinity when there was no answer at all."""
        return -math.inf if self.text is None or self.score is None else self.score

    def answered(self, threshold: float) -> bool:
        """Whether ``ask`` answers at ``threshold`` (it abstains on scores below it)."""
        return self.best_score >= threshold

    @cached_property
    def if_answered(self) -> tuple[float, float, bool]:
        """EM, F1 and sentence hit of the best answer, were it given (threshold-free).

        Computed once: a threshold only decides whether these count.
        """
        if self.text is None:
            return 0.0, 0.0, False
        answers = self.question.answers
        return (
            exact_match(self.text, answers),
            f1_score(self.text, answers),
            contains_reference(self.context or "", answers),
        )

    @cached_property
    def gold_passage_f1(self) -> float:
        return f1_score(self.gold_passage_text or "", self.question.answers)


@dataclass(frozen=True)
class Scored:
    """One question's outcome at a given threshold."""

    observation: Observation
    abstained: bool
    em: float
    f1: float
    sentence_hit: bool | None


def score(observation: Observation, threshold: float) -> Scored:
    """Score one question at ``threshold`` with the SQuAD v2 convention for no-answer.

    An unanswerable question scores 1 when the system abstains and 0 when it answers; an
    answerable one scores 0 when it abstains. ``sentence_hit`` is None unless an answerable
    question was answered.
    """
    question = observation.question
    answered = observation.answered(threshold)
    if not question.answerable:
        value = 0.0 if answered else 1.0
        return Scored(observation, not answered, value, value, None)
    if not answered:
        return Scored(observation, True, 0.0, 0.0, None)
    em, f1, hit = observation.if_answered
    return Scored(observation, False, em, f1, hit)


@dataclass(frozen=True)
class Metrics:
    """Metrics of a group of questions at one threshold; None where a metric is undefined.

    Attributes:
        n: Questions.
        n_answerable: Questions with a reference answer.
        em: Exact match, mean over all questions (unanswerables by the v2 convention).
        f1: Token F1, likewise.
        sentence_hit: Share of answered answerable questions whose supporting sentence holds
            a reference.
        recall_at_1: Share of answerable questions whose gold document ranks first.
        recall_at_5: Within the top 5.
        recall_at_10: Within the top 10.
        mrr: Mean reciprocal rank of the gold document over answerable questions (0 when it
            is not in the top 10).
        abstain_rate: Share of all questions the system abstained on.
        abstain_precision: Of the abstentions, the share on unanswerable questions.
        abstain_recall: Of the unanswerable questions, the share abstained on.
        f1_answerable: F1 over answerable questions only.
        f1_open_best: F1 of the best open-corpus answer over answerable questions, never
            abstaining (independent of the threshold).
        f1_gold_passage: F1 of the reader's best span given only the gold passage, over
            answerable questions, never abstaining; its gap to ``f1_open_best`` is what
            retrieval costs.
        p50_ms: Median latency of an ask call.
        p95_ms: 95th percentile latency.
    """

    n: int
    n_answerable: int
    em: float | None
    f1: float | None
    sentence_hit: float | None
    recall_at_1: float | None
    recall_at_5: float | None
    recall_at_10: float | None
    mrr: float | None
    abstain_rate: float | None
    abstain_precision: float | None
    abstain_recall: float | None
    f1_answerable: float | None
    f1_open_best: float | None
    f1_gold_passage: float | None
    p50_ms: float | None
    p95_ms: float | None


def compute_metrics(observations: Sequence[Observation], threshold: float) -> Metrics:
    """All metrics of ``observations`` with the system abstaining below ``threshold``."""
    scored = [score(o, threshold) for o in observations]
    answerable = [s for s in scored if s.observation.question.answerable]
    unanswerable = [s for s in scored if not s.observation.question.answerable]
    ranks = [s.observation.rank for s in answerable]
    abstentions = [s for s in scored if s.abstained]
    correct_abstentions = sum(not s.observation.question.answerable for s in abstentions)
    latencies = [o.latency_ms for o in observations]
    return Metrics(
        n=len(scored),
        n_answerable=len(answerable),
        em=_mean(s.em for s in scored),
        f1=_mean(s.f1 for s in scored),
        sentence_hit=_mean(float(s.sentence_hit) for s in answerable if s.sentence_hit is not None),
        recall_at_1=recall_at(ranks, 1),
        recall_at_5=recall_at(ranks, 5),
        recall_at_10=recall_at(ranks, 10),
        mrr=mean_reciprocal_rank(ranks),
        abstain_rate=_mean(float(s.abstained) for s in scored),
        abstain_precision=correct_abstentions / len(abstentions)
        if unanswerable and abstentions
        else None,
        abstain_recall=correct_abstentions / len(unanswerable) if unanswerable else None,
        f1_answerable=_mean(s.f1 for s in answerable),
        f1_open_best=_mean(s.observation.if_answered[1] for s in answerable),
        f1_gold_passage=_mean(s.observation.gold_passage_f1 for s in answerable),
        p50_ms=percentile(latencies, 50),
        p95_ms=percentile(latencies, 95),
    )


def metrics_by_type(observations: Sequence[Observation], threshold: float) -> dict[str, Metrics]:
    """``compute_metrics`` per question type, types in order of first appearance."""
    groups: dict[str, list[Observation]] = {}
    for o in observations:
        groups.setdefault(o.question.type, []).append(o)
    return {kind: compute_metrics(group, threshold) for kind, group in groups.items()}


def candidate_thresholds(observations: Sequence[Observation]) -> list[float]:
    """Every threshold that changes a decision on ``observations``, plus 0.

    Between two consecutive observed scores every threshold makes the same decisions, so the
    candidates are the midpoints (a margin on both sides), 0 (answer everything with a
    non-negative score) and a value just above the highest score (abstain on everything).
    """
    scores = sorted({o.score for o in observations if o.text is not None and o.score is not None})
    if not scores:
        return [0.0]
    below = min(0.0, scores[0])
    mids = [(a + b) / 2 for a, b in zip(scores, scores[1:], strict=False)]
    above = math.nextafter(scores[-1], math.inf)
    return sorted({below, *mids, above})


@dataclass(frozen=True)
class SweepPoint:
    threshold: float
    em: float
    f1: float
    abstain_rate: float


def sweep(observations: Sequence[Observation]) -> list[SweepPoint]:
    """EM, F1 and abstention rate at every candidate threshold, lowest threshold first.

    Sorting by score makes the abstentions at any threshold a prefix of the sorted questions,
    so each point costs one binary search and two prefix sums: O(n log n) for the whole sweep.
    """
    n = len(observations)
    if not n:
        return []
    order = sorted(observations, key=lambda o: o.best_score)
    scores = np.array([o.best_score for o in order])
    answerable = np.array([o.question.answerable for o in order])
    # What each question adds to the total when answered, and when abstained on.
    em_answered = np.where(answerable, [o.if_answered[0] for o in order], 0.0)
    f1_answered = np.where(answerable, [o.if_answered[1] for o in order], 0.0)
    abstained_right = (~answerable).astype(float)
    em_gain = _suffix_sums(em_answered)
    f1_gain = _suffix_sums(f1_answered)
    abstain_gain = _prefix_sums(abstained_right)
    points = []
    for threshold in candidate_thresholds(observations):
        i = int(np.searchsorted(scores, threshold, side="left"))  # the first answered question
        points.append(
            SweepPoint(
                threshold,
                float(em_gain[i] + abstain_gain[i]) / n,
                float(f1_gain[i] + abstain_gain[i]) / n,
                i / n,
            )
        )
    return points


def _prefix_sums(values: np.ndarray) -> np.ndarray:
    """``out[i]`` is the sum of ``values[:i]`` (``len(values) + 1`` entries)."""
    return np.concatenate([[0.0], np.cumsum(values)])


def _suffix_sums(values: np.ndarray) -> np.ndarray:
    """``out[i]`` is the sum of ``values[i:]`` (``len(values) + 1`` entries)."""
    sums = _prefix_sums(values)
    return sums[-1] - sums


def best_threshold(points: Sequence[SweepPoint]) -> SweepPoint:
    """The sweep point with the highest F1; on a tie the lowest threshold (answer more)."""
    return max(points, key=lambda p: (p.f1, -p.threshold))
