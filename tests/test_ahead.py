"""Work loaded ahead on a thread of its own (``qa.ahead``)."""

from __future__ import annotations

import logging
import threading

import pytest

from qa import ahead


def test_a_task_runs_on_a_named_thread_the_process_waits_for() -> None:
    seen: list[str] = []
    thread = ahead.start(lambda: seen.append(threading.current_thread().name), name="warm")
    thread.join(timeout=10)
    # Not a daemon: the interpreter joins it before tearing down what it may still be using.
    assert seen == ["warm"] and not thread.daemon


def test_a_failing_task_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> None:
        raise OSError("no such model file")

    with caplog.at_level(logging.DEBUG, logger="qa.ahead"):
        ahead.start(broken).join(timeout=10)
    assert "loading ahead failed: no such model file" in caplog.text
