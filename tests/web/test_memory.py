"""Freed memory handed back to the system (glibc's malloc_trim), as the server does."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from qa.web.memory import _malloc_trim, release_free_memory

pytestmark = pytest.mark.skipif(_malloc_trim() is None, reason="no malloc_trim (not glibc)")


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_memory_freed_by_a_thread_goes_back_to_the_system() -> None:
    # A worker thread allocates 64 MiB in blocks and frees all but the last one, which keeps
    # the rest below the top of its arena: free() alone returns none of it.
    held: list[bytearray] = []

    def work() -> None:
        blocks = [bytearray(4096) for _ in range(16_384)]
        held.append(blocks[-1])
        del blocks

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    after_free = rss_mib()
    assert release_free_memory()
    assert after_free - rss_mib() > 32
