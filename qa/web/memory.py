"""Handing memory freed by the server back to the system.

glibc's malloc gives each thread an arena (up to eight per core) and keeps what a thread frees
in that thread's arena for later use; only a free stretch at the very top of an arena is
returned by itself. The server answers on Gradio's worker threads and builds the index on
whichever of them runs the update, so each index update leaves its working memory (some 30 to
45 MiB: the embedding model's activations, the new index's arrays) free in the arena of the
thread it happened to run on, and the next update lands in another arena. A 5-minute soak
grew the server by ~33 MiB at every update this way, while Python's own heap (``tracemalloc``)
grew by a few MiB. :func:`release_free_memory` after an update gives those free pages back.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from typing import Any


@functools.cache
def _malloc_trim() -> Any:
    """glibc's ``malloc_trim``, or None where the C library has none (macOS, musl...)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        trim = libc.malloc_trim
    except (AttributeError, OSError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def release_free_memory() -> bool:
    """Return the free pages of every malloc arena to the system (glibc's ``malloc_trim(0)``).

    Nothing in use moves, so it is safe at any time from any thread; it takes a few
    milliseconds, so it belongs after rare, large work (an index update), not after each
    question.

    Returns:
        Whether it ran: False where the C library has no ``malloc_trim``.
    """
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
