"""The build's encoding loop against sentence-transformers' own, side by side in one process.

Both embed the same chunk texts with the same model and batch size. sentence-transformers
orders a call's texts by characters, longest first, and pads each batch to its longest text in
word pieces; the build's loop (``Embedder.encode_pooled``) orders them by word pieces
(``Embedder._most_pieces_first``), so a batch holds texts of nearly one length. This prints, for
each order, the word pieces the batches are padded to against the real ones, and the seconds
of each loop, interleaved (one run of each in turn, ``--runs`` times; medians), and how far
apart their vectors are.

The texts are the chunks the product makes (``qa.indexing.chunking.Chunker`` with the default
settings) of BBC articles spread evenly over its categories (``bbc_files``).

    .venv/bin/python -m benchmarks.batching [--articles 300] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import numpy as np

from benchmarks.common import BBC_DIR, bbc_files, load, machine, quiet_environment


def chunk_texts(articles: int) -> list[str]:
    """The chunk texts of ``articles`` BBC articles spread evenly over the categories."""
    from qa.embedding import Embedder
    from qa.indexing.chunking import Chunker, token_length_function
    from qa.ingest import load_file
    from qa.settings import Settings

    settings = Settings()
    embedder = Embedder.of(settings)
    documents = [d for path in bbc_files(articles) for d in load_file(path, BBC_DIR)]
    chunker = Chunker(
        settings.chunk_size, settings.chunk_overlap, token_length_function(embedder.tokenizer)
    )
    return [c.text for c in chunker.split_all(documents)]


def padded(lengths: np.ndarray, order: np.ndarray, batch: int) -> int:
    """Word pieces fed to the model when ``order``'s batches are padded to their longest."""
    return sum(
        int(lengths[order[i : i + batch]].max()) * len(order[i : i + batch])
        for i in range(0, len(order), batch)
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    quiet_environment()
    from qa.embedding import Embedder
    from qa.settings import Settings

    texts = chunk_texts(args.articles)
    embedder = Embedder.of(Settings())
    model = embedder.model
    batch = embedder.batch_size
    lengths = embedder.piece_counts(texts)
    by_chars = np.argsort([-len(t) for t in texts], kind="stable")
    by_pieces = embedder._most_pieces_first(texts)  # noqa: SLF001 - the order measured

    def sentence_transformers() -> np.ndarray:
        return model.encode(
            texts, batch_size=batch, normalize_embeddings=True, convert_to_numpy=True
        )

    loops = {
        "sentence-transformers encode": sentence_transformers,
        "build loop": lambda: embedder.encode(texts),
    }
    vectors = {name: loop() for name, loop in loops.items()}  # first passes over the shapes
    before = load()
    seconds: dict[str, list[float]] = {name: [] for name in loops}
    for _ in range(args.runs):
        for name, loop in loops.items():
            start = time.perf_counter()
            loop()
            seconds[name].append(time.perf_counter() - start)
    real = int(lengths.sum())
    medians = {name: statistics.median(s) for name, s in seconds.items()}
    out: dict[str, Any] = {
        "machine": machine(),
        "load_before": before,
        "load_after": load(),
        "articles": args.articles,
        "chunks": len(texts),
        "batch_size": batch,
        "word_pieces": real,
        "padded_by_characters": round(padded(lengths, by_chars, batch) / real - 1, 4),
        "padded_by_word_pieces": round(padded(lengths, by_pieces, batch) / real - 1, 4),
        "seconds": {name: [round(x, 3) for x in s] for name, s in seconds.items()},
        "median_s": {name: round(m, 3) for name, m in medians.items()},
        "build_loop_over_sentence_transformers": round(
            medians["build loop"] / medians["sentence-transformers encode"], 4
        ),
        "largest_vector_difference": float(
            np.abs(vectors["build loop"] - vectors["sentence-transformers encode"]).max()
        ),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
