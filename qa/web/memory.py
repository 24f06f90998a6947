"""Keeping the server's memory from creeping up: fewer malloc arenas, free pages given back.

glibc's malloc gives threads their own arenas (up to eight per core) and keeps what a thread
frees in its arena for later use; only a free stretch at the very top of an arena is returned
by itself. The server answers on Gradio's worker threads and builds the index on whichever of
them runs the update, so each index update grew one arena by 30 to 45 MiB (``malloc_info``),
most of it left free there, and the next update landed in another: a 5-minute soak
grew the server by ~33 MiB at every update while Python's own heap (``tracemalloc``) grew by a
few MiB. :func:`release_free_memory` after an update gives those pages back, and
:func:`limit_malloc_arenas` at start-up keeps the questions' own scratch memory in fewer
arenas. With both, the same soak's server grew 121 MiB in all (most of it in its first 30 s,
as the question threads start) and none in its second half, against 207 and 37 MiB before.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
from typing import Any

#: Arenas the server's threads share (glibc's ``M_ARENA_MAX``), the main one included; the
#: default is eight per core. With two the soak answered as many questions as without the
#: limit, within the noise of a shared 2-core machine.
SERVER_ARENAS = 2
_M_ARENA_MAX = -8  # mallopt's parameter number, from glibc's malloc.h


@functools.cache
def _glibc(name: str) -> Any:
    """The glibc function ``name`` (returning int), or None where the C library has none."""
    try:
        function = getattr(ctypes.CDLL(ctypes.util.find_library("c")), name)
    except (AttributeError, OSError):
        return None
    function.restype = ctypes.c_int
    return function


def _malloc_trim() -> Any:
    """glibc's ``malloc_trim``, or None where the C library has none (macOS, musl...)."""
    trim = _glibc("malloc_trim")
    if trim is not None:
        trim.argtypes = [ctypes.c_size_t]
    return trim


def limit_malloc_arenas(arenas: int = SERVER_ARENAS) -> bool:
    """Let at most ``arenas`` malloc arenas exist, unless ``MALLOC_ARENA_MAX`` says otherwise.

    glibc fixes its limit when the process first needs more arenas than it has, so this must
    run before threads start allocating: at the start of serving, before the models load.
    Threads started later share the arenas there are.

    Returns:
        Whether the limit was set: False where ``MALLOC_ARENA_MAX`` is set (glibc read it at
        start-up) or the C library has no ``mallopt``.
    """
    mallopt = _glibc("mallopt")
    if mallopt is None or os.environ.get("MALLOC_ARENA_MAX"):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(_M_ARENA_MAX, arenas))


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
