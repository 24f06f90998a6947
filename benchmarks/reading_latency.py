"""``ask`` latency on BBC, side by side: this tree's reading against another checkout's.

One BBC index is built with this tree (the index format is the same for both), then each
system answers the same 30 BBC questions (``benchmarks.common.bbc_questions``) in a fresh worker
process per round, rounds interleaved (this tree, the other, this tree, ...) so load hits them
alike; each figure is the median over rounds of that round's p50 and p95::

    git worktree add /tmp/qa-before HEAD~5          # the checkout to compare with
    python benchmarks/reading_latency.py --other /tmp/qa-before --read-passages 3,5 \\
        --stop-reading-at 1,0.5

Workers time ``QA.ask`` warm (three untimed questions first) with the query memo cleared before
each question, as ``benchmarks/latency.py`` does.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def worker(index: Path, corpus: Path, questions: list[str], read_passages: int | None) -> None:
    """Time ``ask`` on ``questions`` in this process; print one JSON line of figures."""
    import numpy as np

    import qa as package
    from benchmarks.latency import _forget_queries as forget_queries
    from qa.pipeline import QA
    from qa.settings import Settings

    overrides = {"read_passages": read_passages} if read_passages else {}
    qa = QA(Settings.from_env(index_dir=index, corpus_dir=corpus, **overrides))
    for q in questions[:3]:
        qa.ask(q)
    times = []
    answered = 0
    for q in questions:
        forget_queries(qa)
        began = time.perf_counter()
        result = qa.ask(q)
        times.append(1000 * (time.perf_counter() - began))
        answered += not result.abstained
    print(
        json.dumps(
            {
                "p50_ms": float(np.percentile(times, 50)),
                "p95_ms": float(np.percentile(times, 95)),
                "answered": answered,
                "package": str(Path(package.__file__).parent.parent),
            }
        ),
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--other", type=Path, help="another checkout of qa to compare with")
    parser.add_argument("--read-passages", default="5", help="values for this tree, e.g. 3,5")
    parser.add_argument(
        "--stop-reading-at",
        default="1",
        help="values for this tree, with each --read-passages",
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--work", type=Path, help="scratch folder (default: temporary)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--index", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--passages", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--questions", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # Appended, not prepended: in a worker the checkout under test must provide ``qa``.
    sys.path.append(str(REPO))
    from benchmarks.common import BBC_DIR, bbc_questions, copy_corpus

    if args.worker:
        # The questions come from the parent: the other checkout's benchmarks/ may differ.
        questions = json.loads(args.questions.read_text(encoding="utf-8"))
        worker(args.index, args.corpus, questions, args.passages or None)
        return
    files = sorted(BBC_DIR.glob("*/*.txt"))
    questions = [q["question"] for q in bbc_questions(files)]

    work = (args.work or Path(tempfile.mkdtemp(prefix="qa-reading-latency-"))).resolve()
    corpus, index = work / "corpus", work / "index"
    asked = work / "questions.json"
    asked.parent.mkdir(parents=True, exist_ok=True)
    asked.write_text(json.dumps(questions), encoding="utf-8")
    if not (index / "current").exists():
        from qa.pipeline import QA
        from qa.settings import Settings

        copy_corpus(files, BBC_DIR, corpus)
        began = time.perf_counter()
        QA(Settings.from_env(index_dir=index, corpus_dir=corpus)).build(show_progress=False)
        print(f"built the BBC index in {time.perf_counter() - began:.0f}s", flush=True)

    systems: dict[str, tuple[Path, int, str | None]] = {
        f"this tree, read_passages={n}, stop_reading_at={s}": (REPO, int(n), s)
        for n in args.read_passages.split(",")
        for s in args.stop_reading_at.split(",")
    }
    if args.other is not None:
        systems[f"other ({args.other.name})"] = (args.other.resolve(), 0, None)
    rounds: dict[str, list[dict[str, float]]] = {name: [] for name in systems}
    for r in range(args.rounds):
        for name, (tree, passages, stop) in systems.items():
            env = {**os.environ, "PYTHONPATH": f"{tree}{os.pathsep}{REPO}"}
            env.pop("QA_STOP_READING_AT", None)
            if stop is not None:
                env["QA_STOP_READING_AT"] = stop
            out = (
                subprocess.run(
                    [sys.executable, str(Path(__file__).resolve()), "--worker"]
                    + ["--index", str(index), "--corpus", str(corpus), "--passages", str(passages)]
                    + ["--questions", str(asked)],
                    env=env,
                    cwd=tree,
                    capture_output=True,
                    text=True,
                    check=True,
                    encoding="utf-8",
                )
                .stdout.strip()
                .splitlines()[-1]
            )
            figures = json.loads(out)
            rounds[name].append(figures)
            print(f"round {r + 1} {name}: {figures}  (load {os.getloadavg()[0]:.2f})", flush=True)
    summary = {
        name: {
            **{
                key: round(statistics.median(f[key] for f in runs), 1)
                for key in ("p50_ms", "p95_ms", "answered")
            },
            "package": runs[0]["package"],
        }
        for name, runs in rounds.items()
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
