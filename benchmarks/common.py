"""What every benchmark shares: paths, the machine and its load, percentiles, question lists.

Timings on a shared 2-core machine are noisy, so every figure is printed with the load average
at the time it was taken, and latency figures are medians over several runs.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import statistics
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
BBC_DIR = SHARED / "data" / "bbc-news"
BBC_CATEGORIES = ("business", "entertainment", "politics", "sport", "tech")
XQUAD_FILE = SHARED / "data" / "xquad-dev" / "xquad.en.dev.json"
SEED_CORPUS = REPO / "corpus"
SEED_SET = REPO / "eval" / "seed.jsonl"

#: Questions per corpus for latency runs (the brief: "a fixed list of ~30").
N_QUESTIONS = 30


def quiet_environment() -> None:
    """No hub, no telemetry, no tokenizer threads fighting the model's threads."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")
    from qa.logs import quiet_libraries

    quiet_libraries()


def load() -> list[float]:
    """The 1, 5 and 15 minute load averages, rounded: printed with every figure."""
    return [round(x, 2) for x in os.getloadavg()]


def machine() -> dict[str, Any]:
    """CPU model, cores, memory, Python and library versions, load: what RESULTS.md records."""
    cpu = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with open("/proc/meminfo", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    import faiss
    import torch

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 2**20, 1),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "faiss": faiss.__version__,
        "load": load(),
    }


def summarize(seconds: Sequence[float]) -> dict[str, float]:
    """p50, p95 and mean of durations, in milliseconds."""
    ms = np.asarray(seconds, dtype=float) * 1000.0
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p95_ms": round(float(np.percentile(ms, 95)), 3),
        "mean_ms": round(float(ms.mean()), 3),
        "n": int(ms.size),
    }


def median_of_runs(runs: Sequence[dict[str, float]]) -> dict[str, float]:
    """The median, over runs, of each statistic of ``summarize`` (robust to one noisy run)."""
    out: dict[str, float] = {}
    for key in ("p50_ms", "p95_ms", "mean_ms"):
        out[key] = round(statistics.median(r[key] for r in runs), 3)
    out["n"] = sum(int(r["n"]) for r in runs)
    out["runs"] = len(runs)
    return out


@contextmanager
def stopwatch() -> Iterator[dict[str, float]]:
    """Measure a block: ``with stopwatch() as t: ...`` then ``t["s"]`` holds the seconds."""
    box: dict[str, float] = {}
    started = time.perf_counter()
    try:
        yield box
    finally:
        box["s"] = time.perf_counter() - started


def dir_size(path: Path) -> int:
    """Bytes of all files under ``path`` (following no links)."""
    return sum(
        p.stat().st_size for p in Path(path).rglob("*") if p.is_file() and not p.is_symlink()
    )


def dir_parts(path: Path) -> dict[str, int]:
    """Bytes of each entry directly under ``path`` (a folder counted whole)."""
    return {p.name: dir_size(p) if p.is_dir() else p.stat().st_size for p in sorted(path.iterdir())}


def bbc_files(limit: int | None = None) -> list[Path]:
    """The BBC articles, in a fixed order; with ``limit``, an even spread over the categories.

    Only the five category folders: the data set's README files are not articles.
    """
    files = sorted(p for c in BBC_CATEGORIES for p in (BBC_DIR / c).glob("*.txt"))
    if limit is not None and limit < len(files):
        step = len(files) / limit
        files = [files[int(i * step)] for i in range(limit)]
    return files


def copy_corpus(files: Sequence[Path], root: Path, dest: Path) -> Path:
    """Copy ``files`` (paths under ``root``) into ``dest`` keeping their relative paths.

    The benchmarks add and remove articles, so they work on a copy outside the repository.
    """
    if dest.exists():
        shutil.rmtree(dest)
    for src in files:
        target = dest / src.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
    return dest


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'])")


def first_sentence(text: str) -> str:
    """The first sentence of the first paragraph of ``text``."""
    paragraph = text.strip().split("\n\n", 1)[0]
    return _SENTENCE_END.split(paragraph, 1)[0].strip()


def bbc_questions(files: Sequence[Path], n: int = N_QUESTIONS) -> list[dict[str, str]]:
    """``n`` questions written mechanically from evenly spaced BBC articles, no tuning.

    Even-numbered ones ask about the headline (a short question, like a user's), odd ones
    turn the article's first sentence into a yes/no question (a long one). Each records the
    article it came from, so retrieval can be checked as well as timed.

    Args:
        files: The articles of the corpus, in a fixed order.
        n: How many questions.
    """
    step = max(1, len(files) // n)
    questions = []
    for i, path in enumerate(files[::step][:n]):
        lines = path.read_text(encoding="utf-8", errors="replace").strip().split("\n", 1)
        headline, body = lines[0].strip(), lines[1] if len(lines) > 1 else ""
        if i % 2 == 0:
            question = f"What does the report say about {headline.rstrip('.')}?"
        else:
            words = first_sentence(body).rstrip(".!?").split()
            question = "Is it true that " + " ".join(words[:25]) + "?"
        # The corpus copy keeps the category folders, so this is the article's doc_id.
        questions.append({"question": question, "doc_id": f"{path.parent.name}/{path.name}"})
    return questions


def seed_questions(n: int = N_QUESTIONS) -> list[str]:
    """The first ``n`` answerable questions of the seed evaluation set (``eval/seed.jsonl``)."""
    out = []
    for line in SEED_SET.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            if record.get("answerable"):
                out.append(str(record["question"]))
    return out[:n]


def print_figure(section: str, name: str, value: Any) -> None:
    """One result line, always with the load average at the moment it is printed."""
    if isinstance(value, float):
        value = round(value, 4)
    print(f"[{section}] {name}: {value}  (load {load()})", flush=True)
