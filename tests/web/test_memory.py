"""The server's memory bounds: malloc arenas limited, freed memory handed back (glibc)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from qa.settings import Settings
from qa.web import app
from qa.web.memory import SERVER_ARENAS, _malloc_trim, release_free_memory

glibc = pytest.mark.skipif(_malloc_trim() is None, reason="not glibc")

#: Run in a fresh process: 8 threads allocate at once, holding what they allocated, and the
#: process prints how many malloc arenas exist (``malloc_info`` lists one ``<heap>`` each).
COUNT_ARENAS = """
import ctypes, ctypes.util, sys, tempfile, threading
from qa.web.memory import limit_malloc_arenas
if sys.argv[1] == "limit":
    assert limit_malloc_arenas()
barrier, held = threading.Barrier(8), []
def work():
    barrier.wait()
    held.append([bytearray(4096) for _ in range(64)])
    barrier.wait()
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.fopen.restype = ctypes.c_void_p
libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
libc.fclose.argtypes = [ctypes.c_void_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
with tempfile.NamedTemporaryFile(suffix=".xml") as out:
    f = libc.fopen(out.name.encode(), b"w")
    libc.malloc_info(0, f)
    libc.fclose(f)
    print(open(out.name).read().count("<heap nr="))
"""


def arenas_after_threads(how: str) -> int:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    done = subprocess.run(
        [sys.executable, "-c", COUNT_ARENAS, how],
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
    )
    assert done.returncode == 0, done.stderr
    return int(done.stdout)


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@glibc
def test_threads_share_the_limited_arenas() -> None:
    assert arenas_after_threads("limit") <= SERVER_ARENAS < arenas_after_threads("default")


def test_serving_limits_the_arenas_before_anything_loads(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: list[str] = []

    def create_app(qa: object) -> None:
        calls.append("app")
        raise KeyboardInterrupt  # stop before launching

    monkeypatch.setattr(app, "limit_malloc_arenas", lambda: calls.append("arenas"))
    monkeypatch.setattr(app, "create_app", create_app)
    with pytest.raises(KeyboardInterrupt):
        app.serve(Settings(corpus_dir=tmp_path, index_dir=tmp_path / "index"))
    assert calls == ["arenas", "app"]


@glibc
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
