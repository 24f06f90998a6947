"""Files ``qa`` builds on first use into the user's cache, checked on each load.

Converted copies of models (the int8 question encoder, the ONNX reader) do not ship in the
package: the first process that needs one builds it, once, into
``<cache>/<folder>/<key>/<file>``. ``<cache>`` is ``QA_CACHE_DIR`` where it is set, else the
user's cache folder (``$XDG_CACHE_HOME/qa``, by default ``~/.cache/qa``); ``<key>`` names the
source weights and the recipe's version, so a new model or recipe builds anew beside the old
instead of using a copy of something else.

A build writes into a temporary folder beside the file and renames what it wrote into place
(the file itself last), so that no reader ever sees half a file. A build may write files that go
with its file (an ONNX graph's weights, ``model.onnx.data``): they are moved in beside it and
checked with it. Builders in other threads and processes wait on a lock and then use its
result. Each file's SHA-256, taken when it was built, is written beside it (``<file>.sha256``,
one line per file, the file's own first) with what made it (``build.json``), and checked on
load: a file that differs (damaged on disk, or cut short) is built again, with a warning. Once
the files have matched their digests, their sizes, mtimes and inodes are recorded beside them
(``<file>.checked``) and a load that finds them unchanged skips reading the whole files again
(65 ms of each cold ``qa search`` for the 23 MB question encoder); a file written to since,
even with its size kept, has a new mtime and is hashed again.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qa.models import checksums

log = logging.getLogger(__name__)

CACHE_ENV = "QA_CACHE_DIR"

# One builder per process and artefact at a time; the file lock orders processes.
_thread_locks: dict[str, threading.Lock] = {}
_thread_locks_guard = threading.Lock()


class BuildError(RuntimeError):
    """A cached artefact could not be built (its tools are missing or the build failed)."""


@dataclass(frozen=True)
class Artefact:
    """A file built on first use from a packaged model.

    Attributes:
        what: How messages name it (``"the int8 question encoder"``).
        folder: Its folder under the cache (``"minilm-fp32"``).
        file: Its file name (``"model.onnx"``).
        key: The name of the current build (source weights and recipe), a folder under
            ``folder``.
        build: Writes the file into the path given (in an empty folder of its own, where the
            files it writes beside it go with it) and returns what made it, for
            ``build.json``.
        seconds: About how long a build takes on two cores, for the notice shown while it runs.
        remedy: What to do when a build fails.
        error: The exception raised when a build fails.
    """

    what: str
    folder: str
    file: str
    key: Callable[[], str]
    build: Callable[[Path], dict[str, Any]]
    seconds: int
    remedy: str
    error: type[BuildError] = BuildError


def cache_dir() -> Path:
    """The folder ``qa`` keeps what it builds in: ``QA_CACHE_DIR``, else the user's cache."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "qa"


def built_file(artefact: Artefact, *, folder: Path | None = None, rebuild: bool = False) -> Path:
    """The artefact's file, built first where it is missing or differs from its digest.

    Args:
        artefact: What to build and how.
        folder: Where it is kept (default: ``<cache>/<artefact.folder>/<key>``).
        rebuild: Build it again even where a sound copy is there.

    Returns:
        The path of the file, whose content matches the digest recorded beside it.

    Raises:
        BuildError: (``artefact.error``) It had to be built and could not be.
    """
    folder = folder if folder is not None else cache_dir() / artefact.folder / artefact.key()
    target = folder / artefact.file
    if not rebuild and _sound(target):
        return target
    with _thread_locks_guard:
        thread_lock = _thread_locks.setdefault(artefact.folder, threading.Lock())
    try:
        folder.mkdir(parents=True, exist_ok=True)
        from filelock import FileLock

        with thread_lock, FileLock(folder / ".lock"):
            # Another thread or process may have built it while this one waited.
            if not rebuild and _sound(target):
                return target
            if target.exists() and not rebuild:
                log.warning(
                    "the cached %s %s differs from the SHA-256 recorded when it was built "
                    "(damaged); building it again",
                    artefact.what.removeprefix("the "),
                    target,
                )
            _build(artefact, target)
    except OSError as exc:
        raise artefact.error(f"cannot build {artefact.what} in {folder}: {exc}") from exc
    return target


def _sound(target: Path) -> bool:
    """Whether ``target`` and the files built with it exist and match the digests written
    beside it when they were built (taken as matching, unread, while their file system stamps
    are the ones recorded when they last did: see the module docstring)."""
    digest_file = target.with_name(target.name + ".sha256")
    if not (target.is_file() and digest_file.is_file()):
        return False
    recorded = _recorded(digest_file.read_text(encoding="utf-8"))
    if not recorded or recorded[0][1] != target.name:
        return False
    files = [(digest, target.with_name(name)) for digest, name in recorded]
    if not all(path.is_file() for _, path in files):
        return False
    checked = target.with_name(target.name + ".checked")
    stamp = "".join(f"{digest} {_stamp(path)}\n" for digest, path in files)
    try:
        if checked.read_text(encoding="utf-8") == stamp:
            return True
    except OSError:
        pass
    if any(digest != checksums.sha256(path) for digest, path in files):
        return False
    tmp = checked.with_name(f".{checked.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        tmp.write_text(stamp, encoding="utf-8")
        os.replace(tmp, checked)
    except OSError:  # a read-only cache: checked in full on every load
        tmp.unlink(missing_ok=True)
    return True


def _recorded(text: str) -> list[tuple[str, str]]:
    """The ``(digest, file name)`` pairs of a ``.sha256`` file (``sha256sum``'s format); none
    where a line is not one."""
    pairs = [tuple(line.split(maxsplit=1)) for line in text.splitlines() if line.strip()]
    if any(len(pair) != 2 or "/" in pair[1] for pair in pairs):
        return []
    return [(digest, name) for digest, name in pairs]


def _stamp(path: Path) -> str:
    """What changes when ``path``'s content is written or replaced: size, mtime and inode."""
    stat = path.stat()
    return f"{stat.st_size} {stat.st_mtime_ns} {stat.st_ino}"


def _build(artefact: Artefact, target: Path) -> None:
    """Build into a temporary folder beside ``target``, then rename what it wrote in (the
    files that go with ``target`` first, ``target`` last) and record their digests."""
    folder = target.parent
    log.warning("building %s (once, ~%d s) into %s", artefact.what, artefact.seconds, folder)
    started = time.perf_counter()
    scratch = folder / f".build.{os.getpid()}.{uuid.uuid4().hex}.tmp"
    scratch.mkdir()
    built = scratch / target.name
    try:
        try:
            with warnings.catch_warnings():
                # The tracer's notes about Python conditionals in BERT: true and harmless here.
                warnings.simplefilter("ignore")
                build = artefact.build(built)
        except checksums.ModelFileError:
            raise  # a damaged packaged model: its own message says what to do
        except Exception as exc:  # noqa: BLE001 - missing tools or a failed export: one remedy
            reason = str(exc).splitlines()[0] if str(exc) else ""
            raise artefact.error(
                f"cannot build {artefact.what} ({type(exc).__name__}: {reason}); {artefact.remedy}"
            ) from exc
        companions = sorted(p for p in scratch.iterdir() if p.name != target.name)
        digests = [(checksums.sha256(path), path.name) for path in (built, *companions)]
        build["sha256"] = digests[0][0]
        if companions:
            build["files"] = {name: digest for digest, name in digests}
        build["seconds"] = round(time.perf_counter() - started, 1)
        write_atomic(folder / "build.json", json.dumps(build, indent=2) + "\n")
        write_atomic(
            folder / f"{target.name}.sha256",
            "".join(f"{digest}  {name}\n" for digest, name in digests),
        )
        for path in companions:
            os.replace(path, folder / path.name)
        os.replace(built, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    log.info("built %s in %.1f s", artefact.what, time.perf_counter() - started)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` into ``path`` whole or not at all."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
