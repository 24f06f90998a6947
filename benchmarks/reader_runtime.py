"""The packaged reader under each runtime, side by side: time per ask, cold start, agreement.

An ask reads a few passages; this reads each question of a SQuAD-format file against its own
paragraph cut into ``--passages`` pieces at sentence ends (as retrieval hands them over), one
question at a time, rounds interleaved over the runtimes so they share the machine's state::

    python benchmarks/reader_runtime.py ../shared/data/qa-val/tydiqa-en-dev.json \\
        --questions 200 --rounds 3

Printed per runtime: median and p95 ms per ask (medians over rounds), the cold start (a fresh
process importing the reader and reading one question, median of ``--cold`` runs) and whether
torch was imported there, and how often its best span equals the torch fp32 reader's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

RUNTIMES = ("torch-fp32", "torch-auto", "onnx-fp32", "onnx-int8")

COLD = """
import sys, time
t = time.perf_counter()
from qa.reading.answers import make_reader
from qa.settings import Settings
runtime, precision = sys.argv[1].split("-")
settings = Settings(reader_runtime="torch" if runtime == "torch" else sys.argv[1],
                    reader_precision=precision if runtime == "torch" else "auto")
reader = make_reader(settings)
reader.read("Who wrote it?", ["It was written by Ada Lovelace in 1843."])
print(time.perf_counter() - t, "torch" in sys.modules)
"""


def _reader(name: str):  # noqa: ANN202 - a SpanReader
    from qa.reading.answers import make_reader
    from qa.settings import Settings

    runtime, precision = name.split("-")
    if runtime == "torch":
        return make_reader(Settings(reader_runtime="torch", reader_precision=precision))
    return make_reader(Settings(reader_runtime=name))


def _pieces(context: str, n: int) -> list[str]:
    """``context`` cut into about ``n`` pieces at sentence ends."""
    from qa.text import split_sentences

    sentences = split_sentences(context)
    if len(sentences) < n:
        return [context]
    bounds = np.array_split(np.arange(len(sentences)), n)
    return [
        context[sentences[int(b[0])].start : sentences[int(b[-1])].end] for b in bounds if len(b)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path, help="SQuAD-format file")
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--passages", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cold", type=int, default=3, help="cold-start runs per runtime")
    parser.add_argument("--runtimes", default=",".join(RUNTIMES))
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    names = args.runtimes.split(",")
    data = json.loads(args.file.read_text(encoding="utf-8"))["data"]
    items = [
        (qa["question"], _pieces(p["context"], args.passages))
        for a in data
        for p in a["paragraphs"]
        for qa in p["qas"]
    ][: args.questions]
    readers = {name: _reader(name) for name in names}
    for reader in readers.values():
        reader.warm_up()
        reader.read(*items[0])
    times: dict[str, list[list[float]]] = {name: [] for name in names}
    best: dict[str, list[str]] = {name: [] for name in names}
    for r in range(args.rounds):
        for name, reader in readers.items():
            laps = []
            for question, passages in items:
                t = time.perf_counter()
                spans = reader.read(question, passages, top_n=20)
                laps.append(1000 * (time.perf_counter() - t))
                if r == 0:
                    best[name].append(spans[0].text if spans else "")
            times[name].append(laps)
    cold: dict[str, list[tuple[float, bool]]] = {name: [] for name in names}
    for _ in range(args.cold):
        for name in names:
            out = subprocess.run(
                [sys.executable, "-c", COLD, name],
                capture_output=True,
                text=True,
                check=True,
                encoding="utf-8",
            ).stdout.split()
            cold[name].append((float(out[0]), out[1] == "True"))
    reference = best.get("torch-fp32")
    print(f"{len(items)} questions, {args.passages} passages each, {args.rounds} rounds")
    print("| runtime | p50 ms | p95 ms | cold s | torch imported | same best span as torch-fp32 |")
    print("|---|---|---|---|---|---|")
    for name in names:
        p50 = statistics.median(float(np.percentile(laps, 50)) for laps in times[name])
        p95 = statistics.median(float(np.percentile(laps, 95)) for laps in times[name])
        cold_s = statistics.median(c for c, _ in cold[name]) if cold[name] else float("nan")
        torch_in = any(t for _, t in cold[name])
        same = (
            f"{np.mean([a == b for a, b in zip(best[name], reference, strict=True)]):.3f}"
            if reference
            else "-"
        )
        print(f"| {name} | {p50:.1f} | {p95:.1f} | {cold_s:.2f} | {torch_in} | {same} |")


if __name__ == "__main__":
    main()
