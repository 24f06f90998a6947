"""Index build: throughput against the raw encoder, peak memory, size on disk, adding one article.

The build runs in a subprocess (``python -m benchmarks.build``) so ``ru_maxrss`` is the peak
resident memory of a process that did nothing but load the model and build. In that process:

1. the model loads (timed apart: it is paid once per process, not per chunk);
2. a full build of the corpus less one held-out article through ``QA.build(rebuild=True)``,
   what ``qa index --rebuild`` runs: ingest, chunking, embedding (chunk vectors and the
   sentence vectors pooled from the same pass), FAISS, BM25, the atomic write, end to end,
   with the time of each stage;
3. the held-out article is copied in and the index updated by ``QA.build()`` on the same warm
   ``QA`` object, as the web page's Documents tab does after an upload: end to end and by
   stage. The previous index is the one in memory; unchanged files are not read again.

``--in-place ARTICLE`` measures updates in place instead, side by side in one process: after a
full build of the corpus, ``ARTICLE`` is added (and removed again, untimed) ``--reps`` times by
each of two ``QA`` objects in turn, one that adds its chunks to the live index in place and one
with ``compact_at=0``, whose every update makes the FAISS index and tables anew from the reused
vectors (what every update did before updates in place); the seconds beyond the article's own
chunking and embedding are the figure compared. ``--dense N`` times the dense stage alone on
``N`` synthetic unit vectors (no model, no corpus): adding an article's few vectors (to the exact
tail beside the index, or past its bound to a copy of the index) against making the index from
all of them, and writing what an update writes.

Then a second fresh process (``--raw``) runs the bare encoder (sentence-transformers' own
``SentenceTransformer.encode``, what a user of the model alone would run) on exactly the chunk
texts the full build made, same model and batch size: what the build's throughput is compared
with. The build's own encoding loop differs from it in how it batches (by word pieces, not
characters: ``Embedder._most_pieces_first``); ``benchmarks/batching.py`` measures the two loops
side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.common import (
    BBC_DIR,
    REPO,
    bbc_files,
    copy_corpus,
    dir_parts,
    dir_size,
    load,
    stopwatch,
)

if TYPE_CHECKING:
    from qa.store import Index


def _rss_mib() -> float:
    with open("/proc/self/status", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def _peak_rss_mib() -> float:
    # Linux reports ru_maxrss in KiB.
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def worker(
    corpus: Path, index_dir: Path, adds: list[Path], texts_out: Path | None = None
) -> dict[str, Any]:
    """Do the build steps in this process and return every figure (see module docstring).

    ``texts_out``: where to write the chunk texts of the full build (for ``raw_worker``).
    """
    from benchmarks.common import quiet_environment

    quiet_environment()
    from qa.pipeline import QA
    from qa.settings import Settings

    settings = Settings.from_env(corpus_dir=corpus, index_dir=index_dir)
    out: dict[str, Any] = {"rss_start_mib": _rss_mib()}
    qa = QA(settings)
    with stopwatch() as t:
        qa.embedder.warm_up()
    out["model_load_s"] = round(t["s"], 3)
    out["rss_after_model_mib"] = _rss_mib()

    out["load_at_build"] = load()
    stages: dict[str, float] = {}
    with stopwatch() as t_build:
        report = qa.build(rebuild=True, show_progress=False, timings=stages)
    index = report.index
    assert index is not None
    out.update(
        documents=report.documents,
        chunks=report.chunks,
        sentences=len(index.sentences),
        build_total_s=round(t_build["s"], 3),
        build_stages_s={k: round(v, 3) for k, v in stages.items()},
        build_chunks_per_s=round(report.chunks / t_build["s"], 2),
        peak_rss_build_mib=_peak_rss_mib(),
    )

    if texts_out is not None:
        texts_out.write_text(json.dumps([c.text for c in index.chunks]), encoding="utf-8")

    live = index.path
    size = dir_size(live)
    out["index_bytes"] = size
    out["index_bytes_per_chunk"] = round(size / max(1, report.chunks), 1)
    out["index_parts_bytes"] = dir_parts(live)
    out["faiss_kind"] = index.manifest["faiss_index"]

    # Each held-out article is added in turn, as the web page's Documents tab adds an upload.
    out["adds"] = []
    for article in adds:
        shutil.copyfile(article, corpus / article.parent.name / article.name)
        load_now = load()
        parts: dict[str, float] = {}
        with stopwatch() as t_add:
            updated = qa.build(show_progress=False, timings=parts)
        out["adds"].append(
            {
                "article": f"{article.parent.name}/{article.name}",
                "bytes": article.stat().st_size,
                "embedded_chunks": updated.embedded_chunks,
                "documents_after": updated.documents,
                "added": updated.added,
                "in_place": updated.in_place,
                "s": round(t_add["s"], 3),
                # What the update costs beyond the article's own chunking and embedding.
                "beyond_embedding_s": round(
                    t_add["s"] - parts.get("chunking", 0.0) - parts.get("embedding", 0.0), 3
                ),
                "vs_full_build": round(t_add["s"] / t_build["s"], 5),
                "parts_s": {k: round(v, 3) for k, v in parts.items()},
                "load": load_now,
            }
        )
    if out["adds"]:
        # The figure the target is checked on: the first article (run.py holds out one of
        # median size first, so this is a typical article).
        first = out["adds"][0]
        out["add_one_s"] = first["s"]
        out["add_one_beyond_embedding_s"] = first["beyond_embedding_s"]
        out["add_one_in_place"] = first["in_place"]
        out["add_one_vs_full_build"] = first["vs_full_build"]
        out["add_one_embedded_chunks"] = first["embedded_chunks"]
        out["add_one_documents"] = first["documents_after"]
        out["add_one_added"] = first["added"]
        out["add_one_parts_s"] = first["parts_s"]
    out["peak_rss_mib"] = _peak_rss_mib()
    return out


def in_place_worker(corpus: Path, index_dir: Path, article: Path, reps: int) -> dict[str, Any]:
    """Add ``article`` in place and with a rebuild of the index, alternately (module docstring).

    Each timed update starts from the live index in memory of the ``QA`` object that makes it
    (an untimed update first takes it up from the other one's last build).
    """
    from benchmarks.common import quiet_environment

    quiet_environment()
    from qa.pipeline import QA
    from qa.settings import Settings

    settings = Settings.from_env(corpus_dir=corpus, index_dir=index_dir)
    in_place = QA(settings)
    in_place.embedder.warm_up()
    report = in_place.build(rebuild=True, show_progress=False)
    out: dict[str, Any] = {
        "documents": report.documents,
        "chunks": report.chunks,
        "faiss_kind": report.index.manifest["faiss_index"] if report.index else None,
        "article": f"{article.parent.name}/{article.name}",
        "bytes": article.stat().st_size,
        "load_at_start": load(),
    }
    ways = {
        "in_place": in_place,
        "rebuild": QA(settings.replace(compact_at=0.0), embedder=in_place.embedder),
    }
    target = corpus / article.parent.name / article.name
    runs: dict[str, list[dict[str, float]]] = {way: [] for way in ways}
    for _ in range(reps):
        for way, qa in ways.items():
            qa.build(show_progress=False)
            shutil.copyfile(article, target)
            parts: dict[str, float] = {}
            with stopwatch() as t:
                added = qa.build(show_progress=False, timings=parts)
            assert added.added and added.in_place == (way == "in_place"), added.to_dict()
            embedding = parts.get("chunking", 0.0) + parts.get("embedding", 0.0)
            runs[way].append({"s": t["s"], "beyond_embedding_s": t["s"] - embedding, **parts})
            out["embedded_chunks"] = added.embedded_chunks
            target.unlink()
            qa.build(show_progress=False)
    for way, timed in runs.items():
        out[way] = {
            key: round(statistics.median(run.get(key, 0.0) for run in timed), 3) for key in timed[0]
        }
        out[way]["runs"] = len(timed)
    # The price of masked rows at question time: the article added and removed again in place
    # leaves its rows masked, and every search then passes the mask of live rows (never
    # compacted here, however small the corpus).
    masking = QA(settings.replace(compact_at=1.0), embedder=in_place.embedder)
    masking.build(show_progress=False)
    shutil.copyfile(article, target)
    masking.build(show_progress=False)
    target.unlink()
    masking.build(show_progress=False)
    out["masked_search"] = _masked_search(masking.index)
    out["load_at_end"] = load()
    return out


def _masked_search(index: Index, queries: int = 200) -> dict[str, Any]:
    """Median ms of one dense and one BM25 search of ``index`` with its mask of live rows and
    without it; the queries are chunk vectors and chunk texts of the index."""
    import numpy as np

    from qa.retrieval import dense_search, one_search_thread

    one_search_thread()
    live = index.live_rows
    assert live is not None
    rows = np.flatnonzero(live)[:: max(1, int(live.sum()) // queries)][:queries]
    vectors = index.dense.reconstruct_batch(rows)
    texts = [index.chunks[int(r)].text for r in rows]
    out: dict[str, Any] = {"masked_rows": index.masked, "rows": len(index.chunks)}
    out["queries"] = len(rows)
    for label, mask in (("unmasked", None), ("masked", live)):
        dense_s, bm25_s = [], []
        for vector, text in zip(vectors, texts, strict=True):
            with stopwatch() as t:
                dense_search(index.dense, vector, 50, mask)
            dense_s.append(t["s"])
            with stopwatch() as t:
                index.lexical.search(text, 50, mask)
            bm25_s.append(t["s"])
        out[f"dense_{label}_ms"] = round(statistics.median(dense_s) * 1000, 3)
        out[f"bm25_{label}_ms"] = round(statistics.median(bm25_s) * 1000, 3)
    return out


def dense_worker(n: int, kind: str, added: int, reps: int, dim: int = 384) -> dict[str, Any]:
    """The dense stage alone on ``n`` synthetic unit vectors (module docstring): medians."""
    import tempfile

    import faiss
    import numpy as np

    from qa.indexing.dense import grow_dense_index, make_dense_index
    from qa.store import TailedIndex

    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((n + added, dim), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    live = make_dense_index(vectors[:n], kind)
    grow, make, write, tailed = [], [], [], []
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(reps):
            with stopwatch() as t_grow:
                grown = grow_dense_index(live, vectors[n:])
            with stopwatch() as t_make:
                made = make_dense_index(vectors, kind)
            assert grown.ntotal == made.ntotal == n + added
            del made
            path = Path(folder) / "dense.faiss"
            # What an update in place writes: the exact tail where the rows went there (the
            # index's own file is hard-linked), else the whole grown index.
            tailed.append(isinstance(grown, TailedIndex))
            with stopwatch() as t_write:
                faiss.write_index(
                    grown.tail if isinstance(grown, TailedIndex) else grown, str(path)
                )
                with path.open("rb") as fh:
                    os.fsync(fh.fileno())
            path.unlink()
            del grown
            grow.append(t_grow["s"])
            make.append(t_make["s"])
            write.append(t_write["s"])
    return {
        "vectors": n,
        "added": added,
        "kind": kind,
        "grow_s": round(statistics.median(grow), 6),
        "make_s": round(statistics.median(make), 6),
        "write_s": round(statistics.median(write), 6),
        "into_tail": all(tailed),
        "runs": reps,
        "load": load(),
    }


def raw_worker(texts_file: Path) -> dict[str, Any]:
    """Encode the build's chunk texts with the bare encoder, in a fresh process like the build's.

    Both processes start alike (model loaded and warmed on one query), because the first pass
    over a set of batch shapes is slower than later ones in any process (~8% on 600 BBC chunks):
    timing the raw encoder after the build, in the build's process, would flatter it.
    """
    from benchmarks.common import quiet_environment

    quiet_environment()
    from qa.pipeline import QA
    from qa.settings import Settings

    texts = json.loads(texts_file.read_text(encoding="utf-8"))
    qa = QA(Settings.from_env())
    qa.embedder.warm_up()
    out: dict[str, Any] = {"load_at_raw_encode": load()}
    with stopwatch() as t_raw:
        qa.embedder.model.encode(
            texts,
            batch_size=qa.embedder.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
        )
    out["raw_encode_s"] = round(t_raw["s"], 3)
    out["raw_encode_chunks_per_s"] = round(len(texts) / t_raw["s"], 2)
    return out


def _run(args: list[str], timeout: float) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.build", *args]
    proc = subprocess.run(
        cmd,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        encoding="utf-8",
    )
    if proc.returncode != 0:
        raise RuntimeError(f"build worker failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_build(
    corpus: Path, index_dir: Path, adds: list[Path], timeout: float = 3600
) -> dict[str, Any]:
    """Run ``worker``, then ``raw_worker`` on its chunk texts, each in a fresh process."""
    texts = index_dir.parent / f"{index_dir.name}-chunk-texts.json"
    args = ["--corpus", str(corpus), "--index", str(index_dir), "--texts-out", str(texts)]
    for article in adds:
        args += ["--add", str(article)]
    out = _run(args, timeout)
    out.update(_run(["--raw", str(texts)], timeout))
    out["build_vs_raw"] = round(out["build_chunks_per_s"] / out["raw_encode_chunks_per_s"], 4)
    texts.unlink(missing_ok=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path)
    parser.add_argument("--index", type=Path)
    parser.add_argument(
        "--add", type=Path, action="append", default=[], help="an article to add after the build"
    )
    parser.add_argument("--texts-out", type=Path, help="write the built chunk texts here")
    parser.add_argument("--raw", type=Path, help="only encode the chunk texts in this file")
    parser.add_argument(
        "--in-place",
        type=Path,
        metavar="WORK",
        help="in WORK, index BBC less its median article, then add that article in place and "
        "with a rebuild, alternately",
    )
    parser.add_argument("--dense", type=int, help="time the dense stage on this many vectors")
    parser.add_argument("--kind", default="flat", choices=["flat", "hnsw", "ivfpq"])
    parser.add_argument("--reps", type=int, default=5, help="timed updates of each kind")
    args = parser.parse_args()
    if args.raw is not None:
        print(json.dumps(raw_worker(args.raw)))
    elif args.dense is not None:
        print(json.dumps(dense_worker(args.dense, args.kind, 5, args.reps)))
    elif args.in_place is not None:
        # The median article, chosen as run.py chooses the one the target is checked on.
        files = bbc_files()
        article = sorted(files[:-1], key=lambda p: (p.stat().st_size, p))[(len(files) - 1) // 2]
        corpus = copy_corpus([f for f in files if f != article], BBC_DIR, args.in_place / "corpus")
        shutil.rmtree(args.in_place / "index", ignore_errors=True)
        out = in_place_worker(corpus, args.in_place / "index", article, args.reps)
        print(json.dumps(out))
    elif args.corpus is None or args.index is None:
        parser.error("--corpus and --index are required without --raw, --dense or --in-place")
    else:
        print(json.dumps(worker(args.corpus, args.index, args.add, args.texts_out)))


if __name__ == "__main__":
    main()
