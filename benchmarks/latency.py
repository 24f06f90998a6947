"""Warm latency of ``search`` and ``ask``, end to end and by stage.

Every system under test is a function ``(question, timings) -> passages``; runs interleave
the systems (run 1 of each, then run 2 of each...), so a burst of load from another process
hurts them alike, and each figure is the median over runs of that run's p50 and p95.
"""

from __future__ import annotations

import inspect
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from benchmarks.common import median_of_runs, summarize

#: ``fn(question, timings)``: answers one question, adding seconds per stage to ``timings``.
Timed = Callable[[str, dict[str, float]], Any]


def interleaved(
    systems: dict[str, Timed], questions: Sequence[str], runs: int, warmup: int = 3
) -> dict[str, dict[str, Any]]:
    """Time each system on every question, ``runs`` times, after ``warmup`` untimed calls.

    Returns:
        Per system: ``total`` (end to end) and ``stages`` (each stage the system reports),
        each the median over runs of ``summarize``.
    """
    for fn in systems.values():
        for q in questions[:warmup]:
            fn(q, {})
    totals: dict[str, list[dict[str, float]]] = defaultdict(list)
    stages: dict[str, dict[str, list[dict[str, float]]]] = defaultdict(lambda: defaultdict(list))
    for _ in range(runs):
        for name, fn in systems.items():
            run_totals: list[float] = []
            run_stages: dict[str, list[float]] = defaultdict(list)
            for q in questions:
                timings: dict[str, float] = {}
                started = time.perf_counter()
                fn(q, timings)
                run_totals.append(time.perf_counter() - started)
                for stage, seconds in timings.items():
                    run_stages[stage].append(seconds)
            totals[name].append(summarize(run_totals))
            for stage, values in run_stages.items():
                stages[name][stage].append(summarize(values))
    return {
        name: {
            "total": median_of_runs(totals[name]),
            "stages": {s: median_of_runs(v) for s, v in stages[name].items()},
        }
        for name in systems
    }


def _forget_queries(qa: Any) -> None:
    # The embedder memoises recent query vectors; every timed question must pay for its
    # embedding, as a new user question does, or runs after the first time nothing.
    cache = getattr(qa.embedder, "_query_vector", None)
    if cache is not None and hasattr(cache, "cache_clear"):
        cache.cache_clear()


def search_fn(qa: Any, mode: str | None = None) -> Timed:
    """``QA.search`` as a timed system (stages: embed, dense, lexical, fusion), in ``mode``
    (default: the settings' retrieval mode)."""

    def timed(question: str, timings: dict[str, float]) -> Any:
        _forget_queries(qa)
        return qa.search(question, mode=mode, timings=timings)

    return timed


def ask_fn(qa: Any) -> Timed | None:
    """``QA.ask`` as a timed system, or None while the pipeline has no ``ask``.

    When ``ask`` takes no ``timings``, only its end-to-end time is reported.
    """
    ask = getattr(qa, "ask", None)
    if ask is None:
        return None
    staged = "timings" in inspect.signature(ask).parameters

    def timed(question: str, timings: dict[str, float]) -> Any:
        _forget_queries(qa)
        return ask(question, timings=timings) if staged else ask(question)

    return timed


def torch_query_qa(qa: Any) -> Any:
    """``qa`` over the same index, loaded model and reader, with questions embedded by the torch
    model instead of the product's question encoder (an ONNX copy by default)."""
    from qa.embedding import Embedder
    from qa.pipeline import QA
    from qa.reading.answers import AnswerFinder

    settings = qa.settings.replace(query_encoder="torch")
    embedder = Embedder(
        settings.embedding_model,
        batch_size=settings.batch_size,
        query_encoder="torch",
        loaded=qa.embedder.model,  # one loaded model
    )
    reading = AnswerFinder(embedder, settings, reader=qa.reading.reader)
    return QA(settings, embedder=embedder, reading=reading, index=qa.index)


def hit_rate(ranked_doc_ids: Sequence[Sequence[str]], gold: Sequence[str]) -> float:
    """Share of questions whose gold document is among their ranked documents."""
    if not gold:
        return 0.0
    hits = sum(g in set(ids) for ids, g in zip(ranked_doc_ids, gold, strict=True))
    return round(hits / len(gold), 4)
