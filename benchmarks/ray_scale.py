"""Past one machine: the sharded index on Ray, measured (docs/scaling.md reads these figures).

Three parts, each printed with the load average (two cores shared with other work make every
figure here a lower bound of what quiet hardware gives):

* ``throughput``: the distributed build's chunking and embedding pass (Ray Data,
  ``qa.scale.build.embed_on_cluster``) over the same BBC articles on a local cluster of one
  node and of two nodes (one CPU each), ``--repeats`` times each, medians side by side. Both
  clusters run on this host's two cores: two nodes can at best double one node's rate, and
  only on an otherwise idle host.
* ``recall``: hybrid recall@5 (the paragraph holding the answer among the top 5 passages) of
  the xquad-dev questions over xquad-dev's paragraphs plus the BBC articles, for the single
  index and for the same chunks and vectors in 2 and 4 shards searched and fused by the code
  the Serve deployments run (``qa.scale.shard``, BM25 under the statistics gathered from every
  shard), with how often the top 5 is the same as the single index's, and what gathering the
  statistics costs in process.
* ``serve``: hybrid search latency through a two-node cluster (client, router, shards) against
  the same search in process, and the round trip that gathers the shards' BM25 statistics.
* ``memory``: resident bytes a chunk of a loaded index (the BBC index), with and without its
  vectors: what a shard replica holds.
* ``lexical``: BM25 over ``--chunks`` chunks (BBC chunk texts repeated), build time, size and
  search latency, the other half of a shard's search.
* ``shard``: one shard of ``--vectors`` synthetic 384-d unit vectors (clustered, like sentence
  embeddings) in the IVF-PQ index the product builds above ``ivfpq_threshold``
  (``qa.indexing.dense``): build time, bytes on disk and in memory per vector, search latency
  (one thread) and recall@10 against exact search, the figures the sizing of 10^8 chunks in
  docs/scaling.md stands on.

Usage::

    python benchmarks/ray_scale.py [--parts throughput,recall,shard] [--docs 48]
        [--repeats 3] [--questions N] [--vectors 1000000] [--bbc-index DIR]

``--bbc-index`` names a built BBC index whose vectors the recall part reads (never writes); by
default ``train-runs/bbc-work/index`` where it exists, else the BBC articles are embedded
first. Parts that need ``../shared`` skip with a message where it is absent.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (  # noqa: E402
    BBC_DIR,
    REPO,
    XQUAD_FILE,
    bbc_files,
    print_figure,
    quiet_environment,
)

DEFAULT_BBC_INDEX = REPO / "train-runs" / "bbc-work" / "index"


def throughput(docs: int, repeats: int) -> None:
    """Chunks per second of the cluster's embedding pass on one node and on two."""
    if not BBC_DIR.is_dir():
        print("[throughput] skipped: ../shared/data/bbc-news is absent")
        return
    from qa.ingest import scan_corpus
    from qa.scale.build import embed_on_cluster
    from qa.scale.cluster import local_cluster
    from qa.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        from benchmarks.common import copy_corpus

        corpus = copy_corpus(bbc_files(docs), BBC_DIR, Path(tmp) / "corpus")
        documents, _ = scan_corpus(corpus, None)
    settings = Settings()
    rates: dict[int, list[float]] = {}
    for nodes in (1, 2):
        with local_cluster(nodes=nodes, cpus_per_node=1):
            for _ in range(repeats):
                started = time.perf_counter()
                embedded, used = embed_on_cluster(settings, documents)
                seconds = time.perf_counter() - started
                chunks = sum(len(c) for c, _, _ in embedded.values())
                rates.setdefault(nodes, []).append(chunks / seconds)
                print_figure(
                    "throughput",
                    f"{nodes} node(s), one run",
                    f"{chunks} chunks in {seconds:.1f} s on {len(used)} node(s)",
                )
    one, two = statistics.median(rates[1]), statistics.median(rates[2])
    print_figure("throughput", "chunks/s, 1 node (median)", round(one, 2))
    print_figure("throughput", "chunks/s, 2 nodes (median)", round(two, 2))
    print_figure("throughput", "2 nodes / 1 node", round(two / one, 2))


def recall(bbc_index: Path | None, questions_limit: int | None) -> None:
    """Hybrid recall@5 and top-5 agreement, single index against 2 and 4 shards."""
    if not XQUAD_FILE.exists() or not BBC_DIR.is_dir():
        print("[recall] skipped: ../shared/data (xquad-dev, bbc-news) is absent")
        return
    from qa.embedding import Embedder
    from qa.evaluation.datasets import load_squad
    from qa.indexing.build import build_index, chunk_and_embed
    from qa.indexing.persist import load_index
    from qa.ingest import scan_corpus
    from qa.retrieval import Retriever
    from qa.scale.layout import shard_of
    from qa.scale.shard import corpus_statistics, fuse, search_shard
    from qa.settings import RetrievalMode, Settings
    from qa.store import Index
    from qa.types import Document

    embedder = Embedder("default")
    questions, paragraphs = load_squad(XQUAD_FILE)
    questions = [q for q in questions if q.answerable][:questions_limit]
    bbc: Index | None = None
    if bbc_index is not None and (bbc_index / "current").exists():
        bbc = load_index(Settings(index_dir=bbc_index), embedding_name=embedder.name)
        bbc_docs = list(bbc.documents.values())
    else:
        bbc_docs, _ = scan_corpus(BBC_DIR, None)
    documents = sorted([*paragraphs, *bbc_docs], key=lambda d: d.doc_id)

    def from_indexes(wanted: list[Document]):  # noqa: ANN202 - an EmbedStage
        """BBC vectors from the BBC index (no re-embedding), the rest embedded here."""
        reuse = bbc if bbc is not None else None
        kept = [d for d in wanted if reuse is not None and d.doc_id in reuse.documents]
        kept_ids = {d.doc_id for d in kept}
        fresh = [d for d in wanted if d.doc_id not in kept_ids]
        chunks, vectors, sentences = chunk_and_embed(Settings(), embedder, fresh)
        if kept and reuse is not None:
            by_doc: dict[str, list[int]] = {}
            for row, chunk in enumerate(reuse.chunks):
                by_doc.setdefault(chunk.doc_id, []).append(row)
            all_vectors = reuse.vectors()
            rows = [r for d in kept for r in by_doc[d.doc_id]]
            chunks = chunks + [reuse.chunks[r] for r in rows]
            vectors = np.concatenate([vectors, all_vectors[rows]])
            sentences.update({d.doc_id: reuse.sentences.of_document(d.doc_id) for d in kept})
        return chunks, vectors, sentences

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        base = Settings(index_dir=Path(tmp) / "single")
        single = build_index(
            base, documents, embedder, show_progress=False, embed=from_indexes
        ).index
        print_figure(
            "recall",
            "single index",
            f"{len(single.documents)} documents, {len(single.chunks)} chunks "
            f"({time.perf_counter() - started:.0f} s)",
        )

        def single_stage(wanted: list[Document]):  # noqa: ANN202 - an EmbedStage
            ids = {d.doc_id for d in wanted}
            rows = [r for r, c in enumerate(single.chunks) if c.doc_id in ids]
            return (
                [single.chunks[r] for r in rows],
                single.vectors()[rows],
                {d.doc_id: single.sentences.of_document(d.doc_id) for d in wanted},
            )

        layouts: dict[int, list[Index]] = {}
        for shards in (2, 4):
            layouts[shards] = [
                build_index(
                    base.replace(index_dir=Path(tmp) / f"s{shards}-{i}"),
                    [d for d in documents if shard_of(d.doc_id, shards) == i],
                    embedder,
                    show_progress=False,
                    embed=single_stage,
                ).index
                for i in range(shards)
            ]

        retriever = Retriever(single, embedder, base)
        depth = max(base.candidates, 5)
        hits = {"single": 0, **{f"{s} shards": 0 for s in layouts}}
        modes: tuple[RetrievalMode, ...] = ("hybrid", "dense", "lexical")
        same = {(s, m): 0 for s in layouts for m in modes}
        tied = {(s, m): 0 for s in layouts for m in modes}
        gathering: dict[int, list[float]] = {s: [] for s in layouts}
        for q in questions:
            vector = embedder.encode_query(q.question)
            single_top = {m: retriever.search(q.question, k=5, mode=m) for m in modes}
            hits["single"] += q.doc_id in {p.chunk.doc_id for p in single_top["hybrid"]}
            for shards, indexes in layouts.items():
                for mode in modes:
                    started = time.perf_counter()
                    gathered = corpus_statistics(indexes, q.question, mode)
                    if mode == "hybrid":
                        gathering[shards].append(time.perf_counter() - started)
                    found = [
                        search_shard(i, idx, q.question, vector, depth, mode, statistics=gathered)
                        for i, idx in enumerate(indexes)
                    ]
                    fused = fuse(found, 5, depth, mode, base)
                    if mode == "hybrid":
                        hits[f"{shards} shards"] += q.doc_id in {p.chunk.doc_id for p in fused}
                    ids = [p.chunk.chunk_id for p in fused]
                    same[shards, mode] += ids == [p.chunk.chunk_id for p in single_top[mode]]
                    # Equal scores, place by place: the same top 5 up to the order of exact
                    # ties (the BBC set holds some articles twice, whose chunks tie).
                    scores = [round(p.score, 5) for p in fused]
                    tied[shards, mode] += scores == [round(p.score, 5) for p in single_top[mode]]
        n = len(questions)
        for name, count in hits.items():
            print_figure("recall", f"hybrid recall@5, {name} ({n} questions)", count / n)
        for shards in layouts:
            for mode in modes:
                print_figure(
                    "recall",
                    f"same {mode} top 5 as single, {shards} shards",
                    same[shards, mode] / n,
                )
                print_figure(
                    "recall",
                    f"same {mode} scores, place by place, {shards} shards",
                    tied[shards, mode] / n,
                )
            seconds = gathering[shards]
            print_figure(
                "recall",
                f"gathering the BM25 statistics in process, {shards} shards, p50 / p95 ms",
                f"{1000 * statistics.median(seconds):.2f} / "
                f"{1000 * float(np.percentile(seconds, 95)):.2f}",
            )


def shard(n: int, queries: int = 200) -> None:
    """An IVF-PQ shard of ``n`` vectors: build, size, latency, recall@10 against exact, with
    the codes alone (``k_factor`` 1) and re-ranked by the exact vectors."""
    import faiss

    from qa.indexing.dense import IVF_REFINE_K_FACTOR, make_dense_index
    from qa.retrieval import dense_search, one_search_thread

    rng = np.random.default_rng(0)
    dim = 384
    centres = rng.standard_normal((4096, dim)).astype(np.float32)
    vectors = np.empty((n, dim), dtype=np.float32)
    for lo in range(0, n, 100_000):
        hi = min(n, lo + 100_000)
        block = centres[rng.integers(0, len(centres), hi - lo)]
        block += 0.6 * rng.standard_normal((hi - lo, dim)).astype(np.float32)
        vectors[lo:hi] = block / np.linalg.norm(block, axis=1, keepdims=True)
    asked = vectors[rng.integers(0, n, queries)] + 0.1 * rng.standard_normal((queries, dim))
    asked = (asked / np.linalg.norm(asked, axis=1, keepdims=True)).astype(np.float32)

    started = time.perf_counter()
    index = make_dense_index(vectors, "ivfpq")
    print_figure(
        "shard", f"IVF-PQ build, {n:,} vectors (s)", round(time.perf_counter() - started, 1)
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "dense.faiss"
        faiss.write_index(index, str(path))
        size = path.stat().st_size
    print_figure("shard", "IVF-PQ with exact vectors, bytes on disk per vector", round(size / n, 1))
    ivf = faiss.extract_index_ivf(index)
    print_figure("shard", "IVF-PQ lists / nprobe", f"{ivf.nlist} / {ivf.nprobe}")

    exact = faiss.IndexFlatIP(dim)
    exact.add(vectors)
    one_search_thread()
    truth = [set(exact.search(q[None, :], 10)[1][0].tolist()) for q in asked]
    print_figure("shard", "flat bytes per vector", dim * 4)
    for nprobe, k_factor in [(p, f) for p in (16, 32, 64) for f in (1, IVF_REFINE_K_FACTOR)]:
        ivf.nprobe = nprobe
        seconds, found = [], []
        for q in asked:
            t = time.perf_counter()
            rows = dense_search(index, q, 10, k_factor=k_factor)
            seconds.append(time.perf_counter() - t)
            found.append({r for r, _ in rows})
        rec = np.mean([len(f & t) / 10 for f, t in zip(found, truth, strict=True)])
        print_figure(
            "shard",
            f"nprobe {nprobe}, k_factor {k_factor}: p50 / p95 ms, recall@10",
            f"{1000 * statistics.median(seconds):.2f} / "
            f"{1000 * float(np.percentile(seconds, 95)):.2f}, {rec:.3f}",
        )
    t = time.perf_counter()
    for q in asked[:20]:
        exact.search(q[None, :], 10)
    print_figure(
        "shard", "exact search p-mean ms (20 queries)", round(50 * (time.perf_counter() - t), 1)
    )


def lexical(bbc_index: Path, n: int) -> None:
    """BM25 (the product's ``LexicalIndex``) over ``n`` chunks: the BBC chunk texts repeated
    until there are ``n`` (the same terms, each posting list ``n / 13,235`` times longer, so
    a pessimistic stand-in for a real corpus of that size, whose vocabulary would be wider):
    build time, bytes, and search latency of BBC headline questions at depth 50, by bm25s's
    matrix and under global statistics (a shard's search in a sharded index: its statistics
    of the question's terms, then ``search_global``; its term counts built on first use)."""
    from benchmarks.common import bbc_questions
    from qa.indexing.persist import load_index
    from qa.lexical import LexicalIndex, tokenize
    from qa.settings import Settings

    if not (bbc_index / "current").exists():
        print(f"[lexical] skipped: no BBC index at {bbc_index}")
        return
    index = load_index(Settings(index_dir=bbc_index))
    texts = [c.text for c in index.chunks]
    texts = (texts * (n // len(texts) + 1))[:n]
    started = time.perf_counter()
    bm25 = LexicalIndex.build(texts)
    print_figure(
        "lexical", f"BM25 build, {n:,} chunks (s)", round(time.perf_counter() - started, 1)
    )
    with tempfile.TemporaryDirectory() as tmp:
        bm25.save(Path(tmp) / "bm25")
        size = sum(p.stat().st_size for p in (Path(tmp) / "bm25").rglob("*") if p.is_file())
    print_figure("lexical", "BM25 bytes per chunk (with token ids)", round(size / n, 1))
    started = time.perf_counter()
    bm25.statistics([])  # builds the term counts that global scoring reads
    built = time.perf_counter() - started
    counts, lengths = bm25._postings.counts, bm25._postings.lengths
    held = counts.data.nbytes + counts.indices.nbytes + counts.indptr.nbytes + lengths.nbytes
    print_figure(
        "lexical",
        "term counts for global scoring: build (s), bytes per chunk",
        f"{built:.2f}, {held / n:.0f}",
    )
    questions = [q["question"] for q in bbc_questions(bbc_files())]
    searches = {
        "search": lambda question: bm25.search(question, 50),
        "global search (statistics, then search_global)": lambda question: bm25.search_global(
            question, 50, bm25.statistics(tokenize([question])[0])
        ),
    }
    for name, search in searches.items():
        seconds = []
        for question in questions:
            t = time.perf_counter()
            search(question)
            seconds.append(time.perf_counter() - t)
        print_figure(
            "lexical",
            f"{name} p50 / p95 ms (30 questions, depth 50)",
            f"{1000 * statistics.median(seconds):.1f} / "
            f"{1000 * float(np.percentile(seconds, 95)):.1f}",
        )


def pq_real(bbc_index: Path) -> None:
    """The same 48-byte product quantizer on real chunk vectors: recall@10 against exact
    search of the BBC index's 13,235 vectors for the 30 BBC questions, with and without
    re-ranking the quantizer's top 100 by the exact vectors or by their float16 roundings."""
    import faiss

    from benchmarks.common import bbc_questions
    from qa.embedding import Embedder
    from qa.indexing.dense import IVFPQ_M
    from qa.indexing.persist import load_index
    from qa.settings import Settings

    if not (bbc_index / "current").exists():
        print(f"[pq-real] skipped: no BBC index at {bbc_index}")
        return
    index = load_index(Settings(index_dir=bbc_index))
    vectors = index.vectors()
    pq = faiss.IndexPQ(vectors.shape[1], IVFPQ_M, 8, faiss.METRIC_INNER_PRODUCT)
    pq.train(vectors)
    pq.add(vectors)
    embedder = Embedder("default")
    asked = np.stack([embedder.encode_query(q["question"]) for q in bbc_questions(bbc_files())])
    truth = index.dense.search(asked, 10)[1]
    plain = pq.search(asked, 10)[1]
    wide = pq.search(asked, 100)[1]

    def rerank(kept: np.ndarray) -> list[np.ndarray]:
        return [row[np.argsort(-(kept[row] @ q))[:10]] for row, q in zip(wide, asked, strict=True)]

    reranked = rerank(vectors)
    # What ``Settings.ivfpq_refine`` fp16 keeps: every vector rounded to float16.
    halves = vectors.astype(np.float16).astype(np.float32)

    def recall(found) -> float:  # noqa: ANN001 - rows per question
        return float(
            np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)])
        )

    print_figure("pq-real", "PQ48 recall@10, BBC vectors, 30 questions", round(recall(plain), 3))
    print_figure("pq-real", "PQ48 top 100 re-ranked exactly, recall@10", round(recall(reranked), 3))
    print_figure(
        "pq-real",
        "PQ48 top 100 re-ranked by float16 vectors, recall@10",
        round(recall(rerank(halves)), 3),
    )
    print_figure(
        "pq-real",
        "float16 against exact cosines, largest difference",
        float(np.abs((halves - vectors) @ asked.T).max()),
    )


def serve_latency(docs: int) -> None:
    """Search latency through the cluster (client -> router -> 2 shards -> router -> client)
    against the same search in process, over the seed articles and ``docs`` BBC articles, the
    30 seed questions; p50 / p95 ms."""
    from benchmarks.common import SEED_CORPUS, copy_corpus, seed_questions
    from qa.embedding import Embedder
    from qa.lexical import tokenize
    from qa.pipeline import QA
    from qa.scale.build import build_sharded
    from qa.scale.cluster import local_cluster
    from qa.scale.serving import APP_NAME, deploy
    from qa.settings import Settings

    if not BBC_DIR.is_dir():
        print("[serve] skipped: ../shared/data/bbc-news is absent")
        return
    embedder = Embedder("default")
    with tempfile.TemporaryDirectory() as tmp:
        # Seed first: copy_corpus empties its destination.
        corpus = copy_corpus(sorted(SEED_CORPUS.glob("*.txt")), SEED_CORPUS, Path(tmp) / "c")
        copy_corpus(bbc_files(docs), BBC_DIR, corpus / "bbc")
        local = QA(Settings(corpus_dir=corpus, index_dir=Path(tmp) / "single"), embedder=embedder)
        local.build(show_progress=False)
        settings = Settings(
            corpus_dir=corpus, index_dir=Path(tmp) / "sharded", engine="ray", shards=2
        )
        questions = seed_questions()
        with local_cluster(nodes=2, cpus_per_node=1):
            build_sharded(settings, embedder)
            deploy(settings)
            remote = QA(settings)
            for qa in (local, remote):  # warm both: the question encoders load on first use
                qa.search(questions[0])
            for name, qa in (("in process", local), ("through the cluster", remote)):
                seconds = []
                for question in questions:
                    t = time.perf_counter()
                    qa.search(question)
                    seconds.append(time.perf_counter() - t)
                print_figure(
                    "serve",
                    f"hybrid search {name}, p50 / p95 ms ({len(questions)} questions)",
                    f"{1000 * statistics.median(seconds):.1f} / "
                    f"{1000 * float(np.percentile(seconds, 95)):.1f}",
                )
            # The router's extra round trip before the shards search: both shards' BM25
            # statistics of the question's terms, asked at once (here from this process).
            from ray import serve

            shards = [
                serve.get_deployment_handle(f"shard-{i}", app_name=APP_NAME)
                for i in range(settings.shards)
            ]
            seconds = []
            for question in questions:
                terms = tokenize([question])[0]
                t = time.perf_counter()
                for response in [shard.statistics.remote(terms) for shard in shards]:
                    response.result()
                seconds.append(time.perf_counter() - t)
            print_figure(
                "serve",
                f"both shards' BM25 statistics, p50 / p95 ms ({len(questions)} questions)",
                f"{1000 * statistics.median(seconds):.1f} / "
                f"{1000 * float(np.percentile(seconds, 95)):.1f}",
            )


def memory(bbc_index: Path) -> None:
    """Resident memory a loaded index costs per chunk (what a shard replica holds), with and
    without its flat vectors: the BBC index loaded in this process."""
    import gc
    import os

    from qa.indexing.persist import load_index
    from qa.settings import Settings

    if not (bbc_index / "current").exists():
        print(f"[memory] skipped: no BBC index at {bbc_index}")
        return

    def resident() -> int:
        with open("/proc/self/statm", encoding="utf-8") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    gc.collect()
    before = resident()
    index = load_index(Settings(index_dir=bbc_index))
    gc.collect()
    loaded = resident()
    n = len(index.chunks)
    print_figure(
        "memory", f"loaded index, bytes a chunk ({n:,} chunks)", round((loaded - before) / n)
    )
    vectors = index.dense.ntotal * index.dense.d * 4  # flat float32: what FAISS holds
    print_figure(
        "memory", "less the flat vectors, bytes a chunk", round((loaded - before - vectors) / n)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default="throughput,recall,shard,pq-real,lexical,serve,memory")
    parser.add_argument("--chunks", type=int, default=1_000_000, help="lexical part's size")
    parser.add_argument("--docs", type=int, default=48, help="BBC articles embedded per run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--questions", type=int, default=None, help="xquad questions (all)")
    parser.add_argument("--vectors", type=int, default=1_000_000)
    parser.add_argument("--bbc-index", type=Path, default=DEFAULT_BBC_INDEX)
    args = parser.parse_args()
    quiet_environment()
    parts = args.parts.split(",")
    if "throughput" in parts:
        throughput(args.docs, args.repeats)
    if "recall" in parts:
        recall(args.bbc_index, args.questions)
    if "shard" in parts:
        shard(args.vectors)
    if "serve" in parts:
        serve_latency(args.docs)
    if "memory" in parts:
        memory(args.bbc_index)
    if "pq-real" in parts:
        pq_real(args.bbc_index)
    if "lexical" in parts:
        lexical(args.bbc_index, args.chunks)


if __name__ == "__main__":
    main()
