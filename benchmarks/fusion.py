"""Choosing hybrid fusion: reciprocal rank against convex score fusion, on the tuning sets only.

Each set's paragraphs are indexed with the product's default settings, and each answerable
question searched in hybrid mode under every rule; the figure is the share of questions whose
own paragraph is first (recall@1) or in the top 5 (recall@5), with dense and BM25 alone beside.
The sets are the ones choices may be made on: qa-val (all of it) and a sample of qa-train's
SQuAD 1.1 training file (``--paragraphs`` paragraphs drawn with ``--seed``, ``--questions`` of
their questions). xquad-dev is for measuring only, never here.

    .venv/bin/python -m benchmarks.fusion WORK [--weights 0.3 0.5 0.7] [--paragraphs 2000]
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import Any

from benchmarks import quality
from benchmarks.common import SHARED, load, machine, quiet_environment

QA_VAL = SHARED / "data" / "qa-val" / "tydiqa-en-dev.json"
SQUAD_TRAIN = SHARED / "data" / "qa-train" / "squad-train-v1.1.json"


def sample_set(path: Path, paragraphs: int | None, questions: int | None, seed: int) -> Any:
    """The answerable questions and paragraph documents of a SQuAD file, sampled."""
    from qa.evaluation.datasets import load_squad

    asked, documents = load_squad(path)
    asked = [q for q in asked if q.answerable]
    if paragraphs and len(documents) > paragraphs:
        documents = random.Random(seed).sample(documents, paragraphs)
        kept = {d.doc_id for d in documents}
        asked = [q for q in asked if q.doc_id in kept]
    if questions and len(asked) > questions:
        asked = random.Random(seed).sample(asked, questions)
    return asked, documents


def compare(
    name: str, asked: Any, documents: Any, embedder: Any, work: Path, weights: list[float]
) -> dict[str, Any]:
    """Recall@1 and @5 of every rule on one set."""
    from qa.retrieval import Retriever

    settings, index = quality.build_our_index(documents, embedder, work / f"{name}-index")
    rules: dict[str, tuple[Any, str]] = {"rrf": (settings.replace(fusion="rrf"), "hybrid")}
    for weight in weights:
        rules[f"convex {weight}"] = (
            settings.replace(fusion="convex", dense_weight=weight),
            "hybrid",
        )
    rules["dense alone"] = (settings, "dense")
    rules["BM25 alone"] = (settings, "lexical")
    out: dict[str, Any] = {"paragraphs": len(documents), "questions": len(asked)}
    for rule, (rule_settings, mode) in rules.items():
        ranker = quality.our_ranker(Retriever(index, embedder, rule_settings), mode)
        out[rule] = {
            "recall@1": quality.recall(ranker, asked, k=1),
            "recall@5": quality.recall(ranker, asked, k=5),
        }
        print(
            f"{name}: {rule}: recall@1 {out[rule]['recall@1']}, recall@5 {out[rule]['recall@5']}",
            flush=True,
        )
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("work", type=Path, help="folder for the indexes and fusion.json")
    parser.add_argument("--weights", type=float, nargs="+", default=[0.3, 0.5, 0.7])
    parser.add_argument("--paragraphs", type=int, default=2000, help="qa-train paragraphs")
    parser.add_argument("--questions", type=int, default=3000, help="qa-train questions")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    quiet_environment()
    from qa.embedding import Embedder

    args.work.mkdir(parents=True, exist_ok=True)
    embedder = Embedder()
    results: dict[str, Any] = {"machine": machine(), "load_before": load()}
    results["qa-val"] = compare(
        "qa-val", *sample_set(QA_VAL, None, None, args.seed), embedder, args.work, args.weights
    )
    train = sample_set(SQUAD_TRAIN, args.paragraphs, args.questions, args.seed)
    results["qa-train squad"] = compare("qa-train squad", *train, embedder, args.work, args.weights)
    results["load_after"] = load()
    (args.work / "fusion.json").write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
