"""Metadata filters over the BBC corpus: does a filtered search find what an index of the
filtered documents alone finds, and what does the filter cost?

Queries are article titles, whole and cut to their first three words (harder: many articles
share them), each restricted to its article's category folder
(``Filter.parse(where=["folder=<category>"])``), the article being the one to find. For each
kind of query and retrieval mode it prints recall@5 (the article among the documents of the
top 5 passages) of:

* the filtered search of the whole index (``Retriever.search(..., filter=...)``);
* the unfiltered search of an index holding only that category (same vectors, its own BM25);
* the unfiltered search of the whole index, for reference;

with the share of queries whose top 5 passages are the same in the first two, and the median
latency of a search with and without the filter (hybrid mode, whole index), and of working out
the filter's allowed chunks alone (``qa.retrieval.allowed_rows``).

Dense search is the same in both (FAISS returns the best allowed rows of the same vectors);
BM25 keeps the whole corpus's statistics under a filter while the category index has its own,
so lexical and hybrid rankings may differ slightly.

Usage::

    python benchmarks/filter_recall.py [--per-category 60] [--index DIR]

``--index`` names a built BBC index to read (never written); by default one under
``train-runs/bbc-work/index`` is used where it exists, else the corpus is indexed into a
temporary folder first (some ten minutes on two busy cores). Skips with a message where the
BBC corpus (``../shared/data/bbc-news``) is absent.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import BBC_CATEGORIES, BBC_DIR, REPO, load, quiet_environment

CACHED_INDEX = REPO / "train-runs" / "bbc-work" / "index"
K = 5


def category_index(full, category: str):  # noqa: ANN001, ANN201 - qa.store.Index
    """An in-memory index of one category's documents, from the whole index's chunks and
    vectors (nothing embedded again) with its own BM25."""
    import numpy as np

    from qa.indexing.dense import make_dense_index
    from qa.lexical import LexicalIndex
    from qa.store import Index

    rows = [i for i, c in enumerate(full.chunks) if c.doc_id.startswith(category + "/")]
    chunks = [full.chunks[i] for i in rows]
    vectors = np.stack([full.dense.reconstruct(i) for i in rows])
    documents = {d: doc for d, doc in full.documents.items() if d.startswith(category + "/")}
    return Index(
        manifest=dict(full.manifest, chunks=len(chunks)),
        documents=documents,
        chunks=chunks,
        dense=make_dense_index(vectors, "flat"),
        lexical=LexicalIndex.build([c.text for c in chunks]),
        path=full.path,
        sentences=full.sentences,  # not read by retrieval
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-category", type=int, default=60, help="queries per category")
    parser.add_argument("--index", type=Path, help="a built index of the BBC corpus (read only)")
    args = parser.parse_args()
    if not BBC_DIR.is_dir():
        print(f"skipped: the BBC corpus is not at {BBC_DIR} (it exists only on some machines)")
        return 0
    quiet_environment()
    from qa.embedding import Embedder
    from qa.filters import Filter
    from qa.pipeline import QA
    from qa.retrieval import Retriever, allowed_rows
    from qa.settings import Settings
    from qa.store import IndexProblem

    embedder = Embedder("default")
    embedder.warm_up()
    index_dir = args.index or CACHED_INDEX
    settings = Settings(corpus_dir=BBC_DIR, index_dir=index_dir)
    qa = QA(settings, embedder=embedder)
    try:
        full = qa.index
        print(f"reading the index at {index_dir}")
    except IndexProblem as exc:
        if args.index:
            print(f"error: {exc}")
            return 1
        temporary = Path(tempfile.mkdtemp(prefix="qa-filter-bench-"))
        print(f"no usable index at {index_dir} ({exc}); indexing {BBC_DIR} into {temporary}")
        qa = QA(settings.replace(index_dir=temporary), embedder=embedder)
        qa.build(show_progress=True)
        full = qa.index
    print(f"{len(full.documents)} documents, {len(full.chunks)} chunks; load {load()}")

    chosen: list[tuple[str, str]] = []  # (doc id, category)
    for category in BBC_CATEGORIES:
        ids = sorted(d for d in full.documents if d.startswith(category + "/"))
        step = max(1, len(ids) // args.per_category)
        chosen += [(d, category) for d in ids[::step]][: args.per_category]
    kinds = {
        "titles": [(full.documents[d].title, d, c) for d, c in chosen],
        "3 words": [(" ".join(full.documents[d].title.split()[:3]), d, c) for d, c in chosen],
    }
    subsets = {c: category_index(full, c) for c in BBC_CATEGORIES}
    whole = Retriever(full, embedder, settings)
    alone = {c: Retriever(subsets[c], embedder, settings) for c in BBC_CATEGORIES}
    filters = {c: Filter.parse(where=[f"folder={c}"]) for c in BBC_CATEGORIES}

    print(f"\n{len(chosen)} articles; recall@{K} of the article:")
    columns = ("filtered", "category index", "unfiltered", "same top 5")
    print(f"{'queries':8} {'mode':8} " + " ".join(f"{c:>15}" for c in columns))
    latency: dict[str, list[float]] = {"without filter": [], "with filter": []}
    for (kind, queries), mode in itertools.product(kinds.items(), ("hybrid", "dense", "lexical")):
        hits = {"filtered": 0, "alone": 0, "unfiltered": 0}
        same = 0
        for number, (title, target, category) in enumerate(queries):
            # Timed in turns, so neither search always runs first (warmer caches).
            searches = [("with filter", filters[category]), ("without filter", None)]
            found = {}
            for name, only_these in searches[:: 1 if number % 2 else -1]:
                started = time.perf_counter()
                found[name] = whole.search(title, k=K, mode=mode, filter=only_these)
                if mode == "hybrid" and kind == "titles":
                    latency[name].append(time.perf_counter() - started)
            filtered, unfiltered = found["with filter"], found["without filter"]
            only = alone[category].search(title, k=K, mode=mode)
            assert all(p.chunk.doc_id.startswith(category + "/") for p in filtered)
            hits["filtered"] += any(p.chunk.doc_id == target for p in filtered)
            hits["alone"] += any(p.chunk.doc_id == target for p in only)
            hits["unfiltered"] += any(p.chunk.doc_id == target for p in unfiltered)
            same += [p.chunk.chunk_id for p in filtered] == [p.chunk.chunk_id for p in only]
        n = len(queries)
        shares = (hits["filtered"], hits["alone"], hits["unfiltered"], same)
        print(f"{kind:8} {mode:8} " + " ".join(f"{x / n:>15.3f}" for x in shares))
    for category in BBC_CATEGORIES:
        for _ in range(5):
            started = time.perf_counter()
            allowed_rows(full, filters[category])
            latency.setdefault("allowed rows", []).append(time.perf_counter() - started)
    print("\nlatency, median (search: hybrid, question embedding included):")
    for name, seconds in latency.items():
        print(f"  {name:15} {statistics.median(seconds) * 1000:7.2f} ms")
    print(f"load {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
