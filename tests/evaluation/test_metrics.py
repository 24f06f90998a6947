"""Answer, retrieval and threshold metrics against values computed by hand."""

from __future__ import annotations

import random

import pytest

from qa.evaluation.datasets import EvalQuestion
from qa.evaluation.metrics import (
    Observation,
    best_threshold,
    candidate_thresholds,
    compute_metrics,
    contains_reference,
    exact_match,
    f1_score,
    gold_rank,
    mean_reciprocal_rank,
    metrics_by_type,
    normalize_answer,
    percentile,
    recall_at,
    score,
    sweep,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The  Quick, brown-fox!", "quick brownfox"),
        ("An apple a day", "apple day"),
        ("  Theatre\tthe\nend ", "theatre end"),
        ("‘trivial’", "‘trivial’"),  # the official script strips ASCII punctuation only
        ("27–28 February.", "27–28 february"),
    ],
)
def test_normalize_answer(text: str, expected: str) -> None:
    assert normalize_answer(text) == expected


def test_exact_match_takes_any_reference() -> None:
    assert exact_match("the Panmunjom.", ["Panmunjom"]) == 1.0
    assert exact_match("Panmunjom talks", ["Panmunjom", "Hanoi"]) == 0.0
    assert exact_match("Hanoi", ["Panmunjom", "hanoi"]) == 1.0


@pytest.mark.parametrize(
    ("prediction", "references", "expected"),
    [
        # 3 shared of 3 predicted and 6 gold tokens: P = 1, R = 1/2, F1 = 2/3.
        ("up to seven", ["up to seven officers in each"], 2 / 3),
        # Against "seven": P = 1/2, R = 1, F1 = 2/3; against the long one: P = 1, R = 1/3,
        # F1 = 1/2. The best counts.
        ("seven officers", ["up to seven officers in each", "seven"], 2 / 3),
        # Shared tokens are counted with multiplicity: y twice; P = 2/3, R = 2/4, F1 = 4/7.
        ("x y y", ["y y y z"], 4 / 7),
        ("nothing alike", ["seven"], 0.0),
        ("the", ["seven"], 0.0),
        ("anything", [], 0.0),
    ],
)
def test_f1_score(prediction: str, references: list[str], expected: float) -> None:
    assert f1_score(prediction, references) == pytest.approx(expected)


def test_contains_reference_is_token_aligned() -> None:
    assert contains_reference("There were up to seven officers.", ["Seven officers"])
    assert contains_reference("It happened at Panmunjom, on 30 June.", ["nothing", "panmunjom"])
    assert not contains_reference("seventeen officers", ["seven"])
    assert not contains_reference("The plan.", ["the"])  # normalises to nothing: never found


def test_ranks_recall_and_mrr() -> None:
    assert gold_rank(["a", "b", "a", "c"], "a") == 1
    assert gold_rank(["a", "b", "a", "c"], "c") == 4
    assert gold_rank(["a", "b"], "z") is None
    assert gold_rank(["a"], None) is None
    ranks = [1, 3, None, 7]
    assert recall_at(ranks, 1) == 0.25
    assert recall_at(ranks, 5) == 0.5
    assert recall_at(ranks, 10) == 0.75
    assert mean_reciprocal_rank(ranks) == pytest.approx((1 + 1 / 3 + 1 / 7) / 4)
    assert recall_at([], 5) is None and mean_reciprocal_rank([]) is None


def test_percentile_interpolates() -> None:
    assert percentile([10.0, 20.0, 30.0, 40.0], 50) == 25.0
    assert percentile([10.0, 20.0, 30.0, 40.0], 95) == pytest.approx(38.5)
    assert percentile([], 50) is None


def _q(qid: str, answers: tuple[str, ...], doc: str | None, kind: str) -> EvalQuestion:
    return EvalQuestion(qid, f"question {qid}?", answers, doc, kind, doc is not None)


def _obs(
    question: EvalQuestion,
    text: str | None,
    score_: float | None,
    ranked: tuple[str, ...] = (),
    context: str | None = None,
    latency: float = 10.0,
    gold: str | None = None,
) -> Observation:
    return Observation(question, text, score_, context or text, "doc", ranked, latency, gold)


@pytest.fixture
def four() -> list[Observation]:
    """A right answer (0.9), a wrong one (0.3) and two unanswerables answered (0.2, 0.5)."""
    return [
        _obs(
            _q("q1", ("Panmunjom",), "d1", "where"),
            "Panmunjom",
            0.9,
            ("d2", "d1"),
            context="They met at Panmunjom.",
            latency=10,
            gold="Panmunjom",
        ),
        _obs(
            _q("q2", ("seven",), "d2", "how many"),
            "five",
            0.3,
            ("d2",),
            context="Up to seven officers each.",
            latency=20,
            gold="up to seven",
        ),
        _obs(_q("q3", (), None, "unanswerable"), "Paris", 0.2, ("d1",), latency=30),
        _obs(_q("q4", (), None, "unanswerable"), "Hanoi", 0.5, ("d2",), latency=40),
    ]


def test_score_follows_the_squad_v2_convention(four: list[Observation]) -> None:
    right, wrong, unans, _ = four
    assert (score(right, 0.5).em, score(right, 0.5).f1, score(right, 0.5).sentence_hit) == (
        1,
        1,
        True,
    )
    assert score(right, 0.95).abstained and score(right, 0.95).f1 == 0.0
    assert score(wrong, 0.0).f1 == 0.0 and score(wrong, 0.0).sentence_hit is True
    assert score(unans, 0.0).f1 == 0.0 and score(unans, 0.0).sentence_hit is None
    assert score(unans, 0.25).em == 1.0 and score(unans, 0.25).abstained
    nothing = _obs(_q("q5", ("x",), "d1", "what"), None, None)
    assert score(nothing, 0.0).abstained and score(nothing, 0.0).f1 == 0.0


def test_metrics_at_a_threshold(four: list[Observation]) -> None:
    at0 = compute_metrics(four, 0.0)
    assert (at0.n, at0.n_answerable) == (4, 2)
    assert at0.em == at0.f1 == 0.25
    assert at0.sentence_hit == 1.0  # both answered answerables point at the right sentence
    assert at0.abstain_rate == 0.0
    assert at0.abstain_precision is None and at0.abstain_recall == 0.0
    # Gold ranks of the answerables: 2 and 1.
    assert (at0.recall_at_1, at0.recall_at_5, at0.mrr) == (0.5, 1.0, 0.75)
    # "up to seven" against "seven": P = 1/3, R = 1, F1 = 1/2.
    assert at0.f1_gold_passage == pytest.approx((1 + 1 / 2) / 2)
    assert at0.p50_ms == 25.0

    at07 = compute_metrics(four, 0.7)  # abstains on q2, q3, q4
    assert at07.f1 == 0.75 and at07.abstain_rate == 0.75
    assert at07.abstain_precision == pytest.approx(2 / 3) and at07.abstain_recall == 1.0
    assert at07.f1_answerable == 0.5
    assert at07.f1_open_best == at0.f1_open_best == 0.5  # never abstains: threshold-free
    assert at07.sentence_hit == 1.0

    by_type = metrics_by_type(four, 0.7)
    assert list(by_type) == ["where", "how many", "unanswerable"]
    assert by_type["unanswerable"].f1 == 1.0 and by_type["unanswerable"].recall_at_1 is None
    assert by_type["how many"].abstain_rate == 1.0


def test_sweep_recommends_the_best_f1(four: list[Observation]) -> None:
    thresholds = candidate_thresholds(four)
    assert thresholds[:4] == pytest.approx([0.0, 0.25, 0.4, 0.7])
    assert 0.9 < thresholds[4] < 0.9 + 1e-9 and len(thresholds) == 5
    f1s = [p.f1 for p in sweep(four)]
    assert f1s == [0.25, 0.5, 0.5, 0.75, 0.5]
    best = best_threshold(sweep(four))
    assert best.threshold == pytest.approx(0.7) and best.f1 == 0.75


def test_ties_go_to_the_lower_threshold() -> None:
    both_right = [
        _obs(_q("a", ("x",), "d", "what"), "x", 0.4),
        _obs(_q("b", ("y",), "d", "what"), "y", 0.8),
    ]
    assert best_threshold(sweep(both_right)).threshold == 0.0
    assert candidate_thresholds([]) == [0.0]


def test_the_fast_sweep_agrees_with_scoring_every_threshold() -> None:
    rng = random.Random(7)
    words = ["seven", "officers", "Panmunjom", "Hanoi", "the", "talks"]
    observations = []
    for i in range(60):
        answerable = rng.random() < 0.7
        refs = (rng.choice(words),) if answerable else ()
        text = None if rng.random() < 0.1 else " ".join(rng.sample(words, 2))
        value = round(rng.random(), 1) if text else None  # rounded: many tied scores
        question = _q(f"q{i}", refs, "d" if answerable else None, "what")
        observations.append(_obs(question, text, value))
    points = sweep(observations)
    assert len(points) == len(candidate_thresholds(observations))
    for point in points:
        slow = compute_metrics(observations, point.threshold)
        assert point.f1 == pytest.approx(slow.f1)
        assert point.em == pytest.approx(slow.em)
        assert point.abstain_rate == pytest.approx(slow.abstain_rate)
