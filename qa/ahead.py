"""Work started ahead of its need, on a thread of its own.

A cold command spends most of its time loading: Python modules, the index, the ONNX sessions of
the question encoder and the reader. Those do not depend on each other, and onnxruntime builds a
session without holding the GIL, so loading them side by side on two cores saves the shorter of
them (benchmarks/RESULTS.md, "Cold commands: loading side by side").
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


def start(task: Callable[[], object], name: str = "qa-ahead") -> threading.Thread:
    """Run ``task`` on a thread of its own; the thread, to join.

    The task is for loading things ahead of their use (the use itself must not depend on it
    having run): its failure is only logged, since the use runs into it again and raises it
    there, where the caller handles it.

    The thread is not a daemon: a process waits for it before it exits. A daemon thread still
    inside onnxruntime when the interpreter tore down its session aborted the process ("terminate
    called without an active exception", exit status 134) in about one cold ``qa search`` in
    thirty, after its answer was printed.
    """
    thread = threading.Thread(target=_quietly, args=(task,), name=name)
    thread.start()
    return thread


def _quietly(task: Callable[[], object]) -> None:
    try:
        task()
    except Exception as exc:  # noqa: BLE001 - raised again where the work is used
        log.debug("loading ahead failed: %s", exc)
