"""Adding one article to a product index of about 10^6 chunks, beyond the article's embedding.

Embedding 10^6 chunks takes some seven hours on two cores, so the large index is built with
synthetic vectors: ``SyntheticEmbedder`` is the packaged model's ``Embedder`` (its tokenizer
counts the chunks' tokens, so chunks are cut exactly as the product cuts them) whose encoding
returns random unit vectors instead of running the model. Everything else is the product's own
build: the corpus scan, chunking, FAISS (the kind the size calls for), BM25, sentence tables and
the atomic write. The corpus is BBC articles tiled up to the size asked: copy ``k`` of an
article is its text with a first line naming the copy, so every file is a document of its own.

Then median-sized BBC articles held out of the tiling are copied in one at a time and the index
updated on the same warm ``QA`` object, each article two ways in turn: ``whole``, by
``QA.build()``, which walks the whole corpus folder for changes (as ``qa index`` and the web
page's Update index button do), and ``listed``, by ``QA.build(only=[file])`` (``qa index
--only FILE``, and the web page after an upload), which looks at that file alone; between
the two the article is taken out again. Each update's seconds beyond the article's own
chunking and embedding are the figure (issue #16's target: at most 1 s at 10^6 chunks), with
each stage's seconds beside it::

    .venv/bin/python -m benchmarks.scale_add WORK [--files 170000] [--adds 3]

``WORK`` keeps the tiled corpus and the index between runs (the tiling and the build are skipped
where the index is there). BBC articles average about six chunks, so 170,000 files make about
10^6 chunks.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import BBC_DIR, bbc_files, load, machine, quiet_environment, stopwatch
from qa.embedding import Embedder


class SyntheticEmbedder(Embedder):
    """The packaged model's tokenizer and dimension, random unit vectors for every text.

    Chunking (which counts tokens with the model's tokenizer) is the product's; the encoding,
    which would take hours at 10^6 chunks, is replaced. Sentence pools get one random token
    vector sum per span, counted once, so the sentence tables are built and written as usual.
    """

    def __init__(self, seed: int = 0) -> None:
        super().__init__(query_encoder="torch")
        self._rng = np.random.default_rng(seed)

    def _unit(self, n: int) -> np.ndarray:
        vectors = self._rng.standard_normal((n, self.dimension), dtype=np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    def encode(self, texts: Sequence[str], **_: Any) -> np.ndarray:
        return self._unit(len(texts))

    def encode_pooled(
        self,
        texts: Sequence[str],
        spans: Sequence[Sequence[tuple[int, int]]],
        *,
        progress: Callable[[int], None] | None = None,
    ) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
        pools = [(self._unit(len(s)), np.ones(len(s), np.int64)) for s in spans]
        if progress is not None:
            progress(len(texts))
        return self._unit(len(texts)), pools


def tile_corpus(sources: Sequence[Path], target: Path, files: int) -> int:
    """Write ``files`` documents into ``target``: the sources in turn, copy ``k`` of each with a
    first line naming the copy, 1,000 to a folder. Returns how many were written now."""
    texts = [p.read_text(encoding="utf-8", errors="replace") for p in sources]
    written = 0
    for i in range(files):
        source = sources[i % len(sources)]
        path = target / f"{i // 1000:04d}" / f"{i:07d}-{source.parent.name}-{source.name}"
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"Copy {i // len(sources)}.\n{texts[i % len(sources)]}", encoding="utf-8")
        written += 1
    return written


def held_out_articles(count: int) -> tuple[list[Path], list[Path]]:
    """The BBC articles to tile and, apart from them, ``count`` of median size to add."""
    files = bbc_files()
    by_size = sorted(files, key=lambda p: (p.stat().st_size, p))
    middle = len(by_size) // 2
    held = by_size[middle : middle + count]
    return [f for f in files if f not in held], held


def run(work: Path, files: int, adds: int) -> dict[str, Any]:
    """Build (where missing) the tiled index in ``work`` and add ``adds`` articles to it."""
    from qa.pipeline import QA
    from qa.settings import Settings

    sources, held = held_out_articles(adds)
    corpus, index_dir = work / "corpus", work / "index"
    out: dict[str, Any] = {"machine": machine(), "files": files}
    embedder = SyntheticEmbedder()
    qa = QA(Settings.from_env(corpus_dir=corpus, index_dir=index_dir), embedder=embedder)
    if not (index_dir / "current").exists():
        # Tiled with the index only: a later run with another ``--adds`` holds out other
        # articles, so its tiling would name its copies otherwise and double the corpus.
        with stopwatch() as t_tile:
            out["files_written"] = tile_corpus(sources, corpus, files)
        out["tile_s"] = round(t_tile["s"], 1)
        stages: dict[str, float] = {}
        out["load_at_build"] = load()
        with stopwatch() as t_build:
            qa.build(rebuild=True, show_progress=False, timings=stages)
        out["build_s"] = round(t_build["s"], 1)
        out["build_stages_s"] = {k: round(v, 2) for k, v in stages.items()}
    index = qa.index
    out["documents"] = len(index.documents)
    out["chunks"] = len(index.chunks)
    out["faiss_kind"] = index.manifest["faiss_index"]
    out["adds"] = []
    for article in held:
        target = corpus / "added" / f"{article.parent.name}-{article.name}"
        target.parent.mkdir(exist_ok=True)
        for how in ("whole", "listed"):
            if target.exists():  # added before (by the other way, or an earlier run)
                target.unlink()
                qa.build(show_progress=False, only=[target])
            shutil.copyfile(article, target)
            parts: dict[str, float] = {}
            load_now = load()
            only = [target] if how == "listed" else None
            with stopwatch() as t_add:
                updated = qa.build(show_progress=False, timings=parts, only=only)
            embedding = parts.get("chunking", 0.0) + parts.get("embedding", 0.0)
            out["adds"].append(
                {
                    "article": f"{article.parent.name}/{article.name}",
                    "how": how,
                    "embedded_chunks": updated.embedded_chunks,
                    "in_place": updated.in_place,
                    "s": round(t_add["s"], 3),
                    "beyond_embedding_s": round(t_add["s"] - embedding, 3),
                    "parts_s": {k: round(v, 3) for k, v in parts.items()},
                    "load": load_now,
                }
            )
            print(json.dumps(out["adds"][-1]), flush=True)
    for how in ("whole", "listed"):
        mine = [a["beyond_embedding_s"] for a in out["adds"] if a["how"] == how]
        if mine:
            out[f"add_{how}_beyond_embedding_median_s"] = statistics.median(mine)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("work", type=Path, help="folder for the tiled corpus and its index")
    parser.add_argument(
        "--files", type=int, default=170_000, help="documents to index (~6 chunks each)"
    )
    parser.add_argument("--adds", type=int, default=3, help="median articles added in turn")
    args = parser.parse_args(argv)
    quiet_environment()
    if not BBC_DIR.exists():
        parser.error(f"the BBC articles are not at {BBC_DIR}")
    args.work.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    out = run(args.work, args.files, args.adds)
    out["total_s"] = round(time.perf_counter() - began, 1)
    (args.work / "scale_add.json").write_text(json.dumps(out, indent=2), encoding="utf-8")
    print(json.dumps({k: v for k, v in out.items() if k != "machine"}, indent=2))


if __name__ == "__main__":
    main()
