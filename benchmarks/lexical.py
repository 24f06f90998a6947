"""BM25 at question time over BBC, side by side: every term's postings scored in one numpy
pass (``LexicalIndex.search``, the product's) against the same formulas applied term after term.

A hybrid ``search`` runs BM25 on a second thread, so on a two-core machine its cost can show
twice: as its own time, and as the time it takes from the threads it runs beside. This times
BM25 alone, one thread, over the 30 BBC questions of ``benchmarks/run.py``: the product's
search, and the term-by-term loop it replaced
(``term_by_term``: the postings of one term, its idf and term frequencies, added into the scores,
then the next term), interleaved question by question, ``--runs`` times; and checks that both give
the same scores to the bit. Then the warm hybrid ``search`` three ways, interleaved over the
same questions (``benchmarks.latency.interleaved``): BM25 on a second thread beside the dense
search (the product's order, ``qa.retrieval.LEXICAL_BESIDE``), on a second thread beside the
question's embedding (the order before), and on the asking thread after the dense search (a
deferred task in place of the thread pool ``qa.retrieval`` hands it to), for their stage
figures.

    .venv/bin/python -m benchmarks.lexical WORK [--runs 5] [--bbc-limit N]

``WORK`` keeps the BBC copy and its index between runs (built on the first, a few minutes).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from benchmarks import latency
from benchmarks.query_encoders import bbc_setup, timed_runs


def term_by_term(index: Any, query: str, k: int) -> list[tuple[int, float]]:
    """``index.search(query, k)`` computed one term at a time, as ``qa.lexical`` did until the
    one-pass scoring: the same formulas, statistics and rounding."""
    from qa.lexical import K1, SCORE_DTYPE, B, _best, lucene_idf, lucene_tf, tokenize

    chunks, tokens = index._corpus
    scores = np.zeros(index.size, dtype=np.float32)
    for term in tokenize([query])[0]:
        rows, counts = index._postings(term)
        if not len(rows):
            continue
        idf = lucene_idf(np.array([len(rows)]), chunks, SCORE_DTYPE)[0]
        tf = lucene_tf(counts.astype(SCORE_DTYPE), index._lengths[rows], tokens / chunks, K1, B)
        scores[rows] += (idf * tf).astype(np.float32)
    return _best(scores, k, None)


_THREADS = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bench-lexical")


class _Deferred:
    """A task run when its result is asked for, on the asking thread."""

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self._fn, self._args = fn, args

    def result(self) -> Any:
        return self._fn(*self._args)


class _Later:
    """In place of ``qa.retrieval``'s thread pool: BM25 waits for ``search`` to ask for it,
    after the dense search."""

    def submit(self, fn: Callable[..., Any], *args: Any) -> _Deferred:
        return _Deferred(fn, args)


def _scheduled(search: latency.Timed, pool: Any, beside: str) -> latency.Timed:
    """``search`` with BM25 handed to ``pool``, started where ``beside`` says."""
    import qa.retrieval

    def timed(question: str, timings: dict[str, float]) -> Any:
        kept = qa.retrieval._POOL, qa.retrieval.LEXICAL_BESIDE
        qa.retrieval._POOL, qa.retrieval.LEXICAL_BESIDE = pool, beside  # type: ignore[assignment]
        try:
            return search(question, timings)
        finally:
            qa.retrieval._POOL, qa.retrieval.LEXICAL_BESIDE = kept

    return timed


def main(argv: list[str] | None = None) -> None:
    args, qa, asked = bbc_setup(argv, __doc__.split("\n\n")[0])
    questions = [q["question"] for q in asked]
    qa.search(questions[0])  # loads the index
    index = qa.index.lexical
    depth = qa.settings.candidates
    ways = {
        "one pass (product)": lambda q: index.search(q, depth),
        "term by term": lambda q: term_by_term(index, q, depth),
    }
    for q in questions:
        if ways["one pass (product)"](q) != ways["term by term"](q):
            raise SystemExit(f"the two ways score {q!r} differently")
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(args.runs):
        for q in questions:
            for name, way in ways.items():
                started = time.perf_counter()
                way(q)
                seconds[name].append(time.perf_counter() - started)
    alone = {name: statistics.median(s) * 1000 for name, s in seconds.items()}
    ratio = statistics.median(
        a / b for a, b in zip(seconds["one pass (product)"], seconds["term by term"], strict=True)
    )
    for name, ms in alone.items():
        print(f"BM25 alone, {name}: p50 {ms:.3f} ms")
    print(f"one pass / term by term, median of paired ratios: {ratio:.3f}")
    search = latency.search_fn(qa, "hybrid")
    orders = (
        ("beside the dense search (product)", _THREADS, "dense"),
        ("beside the embedding", _THREADS, "embedding"),
        ("after the dense search", _Later(), "dense"),
    )
    systems = {
        f"hybrid search, BM25 {where}": _scheduled(search, pool, beside)
        for where, pool, beside in orders
    }
    figures, out = timed_runs(systems, questions, args.runs, len(qa.index.chunks))
    for name, figure in figures.items():
        stages = {s: f["p50_ms"] for s, f in figure["stages"].items()}
        print(f"{name}: p50 {figure['total']['p50_ms']:.2f} ms; stage p50s {stages}")
    out |= {"bm25_alone_p50_ms": alone, "paired_ratio": ratio, "search": figures}
    (args.work / "lexical.json").write_text(json.dumps(out, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
