"""The int8 question encoder, built on first use into the user's cache and checked on each load.

The int8 copy of all-MiniLM-L6-v2 (the recipe: ``qa.models.export_query_encoder``) is a
converted copy of a third-party model, so it does not ship in the package: the first process
that needs it builds it from the packaged fp32 model, once, into
``<cache>/minilm-int8/<key>/model.onnx``. ``<cache>`` is ``QA_CACHE_DIR`` where it is set, else
the user's cache folder (``$XDG_CACHE_HOME/qa``, by default ``~/.cache/qa``); ``<key>`` names the
SHA-256 of the source weights and the recipe's version, so a new model or recipe builds anew
beside the old instead of using a copy of something else.

A build checks the source model against ``SHA256SUMS`` first, writes into a temporary file in
the same folder and renames it into place, so that no reader ever sees half a file. Builders in
other threads and processes wait on a lock and then use its result. The file's SHA-256, taken
when it was built, is written beside it (``model.onnx.sha256``) and checked on every load: a
file that differs (damaged on disk, or cut short) is built again, with a warning.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
import warnings
from pathlib import Path

from qa.models import checksums

log = logging.getLogger(__name__)

CACHE_ENV = "QA_CACHE_DIR"
FOLDER = "minilm-int8"
MODEL_FILE = "model.onnx"
DIGEST_FILE = MODEL_FILE + ".sha256"
SOURCE_MODEL = "all-MiniLM-L6-v2"
#: About how long a build takes on two cores, for the notice shown while it runs.
BUILD_SECONDS = 10

# One builder per process at a time; the file lock orders processes (and this one among them).
_build_lock = threading.Lock()


class QueryEncoderBuildError(RuntimeError):
    """The int8 question encoder could not be built (the export's tools are missing or failed)."""


def cache_dir() -> Path:
    """The folder ``qa`` keeps what it builds in: ``QA_CACHE_DIR``, else the user's cache."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "qa"


def cache_key() -> str:
    """The folder name of the current build: source weights' SHA-256 and recipe version."""
    from qa.models.export_query_encoder import RECIPE_VERSION

    weights = checksums.recorded()[f"{SOURCE_MODEL}/model.safetensors"]
    return f"{weights[:16]}-recipe{RECIPE_VERSION}"


def query_encoder_file(*, folder: Path | None = None, rebuild: bool = False) -> Path:
    """The int8 encoder's ONNX file, built first where it is missing or differs from its digest.

    Args:
        folder: Where it is kept (default: ``<cache>/minilm-int8/<key>``).
        rebuild: Build it again even where a sound copy is there.

    Returns:
        The path of ``model.onnx``, whose content matches the digest recorded beside it.

    Raises:
        QueryEncoderBuildError: It had to be built and could not be (the message says why).
        qa.models.checksums.ModelFileError: The packaged source model is damaged.
    """
    folder = folder if folder is not None else cache_dir() / FOLDER / cache_key()
    target = folder / MODEL_FILE
    if not rebuild and _sound(target):
        return target
    try:
        folder.mkdir(parents=True, exist_ok=True)
        from filelock import FileLock

        with _build_lock, FileLock(folder / ".lock"):
            # Another thread or process may have built it while this one waited.
            if not rebuild and _sound(target):
                return target
            if target.exists() and not rebuild:
                log.warning(
                    "the cached int8 question encoder %s differs from the SHA-256 recorded when "
                    "it was built (damaged); building it again",
                    target,
                )
            _build(folder)
    except OSError as exc:
        raise QueryEncoderBuildError(
            f"cannot build the int8 question encoder in {folder}: {exc}"
        ) from exc
    return target


def _sound(target: Path) -> bool:
    """Whether ``target`` exists and matches the digest written beside it when it was built."""
    digest_file = target.with_name(DIGEST_FILE)
    if not (target.is_file() and digest_file.is_file()):
        return False
    recorded = digest_file.read_text(encoding="utf-8").split(maxsplit=1)
    return bool(recorded) and recorded[0] == checksums.sha256(target)


def _build(folder: Path) -> None:
    """Export into a temporary file in ``folder``, then rename it and its records into place."""
    from qa.models import embedding_model_dir
    from qa.models.export_query_encoder import export

    source = embedding_model_dir()
    checksums.verify(SOURCE_MODEL, source)
    log.warning("building the int8 question encoder (once, ~%d s) into %s", BUILD_SECONDS, folder)
    started = time.perf_counter()
    tmp = folder / f".{MODEL_FILE}.{os.getpid()}.{uuid.uuid4().hex}.tmp"
    try:
        try:
            with warnings.catch_warnings():
                # The tracer's notes about Python conditionals in BERT: true and harmless here.
                warnings.simplefilter("ignore")
                build = export(tmp, source)
        except Exception as exc:  # noqa: BLE001 - missing tools or a failed export: one remedy
            reason = str(exc).splitlines()[0] if str(exc) else ""
            raise QueryEncoderBuildError(
                f"cannot build the int8 question encoder ({type(exc).__name__}: {reason}); "
                "pip install onnx onnx-ir (see pyproject.toml for the versions)"
            ) from exc
        digest = checksums.sha256(tmp)
        build["sha256"] = digest
        build["seconds"] = round(time.perf_counter() - started, 1)
        _write(folder / "build.json", json.dumps(build, indent=2) + "\n")
        _write(folder / DIGEST_FILE, f"{digest}  {MODEL_FILE}\n")
        os.replace(tmp, folder / MODEL_FILE)
    finally:
        tmp.unlink(missing_ok=True)
    log.info("built the int8 question encoder in %.1f s", time.perf_counter() - started)


def _write(path: Path, text: str) -> None:
    """Write ``text`` into ``path`` whole or not at all."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
