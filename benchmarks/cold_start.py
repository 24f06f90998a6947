"""Cold start: from process start to the first answer, and where that time goes.

Three views: the wall time of ``qa search`` / ``qa ask`` subprocesses (what a user waits for),
a worker process timing each step in order (interpreter start, importing the pipeline, the
first search, which loads the index and the question encoder, the first ask, which loads the
reader, and a second ask; and whether torch was imported at all), and ``python -X importtime``
for the slowest imports.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import REPO, load


def cli_commands() -> list[str]:
    """The subcommands the ``qa`` CLI has (``ask`` arrives with the reader)."""
    from qa.cli import app

    return [c.name or c.callback.__name__ for c in app.registered_commands if c.callback]


def cli_wall(command: str, question: str, corpus: Path, index: Path, runs: int) -> dict[str, Any]:
    """Median wall seconds of ``qa COMMAND QUESTION --json`` in a fresh process."""
    exe = Path(sys.executable).with_name("qa")
    cmd = [str(exe), command, question, "--corpus", str(corpus), "--index", str(index), "--json"]
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        proc = subprocess.run(
            cmd, cwd=REPO, capture_output=True, text=True, check=False, encoding="utf-8"
        )
        seconds.append(time.perf_counter() - started)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    return {"median_s": round(statistics.median(seconds), 3), "runs": seconds, "load": load()}


def worker(corpus: Path, index: Path, question: str, started: float) -> dict[str, Any]:
    """Time each step of a cold start in this fresh process (``started``: its launch time)."""
    steps: dict[str, float] = {"interpreter_start": time.time() - started}

    def lap(name: str, t0: float) -> float:
        now = time.perf_counter()
        steps[name] = now - t0
        return now

    t = time.perf_counter()
    from benchmarks.common import quiet_environment

    quiet_environment()
    from qa.pipeline import QA
    from qa.settings import Settings

    t = lap("import_qa", t)
    qa = QA(Settings.from_env(corpus_dir=corpus, index_dir=index))
    # The first question loads what it needs (the index, and beside it the question encoder;
    # for ``ask`` the reader too), as a cold ``qa search`` / ``qa ask`` does.
    qa.search(question)
    t = lap("first_search", t)
    qa.ask(question)
    t = lap("first_ask", t)
    qa.ask(question)
    lap("second_ask", t)
    steps["torch_imported"] = float("torch" in sys.modules)
    steps["total"] = time.time() - started
    return {k: round(v, 3) for k, v in steps.items()}


def breakdown(corpus: Path, index: Path, question: str) -> dict[str, Any]:
    """Run ``worker`` in a fresh interpreter and return its steps."""
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.cold_start",
        "--corpus",
        str(corpus),
        "--index",
        str(index),
        "--question",
        question,
        "--started",
        repr(time.time()),
    ]
    proc = subprocess.run(
        cmd, cwd=REPO, capture_output=True, text=True, check=False, encoding="utf-8"
    )
    if proc.returncode != 0:
        raise RuntimeError(f"cold-start worker failed:\n{proc.stderr[-2000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["load"] = load()
    return out


def import_times(module: str = "qa.pipeline", top: int = 12) -> dict[str, Any]:
    """Where ``import module`` spends its time (``python -X importtime``), by top-level package.

    Returns:
        ``total_s`` (the module's cumulative import time) and ``by_package``: the ``top``
        packages by the sum of their modules' own import time, slowest first.
    """
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        encoding="utf-8",
    )
    by_package: dict[str, float] = {}
    total = 0.0
    for line in proc.stderr.splitlines():
        fields = line.removeprefix("import time:").split("|")
        if (
            not line.startswith("import time:")
            or len(fields) != 3
            or not fields[0].strip().isdigit()
        ):
            continue
        name = fields[2].strip()
        package = name.split(".")[0]
        by_package[package] = by_package.get(package, 0.0) + int(fields[0]) / 1e6
        if name == module:
            total = int(fields[1]) / 1e6
    ranked = sorted(by_package.items(), key=lambda kv: -kv[1])[:top]
    return {"total_s": round(total, 3), "by_package": {k: round(v, 3) for k, v in ranked}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--question", required=True)
    parser.add_argument("--started", type=float, required=True)
    args = parser.parse_args()
    print(json.dumps(worker(args.corpus, args.index, args.question, args.started)))


if __name__ == "__main__":
    main()
