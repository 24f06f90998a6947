"""Choosing ``stop_reading_at`` and the reader's window: answer quality and reading time when
the reader stops after the text holding the best passage, and when it reads longer windows, on
the tuning set only.

One temporary open-corpus index of a SQuAD file's paragraphs (a share of the questions asked
without their own paragraph, as ``qa eval --without-gold`` does); each question is then asked
once per value and window length, in turn, so load hits them alike. Per pair: F1, EM and
abstention at the product's threshold, the texts read per question (passages of one article
that touch are one text), the windows read per question, and the p50 / p95 milliseconds of
reading (the reader and the answer model)::

    python -m benchmarks.early_stop ../shared/data/qa-val/tydiqa-en-dev.json \\
        --without-gold 0.5 --values 1,0.9,0.8,0.7,0.6,0.5 --windows 192,256

Never run it on xquad-dev or the seed set: those measure, they choose nothing.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
from pathlib import Path
from typing import Any

from qa.evaluation.datasets import load_squad
from qa.evaluation.metrics import RETRIEVAL_DEPTH, Observation, compute_metrics, percentile
from qa.evaluation.runner import (
    _warm_up,
    as_unanswerable,
    temporary_index,
    without_gold,
)
from qa.pipeline import QA
from qa.reading.answers import AnswerFinder, threshold_in_use
from qa.settings import Settings


class _Counting:
    """``reader`` cutting windows of ``max_length`` tokens (a copy sharing its loaded model),
    counting the texts it is given to read and the windows its model runs on."""

    def __init__(self, reader: Any, max_length: int) -> None:
        self.reader = copy.copy(reader)
        self.reader.max_length = max_length
        self.texts = 0
        self.windows = 0
        logits = self.reader._logits

        def counted(batch: Any, width: int) -> Any:
            self.windows += len(batch.input_ids)
            return logits(batch, width)

        self.reader._logits = counted

    def __getattr__(self, name: str) -> Any:
        return getattr(self.reader, name)

    def read(self, question: str, contexts: Any, top_n: int = 5) -> Any:
        self.texts += len(contexts)
        return self.reader.read(question, contexts, top_n=top_n)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


Variant = tuple[float, int]  # (stop_reading_at, window length in tokens)


def measure(
    path: Path,
    values: list[float],
    *,
    windows: list[int] | None = None,
    without: float = 0.5,
    limit: int | None = None,
) -> dict[Variant, dict[str, Any]]:
    """The figures of each ``stop_reading_at`` value with each window length (default: the
    reader's own) on the SQuAD file ``path`` (see above)."""
    questions, documents = load_squad(path)
    questions = questions[:limit] if limit else questions
    hidden = without_gold(questions, without)
    with temporary_index(Settings.from_env(), documents, progress=False) as (first, _):
        mode = _warm_up(first, questions)
        if first.reading.reader is None:
            raise SystemExit("stop_reading_at applies to the reader, and none could be loaded")
        loaded = first.reading.reader
        variants = [(v, w) for w in windows or [loaded.max_length] for v in values]
        readers = {w: _Counting(loaded, w) for _, w in variants}
        systems = {}
        for v, w in variants:
            settings = first.settings.replace(stop_reading_at=v)
            finder = AnswerFinder(first.embedder, settings, reader=readers[w])
            systems[(v, w)] = QA(
                settings, embedder=first.embedder, reading=finder, index=first.index
            )
        observed: dict[Variant, list[Any]] = {k: [] for k in variants}
        reader_ms: dict[Variant, list[float]] = {k: [] for k in variants}
        texts: dict[Variant, int] = dict.fromkeys(variants, 0)
        cut: dict[Variant, int] = dict.fromkeys(variants, 0)
        for n, q in enumerate(questions, 1):
            exclude: frozenset[str] = frozenset()
            if q.id in hidden and q.doc_id is not None:
                exclude, q = frozenset({q.doc_id}), as_unanswerable(q)
            for v, qa in systems.items():
                reader = readers[v[1]]
                reader.texts = reader.windows = 0
                timings: dict[str, float] = {}
                result = qa.ask(q.question, threshold=0.0, exclude=exclude, timings=timings)
                texts[v] += reader.texts
                cut[v] += reader.windows
                reader_ms[v].append(timings.get("reader", 0.0) * 1000)
                best = result.answers[0] if result.answers else None
                observed[v].append(
                    Observation(
                        question=q,
                        text=best.text if best else None,
                        score=best.score if best else None,
                        context=best.context if best else None,
                        doc_id=best.doc_id if best else None,
                        ranked_doc_ids=tuple(
                            p.chunk.doc_id for p in result.passages[:RETRIEVAL_DEPTH]
                        ),
                        latency_ms=reader_ms[v][-1],
                    )
                )
            if n % 50 == 0:
                print(f"{n} of {len(questions)} questions", flush=True)
        threshold, _ = threshold_in_use(first.settings, mode)
    rows = {}
    for v in variants:
        m = compute_metrics(observed[v], threshold)
        rows[v] = {
            "questions": len(questions),
            "without_their_paragraph": len(hidden),
            "threshold": threshold,
            "f1": m.f1,
            "exact_match": m.em,
            "f1_never_abstaining": m.f1_open_best,
            "abstain_precision": m.abstain_precision,
            "abstained_unanswerable": m.abstain_recall,
            "texts_read": texts[v] / len(questions),
            "windows_read": cut[v] / len(questions),
            "reader_ms_p50": statistics.median(reader_ms[v]),
            "reader_ms_p95": percentile(reader_ms[v], 95),
        }
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path, help="a SQuAD-format tuning file (qa-val)")
    parser.add_argument("--without-gold", type=float, default=0.5)
    parser.add_argument("--values", default="1,0.9,0.8,0.7,0.6,0.5")
    parser.add_argument(
        "--windows", default=None, help="reader window lengths in tokens (default: its own)"
    )
    parser.add_argument("--limit", type=int, default=None, help="first N questions only")
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON")
    args = parser.parse_args()
    values = [float(v) for v in args.values.split(",")]
    windows = [int(w) for w in args.windows.split(",")] if args.windows else None
    rows = measure(args.file, values, windows=windows, without=args.without_gold, limit=args.limit)
    some = next(iter(rows.values()))
    print(
        f"{args.file.name}: {some['questions']} questions, "
        f"{some['without_their_paragraph']} without their paragraph"
    )
    print(
        "| stop_reading_at | window | F1 | EM | F1 never abstaining | abstention P / R "
        "| texts / windows read per question | reader p50 / p95 ms |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for (v, w), r in rows.items():
        print(
            f"| {v:g} | {w} | {r['f1']:.4f} | {r['exact_match']:.4f} "
            f"| {r['f1_never_abstaining']:.4f} "
            f"| {_num(r['abstain_precision'])} / {_num(r['abstained_unanswerable'])} "
            f"| {r['texts_read']:.2f} / {r['windows_read']:.2f} "
            f"| {r['reader_ms_p50']:.1f} / {r['reader_ms_p95']:.1f} |"
        )
    if args.out:
        args.out.write_text(
            json.dumps({f"{v:g}@{w}": r for (v, w), r in rows.items()}, indent=2), encoding="utf-8"
        )


if __name__ == "__main__":
    main()
