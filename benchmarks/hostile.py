"""Hostile corpus: build an index from 1,000 files made to break ingestion, and report.

The corpus (``benchmarks.hostile_corpus``, seeded) is written to a scratch folder beside a copy
of the seed articles, and the index is built the way ``qa index --rebuild`` builds it
(``QA.build``, the packaged embedding model). Printed: files indexed, files skipped with the
count of each reason (and every file with its reason under ``--verbose``), wall time of the
build, peak memory of the process, and the slowest files to load (wall time) and to chunk (CPU
time); then whether a seed question still finds its passage.

Run it (about 1,000 files; minutes on 2 cores, most of them embedding the chunks)::

    .venv/bin/python -m benchmarks.hostile
    .venv/bin/python -m benchmarks.hostile --files 100 --json   # a quick look

Timings on a shared machine are printed with the load average, as every benchmark here.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import SEED_CORPUS, load, quiet_environment
from benchmarks.hostile_corpus import write_corpus

#: The seed question asked after the build, the article that answers it and the answer.
SEED_QUESTION = "What are the US and North Korea seriously considering exchanging?"
SEED_DOC = "seed/000_4b3a89178ec270f5.txt"
SEED_ANSWER = "liaison officers"


def chunk_seconds(documents: list, chunker) -> dict[str, float]:  # noqa: ANN001 - a Chunker
    """CPU seconds the chunker takes over each file's documents, by the file's relative path.

    CPU time, not wall time: on a shared machine another process's load would otherwise be
    charged to the file.
    """
    seconds: dict[str, float] = {}
    for doc in documents:
        started = time.process_time()
        chunker.split(doc)
        seconds[doc.path] = seconds.get(doc.path, 0.0) + time.process_time() - started
    return seconds


def measure(
    corpus: Path,
    index_dir: Path,
    embedder=None,  # noqa: ANN001 - an Embedder
    length: Callable[[str], int] | None = None,
) -> dict[str, Any]:
    """Ingest and chunk ``corpus`` file by file (timed), then build its index with ``QA.build``.

    Args:
        corpus: The corpus folder.
        index_dir: Where the index goes.
        embedder: An ``Embedder`` already loaded (tests pass theirs); the packaged model if
            ``None``.
        length: What the timed chunking measures chunks with; the embedder's token count if
            ``None`` (a test building with a stand-in embedder passes the real tokenizer's).

    Returns:
        ``documents``, ``chunks``, ``skipped`` (reason by file), ``load_seconds`` and
        ``chunk_seconds`` (by file), ``build_seconds``, ``qa`` (the ``QA`` that built it).
    """
    from qa.indexing.chunking import Chunker, token_length_function
    from qa.ingest import scan_corpus
    from qa.pipeline import QA
    from qa.settings import Settings

    settings = Settings(corpus_dir=corpus, index_dir=index_dir, reader_model="none")
    qa = QA(settings, embedder=embedder)  # None: its own, from the settings
    skipped: dict[str, str] = {}
    load_seconds: dict[str, float] = {}
    documents, _ = scan_corpus(corpus, skipped=skipped, seconds=load_seconds)
    length = length or token_length_function(qa.embedder.tokenizer)
    chunker = Chunker(settings.chunk_size, settings.chunk_overlap, length)
    started = time.perf_counter()
    report = qa.build(rebuild=True, show_progress=False)
    return {
        "documents": report.documents,
        "chunks": report.chunks,
        "skipped": skipped,
        "load_seconds": load_seconds,
        "chunk_seconds": chunk_seconds(documents, chunker),
        "build_seconds": time.perf_counter() - started,
        "qa": qa,
    }


def seed_question_answered(qa) -> bool:  # noqa: ANN001 - a QA
    """Whether the seed question's passage is among the top five retrieved."""
    return any(
        p.chunk.doc_id == SEED_DOC and SEED_ANSWER in p.chunk.text
        for p in qa.search(SEED_QUESTION, k=5)
    )


def _slowest(seconds: dict[str, float], n: int) -> list[dict[str, Any]]:
    ranked = sorted(seconds.items(), key=lambda item: -item[1])[:n]
    return [{"file": ascii(path)[1:-1], "seconds": round(s, 3)} for path, s in ranked]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1_000, help="hostile files to write")
    parser.add_argument("--seed", type=int, default=0, help="seed of the corpus generator")
    parser.add_argument("--work", type=Path, help="scratch folder (default: a temporary one)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--verbose", action="store_true", help="list every skipped file")
    args = parser.parse_args()
    quiet_environment()
    # The skipped files come back with their reasons; hundreds of warning lines add nothing.
    logging.getLogger("qa.ingest").setLevel(logging.ERROR)

    work = args.work or Path(tempfile.mkdtemp(prefix="qa-hostile-"))
    corpus = work / "corpus"
    shutil.rmtree(corpus, ignore_errors=True)
    kinds = Counter(write_corpus(corpus, args.files, args.seed).values())
    shutil.copytree(SEED_CORPUS, corpus / "seed")
    try:
        figures = measure(corpus, work / "index")
        answered = seed_question_answered(figures["qa"])
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    skipped: dict[str, str] = figures["skipped"]
    result = {
        "hostile_files": args.files,
        "kinds": len(kinds),
        "files_read": len(figures["load_seconds"]),
        "files_indexed": len(figures["load_seconds"]) - len(skipped),
        "documents": figures["documents"],
        "chunks": figures["chunks"],
        "files_skipped": len(skipped),
        "skip_reasons": dict(Counter(_reason_kind(r) for r in skipped.values()).most_common()),
        "build_seconds": round(figures["build_seconds"], 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "slowest_load": _slowest(figures["load_seconds"], 3),
        "slowest_chunking_cpu": _slowest(figures["chunk_seconds"], 3),
        "seed_question_answered": answered,
        "load": load(),
    }
    if args.verbose:
        result["skipped"] = {ascii(p)[1:-1]: r for p, r in sorted(skipped.items())}
    if args.json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        if isinstance(value, dict | list) and value:
            print(f"{key}:")
            for item in value.items() if isinstance(value, dict) else enumerate(value, 1):
                print(f"  {item[0]}: {item[1]}")
        else:
            print(f"{key}: {value}")


def _reason_kind(reason: str) -> str:
    """A skip reason without its particulars ("broken PDF (PdfStreamError: ...)" -> "broken
    PDF"), so reasons can be counted."""
    return reason.split(" (")[0]


if __name__ == "__main__":
    main()
