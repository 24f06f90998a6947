"""Two precision choices of a warm BBC ``search`` side by side: question encoder, exact index.

``search`` spends its time embedding the question and scanning the chunk vectors. Each has a
float32 form and a cheaper one: the question encoder ``onnx-fp32`` against ``onnx-int8-blocks``
(int8 weights and activations in blocks of 128, what ``query_encoder=auto`` takes where the CPU
has AVX512-VNNI), and the exact index holding the vectors in float32 against float16
(``flat_precision``). This times the four combinations over one BBC index and one process,
interleaved over the same questions (``benchmarks.latency.interleaved``: the 30 BBC questions of
``benchmarks/run.py``, 5 runs, medians of each run's p50 / p95), so all see the same load, and
compares what they retrieve: the share of the 30 questions whose article is in the top 5, and
how often each combination's top 5 chunks are those of float32 with float32 (the model's own
ranking), over the same 30 and over 440 qa-val questions asked of BBC (off-topic questions,
whose rankings are the least stable).

    .venv/bin/python -m benchmarks.search_precision WORK [--runs 5] [--bbc-limit N]

``WORK`` keeps the BBC copy and its index between runs (built on the first, a few minutes; the
index is built with the settings' ``flat_precision`` from the BBC texts' float32 vectors, and
the other precision is made from those vectors, so both hold the same rows).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np

from benchmarks import latency
from benchmarks.common import SHARED
from benchmarks.query_encoders import bbc_setup, timed_runs

ENCODERS = ("onnx-fp32", "onnx-int8-blocks")
PRECISIONS = ("fp32", "fp16")


def variants(qa: Any) -> dict[str, Any]:
    """``QA`` objects over ``qa``'s index for every encoder and exact-index precision."""
    from qa.embedding import Embedder
    from qa.indexing.dense import flat_precision_of, make_dense_index
    from qa.pipeline import QA

    index = qa.index
    held = flat_precision_of(index.dense)
    if held is None:
        raise SystemExit(f"the index at {qa.settings.index_dir} is not exact: rebuild it flat")
    vectors = index.vectors()
    dense = {
        p: index.dense if p == held else make_dense_index(vectors, "flat", flat=p)
        for p in PRECISIONS
    }
    out = {}
    for encoder in ENCODERS:
        embedder = Embedder(query_encoder=encoder)  # type: ignore[arg-type]
        for precision in PRECISIONS:
            settings = qa.settings.replace(query_encoder=encoder, flat_precision=precision)
            copy = dataclasses.replace(index, dense=dense[precision])
            out[f"{encoder}, {precision} index"] = QA(settings, embedder=embedder, index=copy)
    return out


def qa_val_questions() -> list[str]:
    """The qa-val questions (off-topic for BBC), or none where the shared data is missing."""
    folder = SHARED / "data" / "qa-val"
    questions = []
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        for article in data["data"]:
            for paragraph in article["paragraphs"]:
                questions += [q["question"] for q in paragraph["qas"]]
    return questions


def main(argv: list[str] | None = None) -> None:
    args, qa, asked = bbc_setup(argv, __doc__.split("\n\n")[0])
    questions = [q["question"] for q in asked]
    systems = variants(qa)
    baseline = f"{ENCODERS[0]}, {PRECISIONS[0]} index"
    others = qa_val_questions()
    ranked: dict[str, dict[str, list[list[tuple[str, int]]]]] = {}
    for name, system in systems.items():
        ranked[name] = {
            s: [[(p.chunk.doc_id, p.chunk.start) for p in system.search(q)] for q in qs]
            for s, qs in (("bbc", questions), ("qa-val", others))
        }
    timed = {name: latency.search_fn(system) for name, system in systems.items()}
    figures, out = timed_runs(timed, questions, args.runs, len(qa.index.chunks))
    out["systems"] = {}
    gold = [q["doc_id"] for q in asked]
    for name, figure in figures.items():
        same = {
            s: float(np.mean([a == b for a, b in zip(r, ranked[baseline][s], strict=True)]))
            if r
            else None
            for s, r in ranked[name].items()
        }
        hits = latency.hit_rate([[d for d, _ in r] for r in ranked[name]["bbc"]], gold)
        out["systems"][name] = {
            "search": figure,
            "hit@5": hits,
            "same_top5_as_fp32": same,
        }
        stages = {stage: f["p50_ms"] for stage, f in figure["stages"].items()}
        total = figure["total"]
        print(
            f"{name}: search p50 {total['p50_ms']:.2f} ms, p95 {total['p95_ms']:.2f} ms; "
            f"hit@5 {hits}; top 5 as fp32/fp32: BBC {same['bbc']}, qa-val {same['qa-val']}; "
            f"stage p50s {stages}"
        )
    (args.work / "search_precision.json").write_text(json.dumps(out, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
