"""onnxruntime's CPU memory arena on or off: resident memory and answer latency, side by side.

Each variant runs in a fresh process over the same seed index (built once into a temporary
folder): load the models, answer the seed questions once to warm up, then answer them
``--rounds`` times from ``--threads`` threads (as the web page does), recording resident memory
(``VmRSS``) after the warm-up and after each round, and each question's time. Rounds of the two
variants alternate, so a change in the machine's load falls on both.

    python benchmarks/onnx_arena.py [--rounds 4] [--threads 4]

The arena keeps freed tensor memory for reuse by later runs: faster allocation, but it grows to
the largest batch seen and never shrinks. Off, each run allocates from the system allocator.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import SEED_CORPUS, load, quiet_environment, seed_questions  # noqa: E402


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def force_arena(enabled: bool) -> None:
    """Every onnxruntime session made from now on has the CPU arena ``enabled`` or not."""
    import onnxruntime as ort

    original = ort.SessionOptions

    class Options(original):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            super().__init__()
            self.enable_cpu_mem_arena = enabled

    ort.SessionOptions = Options


def child(index_dir: Path, arena: bool, rounds: int, threads: int) -> dict[str, object]:
    quiet_environment()
    force_arena(arena)
    from qa import QA, Settings

    qa = QA(Settings(corpus_dir=SEED_CORPUS, index_dir=index_dir))
    questions = seed_questions(n=85)
    for question in questions:
        qa.ask(question)
    memory = {"after warm-up": rss_mib()}
    seconds: list[float] = []

    def timed(question: str) -> float:
        started = time.perf_counter()
        qa.ask(question)
        return time.perf_counter() - started

    peak = memory["after warm-up"]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for _ in range(rounds):
            seconds += list(pool.map(timed, questions))
            peak = max(peak, rss_mib())
    memory["peak"] = peak
    memory["end"] = rss_mib()
    return {
        "arena": arena,
        "rss_mib": {k: round(v, 1) for k, v in memory.items()},
        "p50_ms": round(1000 * statistics.median(seconds), 1),
        "p95_ms": round(1000 * statistics.quantiles(seconds, n=20)[18], 1),
        "questions": len(seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2, help="Processes per variant.")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        index_dir, arena = args.child.split(",")
        result = child(Path(index_dir), arena == "on", args.rounds, args.threads)
        print(json.dumps(result))
        return
    quiet_environment()
    from qa import QA, Settings

    with tempfile.TemporaryDirectory() as tmp:
        index_dir = Path(tmp) / "index"
        QA(Settings(corpus_dir=SEED_CORPUS, index_dir=index_dir)).build(show_progress=False)
        results: dict[str, list[dict[str, object]]] = {"on": [], "off": []}
        for _ in range(args.repeats):
            for variant in ("on", "off"):
                out = subprocess.run(
                    [sys.executable, __file__, "--child", f"{index_dir},{variant}"]
                    + ["--rounds", str(args.rounds), "--threads", str(args.threads)],
                    capture_output=True,
                    text=True,
                    check=True,
                    encoding="utf-8",
                )
                results[variant].append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"load average: {load()}")
    for variant, runs in results.items():
        for run in runs:
            print(f"arena {variant}: {json.dumps(run)}")
    for key in ("after warm-up", "peak", "end"):
        on = statistics.median(r["rss_mib"][key] for r in results["on"])  # type: ignore[index]
        off = statistics.median(r["rss_mib"][key] for r in results["off"])  # type: ignore[index]
        print(f"RSS {key}: on {on:.1f} MiB, off {off:.1f} MiB, off/on {off / on:.3f}")
    on_p50 = statistics.median(r["p50_ms"] for r in results["on"])  # type: ignore[misc]
    off_p50 = statistics.median(r["p50_ms"] for r in results["off"])  # type: ignore[misc]
    ratio = off_p50 / on_p50
    print(f"p50 per question: on {on_p50:.1f} ms, off {off_p50:.1f} ms, off/on {ratio:.3f}")


if __name__ == "__main__":
    main()
