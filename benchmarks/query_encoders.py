"""The question encoders side by side in a warm BBC ``search``: which precision, how many threads.

Every ``search`` embeds the question (the largest stage) while BM25 runs beside it on a second
thread. This times the whole search, stage by stage, with each ONNX copy of the embedding model
(``fp32``, ``int8``, ``int8-blocks``) on one and on two onnxruntime threads, interleaved over
the same questions (``benchmarks.latency.interleaved``: the 30 BBC questions of
``benchmarks/run.py``, 5 runs, medians of each run's p50 / p95), so all see the same load. The
product's default on this CPU is named.

    .venv/bin/python -m benchmarks.query_encoders WORK [--runs 5] [--bbc-limit N]

``WORK`` keeps the BBC copy and its index between runs (built on the first, a few minutes).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from benchmarks import latency
from benchmarks.common import (
    BBC_DIR,
    bbc_files,
    bbc_questions,
    copy_corpus,
    load,
    machine,
    quiet_environment,
)


def bbc_qa(work: Path, limit: int | None) -> Any:
    """``QA`` over the BBC articles (copied into ``work``), its index built where missing."""
    from qa.pipeline import QA
    from qa.settings import Settings

    corpus = work / "bbc-corpus"
    if not corpus.exists():
        copy_corpus(bbc_files(limit), BBC_DIR, corpus)
    qa = QA(Settings.from_env(corpus_dir=corpus, index_dir=work / "bbc-index"))
    if not (work / "bbc-index" / "current").exists():
        qa.build(show_progress=False)
    return qa


def encoder_system(qa: Any, encoder: Any) -> latency.Timed:
    """``qa.search`` with ``encoder`` embedding its questions (each question embedded anew)."""
    embedder = qa.embedder
    search = latency.search_fn(qa)

    def timed(question: str, timings: dict[str, float]) -> Any:
        if embedder.__dict__.get("onnx_query_encoder") is not encoder:
            # The memo of question vectors closes over the encoder: make it anew with this one.
            embedder.__dict__["onnx_query_encoder"] = encoder
            embedder.__dict__.pop("_query_vector", None)
        return search(question, timings)

    return timed


def bbc_setup(argv: list[str] | None, description: str) -> tuple[argparse.Namespace, Any, list]:
    """The command line of a BBC ``search`` comparison (``WORK``, ``--runs``, ``--bbc-limit``):
    its arguments, ``QA`` over BBC (``bbc_qa``) and the 30 BBC questions (``bbc_questions``)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("work", type=Path, help="folder for the BBC copy and its index")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--bbc-limit", type=int, help="BBC articles (default: all)")
    args = parser.parse_args(argv)
    quiet_environment()
    args.work.mkdir(parents=True, exist_ok=True)
    qa = bbc_qa(args.work, args.bbc_limit)
    return args, qa, bbc_questions(sorted(qa.settings.corpus_dir.rglob("*.txt")))


def timed_runs(
    systems: dict[str, latency.Timed], questions: list[str], runs: int, chunks: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``latency.interleaved`` over ``systems``, and the record of the run (machine, load
    before and after, sizes) to save beside its figures."""
    before = load()
    figures = latency.interleaved(systems, questions, runs)
    out = {
        "machine": machine(),
        "load_before": before,
        "load_after": load(),
        "chunks": chunks,
        "questions": len(questions),
        "runs": runs,
    }
    return figures, out


def main(argv: list[str] | None = None) -> None:
    args, qa, asked = bbc_setup(argv, __doc__.split("\n\n")[0])
    from qa.embedding import QUERY_THREADS, OnnxQueryEncoder
    from qa.models.export_query_encoder import PRECISIONS, auto_precision
    from qa.models.query_encoder import query_encoder_file

    questions = [q["question"] for q in asked]
    qa.search(questions[0])  # loads the index and the default encoder
    tokenizer = qa.embedder.text_tokenizer
    systems = {}
    for precision in PRECISIONS:
        for threads in (1, 2):
            encoder = OnnxQueryEncoder(query_encoder_file(precision), tokenizer, threads=threads)
            chosen = (precision, threads) == (auto_precision(), QUERY_THREADS)
            default = " (default)" if chosen else ""
            systems[f"{precision}, {threads} thread(s){default}"] = encoder_system(qa, encoder)
    figures, out = timed_runs(systems, questions, args.runs, len(qa.index.chunks))
    out["search"] = figures
    for name, figure in figures.items():
        stages = {stage: f["p50_ms"] for stage, f in figure["stages"].items()}
        total = figure["total"]
        p50, p95 = total["p50_ms"], total["p95_ms"]
        print(f"{name}: search p50 {p50:.2f} ms, p95 {p95:.2f} ms; stage p50s {stages}")
    (args.work / "query_encoders.json").write_text(json.dumps(out, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
