"""The benchmark helpers compute what they claim (no timing assertions)."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.common import (
    bbc_files,
    bbc_questions,
    first_sentence,
    median_of_runs,
    summarize,
)
from benchmarks.latency import hit_rate, interleaved
from benchmarks.run import check_targets
from tests.conftest import needs_shared


def test_summarize_reports_milliseconds_and_orders_percentiles() -> None:
    stats = summarize([0.001] * 19 + [0.1])
    assert stats["p50_ms"] == pytest.approx(1.0)
    assert stats["p95_ms"] > stats["p50_ms"]
    assert stats["n"] == 20


def test_median_of_runs_ignores_one_noisy_run() -> None:
    runs = [summarize([0.002] * 5), summarize([0.003] * 5), summarize([1.0] * 5)]
    merged = median_of_runs(runs)
    assert merged["p50_ms"] == pytest.approx(3.0)
    assert merged["runs"] == 3 and merged["n"] == 15


def test_interleaved_runs_each_system_per_round_and_keeps_stages() -> None:
    calls: list[str] = []

    def system(name: str):  # noqa: ANN202
        def fn(question: str, timings: dict[str, float]) -> None:
            calls.append(name)
            timings["embed"] = 0.001

        return fn

    out = interleaved({"a": system("a"), "b": system("b")}, ["q1", "q2"], runs=2, warmup=0)
    assert calls == ["a", "a", "b", "b", "a", "a", "b", "b"]
    assert out["a"]["total"]["runs"] == 2
    assert out["b"]["stages"]["embed"]["p50_ms"] == pytest.approx(1.0)


def test_hit_rate_counts_gold_in_ranked_ids() -> None:
    assert hit_rate([["x", "y"], ["z"]], ["y", "y"]) == 0.5


def test_first_sentence_stops_at_the_first_full_stop_before_a_capital() -> None:
    text = "Profits rose 2.5% to $1.1bn. The firm said so.\n\nMore."
    assert first_sentence(text) == "Profits rose 2.5% to $1.1bn."


def test_check_targets_reports_met_missed_and_absent() -> None:
    results = {
        "latency": {"bbc": {"ours_search": {"total": {"p50_ms": 20.0}}}},
        "build": {"build_vs_raw": 0.95, "add_one_beyond_embedding_s": 0.5},
        "scale": {"million": {"recall@10": 0.97, "p50_ms": 16.0}},
    }
    verdicts = check_targets(results)
    assert verdicts["bbc search p50, warm (ms)"] == {
        "value": 20.0,
        "target": "<= 10.0",
        "met": False,
        "miss": 10.0,
    }
    assert verdicts["build / raw encode throughput"]["met"] is True
    assert verdicts["add a median article to BBC, beyond its embedding (s)"]["met"] is False
    assert verdicts["10^6 chunks: recall@10 of the product's index"]["met"] is True
    assert verdicts["10^6 chunks: p50 per query of the product's index (ms)"]["met"] is True
    assert verdicts["bbc ask p50, warm, reader included (ms)"]["met"] is None
    assert verdicts["add an article to 10^6 chunks, beyond its embedding (s)"]["met"] is None


@pytest.mark.shared
def test_bbc_questions_are_fixed_and_name_real_articles() -> None:
    needs_shared("data", "bbc-news")
    files = bbc_files()
    assert len(files) == 2225
    first, again = bbc_questions(files), bbc_questions(files)
    assert first == again and len(first) == 30
    names = {f"{p.parent.name}/{p.name}" for p in files}
    assert all(q["doc_id"] in names for q in first)
    assert first[0]["question"].startswith("What does the report say about")
    assert first[1]["question"].startswith("Is it true that")
    spread = bbc_files(10)
    assert len(spread) == 10 and len({p.parent.name for p in spread}) == 5
    assert np.all(np.diff([files.index(p) for p in spread]) > 0)


def test_padding_counts_each_batch_at_its_longest_text() -> None:
    from benchmarks.batching import padded

    lengths = np.array([5, 1, 4, 2])
    # Batches (5, 1) and (4, 2) are padded to 5 and 4; (5, 4) and (2, 1) to 5 and 2.
    assert padded(lengths, np.arange(4), 2) == 2 * 5 + 2 * 4
    assert padded(lengths, np.argsort(-lengths, kind="stable"), 2) == 2 * 5 + 2 * 2
    assert padded(lengths, np.arange(4), 3) == 3 * 5 + 2
