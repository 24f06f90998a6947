"""The same job done with txtai (``txtai.Embeddings``), for side-by-side figures.

txtai gets exactly our chunk texts, so both systems index and rank the same units: each chunk
is indexed as ``(chunk_id, text)`` with content storage on (txtai's SQLite document store, as
a txtai application that shows its hits keeps it), dense vectors from the same packaged
all-MiniLM-L6-v2 folder through sentence-transformers (txtai L2-normalises them; inner product
is cosine, as ours) in a Faiss index, and:

- **hybrid on** (``hybrid=True``): txtai's own keyword index beside the dense one, which its
  defaults make BM25 (k1 1.2, b 0.75) over its own tokenizer, with scores normalised and fused
  with the cosines by a convex combination (weights 0.5 / 0.5) over ``10 * limit`` candidates
  of each (50 for the top 5: our ``candidates``);
- **hybrid off**: the dense index alone, against our ``dense`` mode.

Faiss is left to txtai's own choice (``IDMap,Flat`` up to 5,000 vectors; above that an IVF
index, approximate, probing ``cells / 16`` lists), which is what a txtai user gets; the kind
built is recorded with the figures. Questions are embedded by the torch model (txtai's only
way with this folder); ours by the product's default question encoder, and again by torch.

Run alone (without the rest of ``run.py``):

    python benchmarks/txtai_side.py [--bbc-limit 500] [--xquad-limit N] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# Run as a script from anywhere: the repository root makes ``benchmarks`` importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import dir_parts, dir_size  # noqa: E402
from qa.types import Chunk  # noqa: E402

#: Side by side: our retrieval mode against txtai with hybrid on or off.
MODES: dict[str, bool] = {"hybrid": True, "dense": False}


class TxtaiIndex:
    """A txtai ``Embeddings`` index over given chunks, hybrid or dense only.

    Args:
        model_dir: The sentence-transformers model folder (the packaged default).
        hybrid: txtai's BM25 index beside the dense one, scores fused (txtai's defaults).
        batch_size: Embedding batch size for indexing.
        top_k: Hits each search returns.
    """

    def __init__(self, model_dir: str, hybrid: bool, batch_size: int = 32, top_k: int = 5) -> None:
        from txtai import Embeddings

        self.hybrid = hybrid
        self.top_k = top_k
        self.embeddings = Embeddings(
            path=str(model_dir),
            method="sentence-transformers",
            content=True,
            hybrid=hybrid,
            backend="faiss",
            encodebatch=batch_size,
        )
        self._doc_of: dict[str, str] = {}

    def warm_up(self) -> None:
        """One embedding, so that indexing and query times start warm, as ours do (txtai loads
        the model when ``Embeddings`` is built)."""
        self.embeddings.transform("warm up")

    def index(self, chunks: Sequence[Chunk]) -> dict[str, float]:
        """Embed and index ``chunks`` (the model already loaded); seconds taken."""
        self._doc_of = {c.chunk_id: c.doc_id for c in chunks}
        started = time.perf_counter()
        self.embeddings.index((c.chunk_id, c.text) for c in chunks)
        return {"total_s": time.perf_counter() - started}

    def save(self, path: Path) -> dict[str, Any]:
        """Write the index to ``path``: seconds, bytes on disk (in all and by part), Faiss kind."""
        started = time.perf_counter()
        self.embeddings.save(str(path))
        seconds = time.perf_counter() - started
        return {
            "save_s": seconds,
            "bytes": dir_size(path),
            "parts_bytes": dir_parts(path),
            "faiss": self.faiss_kind(),
        }

    def faiss_kind(self) -> str:
        """The Faiss index txtai chose (its factory string)."""
        ann = self.embeddings.ann
        if ann is None:
            return "none"
        return str(ann.config.get("build", {}).get("settings", {}).get("components", "?"))

    def search(self, query: str) -> list[str]:
        """The source document ids of txtai's top hits for ``query``, best first."""
        hits = self.embeddings.search(query, self.top_k)
        return [self._doc_of[h["id"]] for h in hits]


def build_pair(
    model_dir: str, chunks: Sequence[Chunk], batch_size: int, top_k: int, work: Path | None
) -> tuple[dict[str, TxtaiIndex], dict[str, dict[str, Any]]]:
    """A txtai index per mode over ``chunks``, built one after the other; their build figures.

    With ``work``, each index is also saved under it for its size on disk.
    """
    indexes: dict[str, TxtaiIndex] = {}
    figures: dict[str, dict[str, Any]] = {}
    for mode, hybrid in MODES.items():
        started = time.perf_counter()
        tx = TxtaiIndex(model_dir, hybrid, batch_size, top_k)
        tx.warm_up()
        fig: dict[str, Any] = {"model_load_s": round(time.perf_counter() - started, 3)}
        fig["index_s"] = round(tx.index(chunks)["total_s"], 3)
        if work is not None:
            saved = tx.save(work / f"txtai-{mode}")
            fig.update(save_s=round(saved["save_s"], 3), bytes=saved["bytes"])
            fig.update(parts_bytes=saved["parts_bytes"])
            fig["build_s"] = round(fig["index_s"] + fig["save_s"], 3)
        fig["faiss"] = tx.faiss_kind()
        indexes[mode], figures[mode] = tx, fig
    return indexes, figures


def ratios(results: dict[str, Any]) -> dict[str, Any]:
    """Ours over txtai per mode, from a run's ``latency.bbc``, ``xquad`` and ``txtai`` figures.

    Latency ratios compare our ``search`` (the product's question encoder; also with the torch
    one, which txtai uses) with txtai's in the same mode; recall differences are ours - txtai's.
    """
    bbc = results["latency"]["bbc"]
    tx = results["txtai"]
    out: dict[str, Any] = {}
    for mode in MODES:
        ours = bbc[_our_system(mode)]["total"]
        theirs = bbc[f"txtai_{mode}"]["total"]
        torch = bbc[_our_system(mode, torch_query=True)]["total"]
        out[mode] = {
            "search_p50_ratio": round(ours["p50_ms"] / theirs["p50_ms"], 4),
            "search_p95_ratio": round(ours["p95_ms"] / theirs["p95_ms"], 4),
            "search_p50_ratio_torch_query": round(torch["p50_ms"] / theirs["p50_ms"], 4),
            "xquad_recall_diff": round(
                results["xquad"][f"ours_{mode}_recall@5"]
                - results["xquad"][f"txtai_{mode}_recall@5"],
                4,
            ),
        }
        build = tx["bbc_build"][mode]
        if "build_s" in build:
            out[mode]["build_ratio"] = round(tx["ours_bbc_build_s"] / build["build_s"], 4)
            out[mode]["size_ratio"] = round(tx["ours_bbc_index_bytes"] / build["bytes"], 4)
    return out


def _our_system(mode: str, torch_query: bool = False) -> str:
    name = "ours_search" if mode == "hybrid" else f"ours_search_{mode}"
    return f"{name}_torch_query" if torch_query else name


def our_systems(qa: Any, torch_qa: Any) -> dict[str, Any]:
    """Our ``search`` per mode as timed systems, with the default and the torch question encoder
    (named as ``ratios`` reads them; hybrid is the product's default mode)."""
    from benchmarks.latency import search_fn

    return {
        _our_system(mode, torch_query): search_fn(q, mode=mode)
        for mode in MODES
        for torch_query, q in ((False, qa), (True, torch_qa))
    }


def txtai_systems(indexes: dict[str, TxtaiIndex]) -> dict[str, Any]:
    """txtai's search per mode as timed systems."""
    return {f"txtai_{mode}": _timed(tx) for mode, tx in indexes.items()}


def _timed(tx: TxtaiIndex) -> Any:
    return lambda q, _timings: tx.search(q)


def main() -> None:
    parser = argparse.ArgumentParser(description="Our retrieval side by side with txtai's.")
    parser.add_argument("--bbc-limit", type=int, default=500, help="BBC articles (default 500)")
    parser.add_argument("--xquad-limit", type=int, help="xquad questions (default: all)")
    parser.add_argument("--runs", type=int, default=5, help="interleaved latency rounds")
    parser.add_argument("--out", type=Path, help="JSON file (default benchmarks/out/txtai.json)")
    args = parser.parse_args()

    from benchmarks.common import REPO, load, machine, print_figure, quiet_environment

    quiet_environment()
    out = args.out or REPO / "benchmarks" / "out" / "txtai.json"
    work = Path(tempfile.mkdtemp(prefix="qa-bench-txtai-"))
    results: dict[str, Any] = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": "txtai",
        "machine": machine(),
        "argv": sys.argv[1:],
    }
    print_figure("machine", "machine", results["machine"])
    try:
        run(args.bbc_limit, args.xquad_limit, args.runs, work, results)
    finally:
        from benchmarks.run import check_targets

        results["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
        results["load_at_end"] = load()
        results["targets"] = {k: v for k, v in check_targets(results).items() if "txtai" in k}
        for name, verdict in results["targets"].items():
            print_figure("targets", name, verdict)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
        print(f"wrote {out}")
        shutil.rmtree(work, ignore_errors=True)


def run(
    bbc_limit: int | None, xquad_limit: int | None, runs: int, work: Path, results: dict[str, Any]
) -> None:
    """Build both on BBC, time both on the BBC questions, recall@5 of both on xquad-dev."""
    from benchmarks import latency, quality
    from benchmarks.common import (
        BBC_DIR,
        XQUAD_FILE,
        bbc_files,
        bbc_questions,
        copy_corpus,
        load,
        print_figure,
    )
    from qa.pipeline import QA
    from qa.retrieval import Retriever
    from qa.settings import Settings

    files = bbc_files(bbc_limit)
    corpus = copy_corpus(files, BBC_DIR, work / "bbc-corpus")
    qa = QA(Settings.from_env(corpus_dir=corpus, index_dir=work / "bbc-index"))
    qa.embedder.warm_up()
    results["txtai"], indexes = measure_builds(qa, work)
    results["txtai"]["bbc_build_load"] = load()
    print_figure("txtai", "bbc build", results["txtai"])
    torch_qa = latency.torch_query_qa(qa)

    questions = bbc_questions(files)
    texts = [q["question"] for q in questions]
    systems = {**our_systems(qa, torch_qa), **txtai_systems(indexes)}
    results["latency"] = {"bbc": latency.interleaved(systems, texts, runs)}
    bbc = results["latency"]["bbc"]
    bbc["questions"] = len(texts)
    for name, fig in bbc.items():
        print_figure("latency bbc", name, fig)
    gold = [q["doc_id"] for q in questions]
    for mode, tx in indexes.items():
        ours = [[p.chunk.doc_id for p in qa.search(q, mode=mode)] for q in texts]
        bbc[f"ours_{mode}_hit@5"] = latency.hit_rate(ours, gold)
        bbc[f"txtai_{mode}_hit@5"] = latency.hit_rate([tx.search(q) for q in texts], gold)
    del indexes

    x_questions, x_documents = quality.xquad(XQUAD_FILE, xquad_limit)
    x_settings, x_index = quality.build_our_index(x_documents, qa.embedder, work / "xquad-index")
    retriever = Retriever(x_index, qa.embedder, x_settings)
    results["xquad"] = {"questions": len(x_questions), "chunks": len(x_index.chunks)}
    for mode in MODES:
        ranker = quality.our_ranker(retriever, mode)
        results["xquad"][f"ours_{mode}_recall@5"] = quality.recall(ranker, x_questions)
    results["xquad"].update(
        txtai_recalls(qa.embedder.path, x_index.chunks, x_settings.batch_size, x_questions)
    )
    print_figure("xquad", "recall@5", results["xquad"])
    results["txtai"]["ratios"] = ratios(results)
    print_figure("txtai", "ratios ours/txtai", results["txtai"]["ratios"])


def measure_builds(qa: Any, work: Path) -> tuple[dict[str, Any], dict[str, TxtaiIndex]]:
    """Our build of ``qa``'s corpus from the files (ingest, chunking, embedding, FAISS, BM25,
    atomic write), then txtai's per mode from our chunk texts (embedding, indexing, save), back
    to back in this process, models loaded beforehand: figures (seconds, bytes on disk) and
    the txtai indexes."""
    started = time.perf_counter()
    report = qa.build(rebuild=True, show_progress=False)
    ours_s = time.perf_counter() - started
    assert report.index is not None
    live = report.index.path
    chunks = report.index.chunks
    indexes, figures = build_pair(
        qa.embedder.path, chunks, qa.settings.batch_size, qa.settings.top_k, work
    )
    figures_out = {
        "bbc_documents": report.documents,
        "bbc_chunks": len(chunks),
        "ours_bbc_build_s": round(ours_s, 3),
        "ours_bbc_index_bytes": dir_size(live),
        "ours_bbc_index_parts_bytes": dir_parts(live),
        "bbc_build": figures,
    }
    return figures_out, indexes


def txtai_recalls(
    model_dir: str, chunks: Sequence[Chunk], batch_size: int, questions: Sequence[Any]
) -> dict[str, float]:
    """recall@5 on xquad-dev of txtai per mode over ``chunks`` (our index's)."""
    from benchmarks import quality

    indexes, _ = build_pair(model_dir, chunks, batch_size, quality.K, None)
    return {
        f"txtai_{mode}_recall@5": quality.recall(tx.search, questions)
        for mode, tx in indexes.items()
    }


if __name__ == "__main__":
    main()
