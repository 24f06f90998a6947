"""Many users at once, over HTTP: the real web app under concurrent ``gradio_client`` callers.

Starts ``qa serve`` (the shipped reader unless ``--reader`` says otherwise) on a free local port
over a copy of the seed corpus, then asks ``--questions`` questions from ``--clients``
concurrent clients, each a ``gradio_client.Client`` making the default call the README shows.
The questions mix normal seed questions, long ones (within the limit and over it), empty ones
and questions full of hostile markup. While they run, ``--updates`` index updates change one
article (a paragraph put in front moves every offset in it) and press the page's Update index,
so part of the questions are answered while an index is built and swapped.

Checked and reported:

* unexpected errors: any failure other than the refusal a question was written to get (an
  empty or over-long question); must be 0;
* offsets: every answer's ``text`` and ``context`` are exactly the slice at their offsets of
  the document they name, in one of the versions the corpus held during the run (the cleaned
  text, as ingestion makes it), and so is every passage; mismatches must be 0;
* p50 / p95 latency per kind of question and overall, and the questions asked during updates;
* the server's resident memory (``VmRSS``) before and after; with ``--soak-minutes N`` the
  load runs for N minutes instead (an update every ``--soak-update-s`` seconds) and memory is
  sampled every ``--sample-s`` seconds, reporting the growth from the first sample taken after
  warm-up to the last, and over the second half of the run.

Exit status 1 when there were unexpected errors or offset mismatches. Figures go to
``--out/load.json`` (or ``soak.json``).

    .venv/bin/python benchmarks/load.py --questions 200 --clients 20 --updates 3
    .venv/bin/python benchmarks/load.py --soak-minutes 10 --clients 20
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (  # noqa: E402 - after the path fix for direct runs
    REPO,
    SEED_CORPUS,
    load,
    machine,
    print_figure,
    quiet_environment,
    seed_questions,
    summarize,
)

#: The article each index update changes (the one the liaison questions are answered from).
CHANGED_ARTICLE = "000_4b3a89178ec270f5.txt"
#: How long the server may take to build its first index and load the models.
START_TIMEOUT_S = 600
HOSTILE = [
    "<script>alert(1)</script> How many liaison officers would each side have had?",
    'Where did Trump meet Kim? <img src=x onerror="alert(1)">',
    "**Who** argues that [liaison offices](javascript:alert(1)) would be useful?",
    "{{7*7}} ${7*7} When was the Agreed Framework signed?",
    "$$x^2$$ What did North Korea cancel? &lt;b&gt; &#x27; \u202e\u200b",
]
#: The refusal each kind of question is written to get (``None``: it must be answered).
EXPECTED_REFUSAL = {
    "normal": None,
    "long": None,
    "hostile": None,
    "too long": "the question is",
    "empty": "the question is empty",
}


@dataclass
class Outcome:
    """One question asked: how long it took, what came back, what was wrong with it."""

    kind: str
    question: str
    seconds: float
    during_update: bool
    payload: dict[str, Any] | None = None
    error: str | None = None
    problems: list[str] = field(default_factory=list)


def question_mix(n: int) -> list[tuple[str, str]]:
    """``n`` ``(kind, question)`` pairs: 60 % normal, then long, hostile, too long and empty."""
    normal = seed_questions(1_000)
    long_question = (
        "I read a long report about the talks between the two countries and the plan for "
        "liaison offices, and I would like to know, as precisely as the articles allow, "
    )
    long_question = (long_question * 8)[:900] + " how many officers would each side send?"
    pattern = ["normal"] * 6 + ["long", "hostile", "too long", "empty"]
    out = []
    for i, kind in zip(range(n), itertools.cycle(pattern), strict=False):
        question = {
            "normal": normal[i % len(normal)],
            "long": long_question,
            "hostile": HOSTILE[i % len(HOSTILE)],
            "too long": "Why? " * 300,
            "empty": ["", "   ", "\n\t"][i % 3],
        }[kind]
        out.append((kind, question))
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mib(pid: int) -> float:
    """Resident memory of process ``pid`` in MiB (``VmRSS``)."""
    return memory_mib(pid).get("VmRSS", 0.0)


def memory_mib(pid: int) -> dict[str, float]:
    """Resident memory of process ``pid`` in MiB: ``VmRSS`` and its parts, ``RssAnon`` (the
    process's own heap and arenas: what a leak grows) and ``RssFile`` (pages of mapped files,
    such as the index's memory-mapped tables: the kernel may drop them)."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text(encoding="utf-8").splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "RssAnon", "RssFile"):
            out[name] = round(int(value.split()[0]) / 1024, 1)
    return out


class Server:
    """``qa serve`` in a subprocess over ``work/corpus``, logging to ``work/server.log``."""

    def __init__(self, work: Path, reader: str) -> None:
        self.work = work
        self.corpus = work / "corpus"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        env = {
            **os.environ,
            "QA_READER_MODEL": reader,
            "GRADIO_ANALYTICS_ENABLED": "False",
            "HF_HUB_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
        }
        command = [str(Path(sys.executable).parent / "qa"), "serve", "--port", str(self.port)]
        command += ["--corpus", str(self.corpus), "--index", str(work / "index")]
        self.log = work / "server.log"
        with self.log.open("w", encoding="utf-8") as out:
            self.process = subprocess.Popen(command, cwd=work, env=env, stdout=out, stderr=out)

    def wait_ready(self) -> None:
        import httpx

        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited:\n{self.log.read_text(encoding='utf-8')}")
            try:
                if httpx.get(self.url, timeout=10).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(1)
        raise RuntimeError(f"no page at {self.url} after {START_TIMEOUT_S} s")

    def rss_mib(self) -> float:
        return rss_mib(self.process.pid)

    def memory_mib(self) -> dict[str, float]:
        return memory_mib(self.process.pid)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def connect(url: str):  # noqa: ANN201 - a gradio_client.Client
    """A client making the README's default call (a long timeout: the queue may be deep)."""
    from gradio_client import Client

    return Client(url, verbose=False, httpx_kwargs={"timeout": 600})


class Documents:
    """Every version of every corpus document seen during the run, as ingestion cleans it."""

    def __init__(self, corpus: Path) -> None:
        self.corpus = corpus
        self.versions: dict[str, list[str]] = defaultdict(list)
        self._lock = threading.Lock()
        self.record()

    def record(self) -> None:
        """Add the documents of the corpus as it is now."""
        from qa.ingest import load_file

        for path in sorted(self.corpus.rglob("*")):
            if path.is_file():
                for doc in load_file(path, self.corpus):
                    with self._lock:
                        if doc.text not in self.versions[doc.doc_id]:
                            self.versions[doc.doc_id].append(doc.text)

    def problems(self, payload: dict[str, Any]) -> list[str]:
        """What in an API reply is not exact against one version of the document it names."""
        found = []
        for a in payload["answers"]:
            if not any(
                t[a["start"] : a["end"]] == a["text"]
                and t[a["context_start"] : a["context_start"] + len(a["context"])] == a["context"]
                for t in self.versions.get(a["doc_id"], [])
            ):
                found.append(f"answer {a['text']!r} at {a['start']} of {a['doc_id']}")
        for p in payload["passages"]:
            if not any(
                t[p["start"] : p["end"]] == p["text"] for t in self.versions.get(p["doc_id"], [])
            ):
                found.append(f"passage at {p['start']} of {p['doc_id']}")
        return found


class Updater:
    """Changes ``CHANGED_ARTICLE`` and has the server update its index, on request."""

    def __init__(self, url: str, documents: Documents) -> None:
        self.url = url
        self.documents = documents
        self.running = threading.Event()
        self.done: list[dict[str, Any]] = []
        self._client = connect(url)

    def update(self) -> None:
        article = self.documents.corpus / CHANGED_ARTICLE
        text = article.read_text(encoding="utf-8")
        title, _, body = text.partition("\n\n")
        n = len(self.done) + 1
        article.write_text(
            f"{title}\n\nUpdate {n}: officials met again today.\n\n{body}", encoding="utf-8"
        )
        self.documents.record()
        self.running.set()
        started = time.perf_counter()
        try:
            status = self._client.predict(api_name="/run_update")
        finally:
            self.running.clear()
        self.done.append({"seconds": round(time.perf_counter() - started, 2), "status": status})
        print_figure("load", f"index update {n}", _text(status))


def _text(html: str) -> str:
    from bs4 import BeautifulSoup

    return BeautifulSoup(str(html), "html.parser").get_text(" ", strip=True)


def ask_all(
    url: str,
    questions: Iterator[tuple[str, str]],
    clients: int,
    documents: Documents,
    updater: Updater,
) -> list[Outcome]:
    """Ask every question from ``clients`` threads, each with its own client.

    Each thread takes the next question only when its previous one is answered, so the
    iterator runs in step with the load (an update it starts falls where it is written to,
    and an endless soak iterator is never drained ahead).
    """
    outcomes: list[Outcome] = []
    lock = threading.Lock()

    def client_loop() -> None:
        client = connect(url)
        while True:
            with lock:
                item = next(questions, None)
            if item is None:
                return
            outcome = ask(client, *item)
            with lock:
                outcomes.append(outcome)

    def ask(client: Any, kind: str, question: str) -> Outcome:
        during = updater.running.is_set()
        started = time.perf_counter()
        outcome = Outcome(kind, question, 0.0, during)
        try:
            outcome.payload = client.predict(question, api_name="/ask")
        except Exception as exc:  # noqa: BLE001 - every failure is classified below
            outcome.error = f"{type(exc).__name__}: {exc}"
        outcome.seconds = time.perf_counter() - started
        outcome.during_update = during or updater.running.is_set()
        expected = EXPECTED_REFUSAL[kind]
        if outcome.payload is not None:
            if expected is not None:
                outcome.problems.append("answered, though it should have been refused")
            outcome.problems += documents.problems(outcome.payload)
        elif expected is None or expected not in (outcome.error or ""):
            outcome.problems.append(f"unexpected error: {outcome.error}")
        return outcome

    threads = [threading.Thread(target=client_loop) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def report(outcomes: list[Outcome]) -> dict[str, Any]:
    """Counts, problems and latency of the outcomes."""
    unexpected = [o for o in outcomes if any(p.startswith("unexpected") for p in o.problems)]
    mismatched = [o for o in outcomes if o.problems and o not in unexpected]
    by_kind: dict[str, list[float]] = defaultdict(list)
    for o in outcomes:
        by_kind[o.kind].append(o.seconds)
    return {
        "questions": len(outcomes),
        "kinds": dict(Counter(o.kind for o in outcomes)),
        "answered": sum(o.payload is not None and bool(o.payload["answers"]) for o in outcomes),
        "abstained": sum(o.payload is not None and o.payload["abstained"] for o in outcomes),
        "refused_as_expected": sum(
            o.payload is None and not o.problems and EXPECTED_REFUSAL[o.kind] is not None
            for o in outcomes
        ),
        "during_update": sum(o.during_update for o in outcomes),
        "unexpected_errors": len(unexpected),
        "offset_problems": len(mismatched),
        "examples_of_problems": [
            {"kind": o.kind, "question": o.question[:80], "problems": o.problems[:3]}
            for o in (unexpected + mismatched)[:10]
        ],
        "latency": summarize([o.seconds for o in outcomes]),
        "latency_by_kind": {k: summarize(v) for k, v in sorted(by_kind.items())},
        "answers_checked": sum(len(o.payload["answers"]) for o in outcomes if o.payload),
    }


def run_load(server: Server, args: argparse.Namespace) -> dict[str, Any]:
    """``args.questions`` questions with ``args.updates`` updates spread over the run."""
    documents = Documents(server.corpus)
    updater = Updater(server.url, documents)
    mix = question_mix(args.questions)
    # An update starts after each of the first ``updates`` fractions of the questions.
    marks = {int(len(mix) * (i + 1) / (args.updates + 1)) for i in range(args.updates)}
    update_threads: list[threading.Thread] = []

    def questions() -> Iterator[tuple[str, str]]:
        for i, item in enumerate(mix):
            if i in marks:
                thread = threading.Thread(target=updater.update)
                thread.start()
                update_threads.append(thread)
            yield item

    rss_before = server.rss_mib()
    begun = time.perf_counter()
    outcomes = ask_all(server.url, questions(), args.clients, documents, updater)
    for thread in update_threads:
        thread.join()
    wall = time.perf_counter() - begun
    figures = report(outcomes)
    figures.update(
        clients=args.clients,
        wall_s=round(wall, 1),
        questions_per_s=round(len(outcomes) / wall, 2),
        updates=updater.done,
        server_rss_mib={"before": rss_before, "after": server.rss_mib()},
    )
    return figures


def run_soak(server: Server, args: argparse.Namespace) -> dict[str, Any]:
    """The same mix, without end, for ``args.soak_minutes``; memory sampled as it runs."""
    documents = Documents(server.corpus)
    updater = Updater(server.url, documents)
    deadline = time.monotonic() + args.soak_minutes * 60
    samples: list[tuple[float, float]] = []
    parts: list[dict[str, float]] = []
    begun = time.monotonic()
    stop = threading.Event()

    def take() -> None:
        memory = server.memory_mib()
        parts.append(memory)
        samples.append((round(time.monotonic() - begun, 1), memory.get("VmRSS", 0.0)))

    def sample() -> None:
        while not stop.is_set():
            take()
            print_figure(
                "soak",
                "server RSS MiB (anon / file)",
                f"{samples[-1][1]} ({parts[-1].get('RssAnon')} / {parts[-1].get('RssFile')})",
            )
            stop.wait(args.sample_s)

    def update_now_and_then() -> None:
        while not stop.wait(args.soak_update_s):
            updater.update()

    def questions() -> Iterator[tuple[str, str]]:
        for item in itertools.cycle(question_mix(100)):
            if time.monotonic() >= deadline:
                return
            yield item

    helpers = [threading.Thread(target=sample), threading.Thread(target=update_now_and_then)]
    for helper in helpers:
        helper.start()
    try:
        outcomes = ask_all(server.url, questions(), args.clients, documents, updater)
    finally:
        stop.set()
        for helper in helpers:
            helper.join()
    take()
    half = [rss for t, rss in samples if t >= samples[-1][0] / 2]
    anon = [p.get("RssAnon", 0.0) for p in parts]
    anon_half = [a for (t, _), a in zip(samples, anon, strict=True) if t >= samples[-1][0] / 2]
    figures = report(outcomes)
    figures.update(
        clients=args.clients,
        minutes=args.soak_minutes,
        updates=updater.done,
        rss_samples=samples,
        rss_growth_mib=round(samples[-1][1] - samples[0][1], 1),
        rss_growth_second_half_mib=round(half[-1] - half[0], 1) if half else 0.0,
        rss_peak_mib=max(rss for _, rss in samples),
        memory_samples=parts,
        anon_growth_mib=round(anon[-1] - anon[0], 1),
        anon_growth_second_half_mib=round(anon_half[-1] - anon_half[0], 1) if anon_half else 0.0,
    )
    return figures


def warm_up(url: str) -> None:
    """One question of each kind answered before anything is timed (models, caches)."""
    client = connect(url)
    for question in seed_questions(3):
        client.predict(question, api_name="/ask")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=200, help="Questions asked (load run).")
    parser.add_argument("--clients", type=int, default=20, help="Concurrent clients.")
    parser.add_argument("--updates", type=int, default=3, help="Index updates during the run.")
    parser.add_argument("--reader", default="default", help="Reader model of the server.")
    parser.add_argument(
        "--soak-minutes", type=float, default=0.0, help="Soak for N minutes instead."
    )
    parser.add_argument("--soak-update-s", type=float, default=120.0, help="Soak update period.")
    parser.add_argument("--sample-s", type=float, default=30.0, help="Soak memory sample period.")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "out")
    parser.add_argument("--work", type=Path, help="Scratch folder (default: a temporary one).")
    args = parser.parse_args(argv)
    quiet_environment()

    work = args.work or Path(tempfile.mkdtemp(prefix="qa-load-"))
    if (work / "corpus").exists():
        shutil.rmtree(work / "corpus")
    shutil.rmtree(work / "index", ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    shutil.copytree(SEED_CORPUS, work / "corpus")
    server = Server(work, args.reader)
    try:
        server.wait_ready()
        warm_up(server.url)
        print_figure("load", "server RSS MiB after warm-up", server.rss_mib())
        figures = run_soak(server, args) if args.soak_minutes else run_load(server, args)
    finally:
        server.stop()
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    figures["machine"] = machine()
    figures["load_after"] = load()
    name = "soak.json" if args.soak_minutes else "load.json"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / name).write_text(
        json.dumps(figures, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    for key in ("questions", "unexpected_errors", "offset_problems", "during_update"):
        print_figure("load", key, figures[key])
    print_figure("load", "latency", figures["latency"])
    for key in (
        "server_rss_mib",
        "rss_growth_mib",
        "rss_growth_second_half_mib",
        "anon_growth_mib",
        "anon_growth_second_half_mib",
    ):
        if key in figures:
            print_figure("load", key, figures[key])
    print(f"figures: {args.out / name}")
    return 1 if figures["unexpected_errors"] or figures["offset_problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
