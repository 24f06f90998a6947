"""Adding files to and removing files from the corpus folder, safely, for the web page.

An uploaded file is accepted only when:

* its type is one ingestion reads (``qa.ingest.SUPPORTED_SUFFIXES``);
* it is not empty and not larger than ``Settings.max_upload_mb``;
* ingestion can read text out of it (a broken PDF is refused now, with the reason, rather
  than skipped silently at the next index build).

Its name is sanitised: only the last path component is kept (no ``../`` or absolute paths),
characters other than letters, digits, ``.``, ``-`` and ``_`` become ``_``, leading dots are
dropped (no hidden files, which ingestion would ignore) and the suffix is lower-cased. It is
written into the top of the corpus folder with an exclusive create, so nothing outside the
corpus is written and nothing existing is overwritten.

Name clashes: a file whose bytes equal those of the corpus file with the same name is skipped
("already in the corpus"); a different file of the same name is saved under the next free name
``stem-2.txt``, ``stem-3.txt``, ... and the message names it, so an upload never replaces an
article silently. To replace an article, remove it and upload the new version.
"""

from __future__ import annotations

import os
import re
import tempfile
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from qa.ingest import SUPPORTED_SUFFIXES, IngestError, load_file

#: Longest stem kept from an uploaded name (file systems allow 255 bytes; ids stay readable).
MAX_STEM_CHARS = 100
_UNSAFE = re.compile(r"[^\w.\-]+")


class UploadRefused(ValueError):
    """A file the corpus does not accept; the message says why."""


@dataclass(frozen=True)
class Outcome:
    """What happened to one uploaded or removed file.

    Attributes:
        name: The file's name as the user gave it.
        ok: Whether the corpus changed (file saved or removed).
        message: One sentence for the user.
        path: The corpus-relative path written or removed, when ``ok``.
    """

    name: str
    ok: bool
    message: str
    path: str | None = None


def safe_filename(name: str) -> str:
    """A file name safe to create at the top of the corpus folder.

    Args:
        name: The name as uploaded (may hold directories, ``..``, odd characters).

    Returns:
        The sanitised name, with a lower-case supported suffix.

    Raises:
        UploadRefused: If no usable name is left, or the type is not supported.
    """
    base = re.split(r"[/\\]", name)[-1]
    base = unicodedata.normalize("NFKC", base)
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C")
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    suffix = f".{suffix.lower()}" if dot else ""
    if suffix not in SUPPORTED_SUFFIXES:
        allowed = ", ".join(SUPPORTED_SUFFIXES)
        shown = suffix or "(no extension)"
        raise UploadRefused(f"files of type {shown} are not supported (allowed: {allowed})")
    stem = _UNSAFE.sub("_", stem).lstrip("._-")[:MAX_STEM_CHARS].rstrip(".")
    if not stem:
        raise UploadRefused("the file name has no usable characters")
    return stem + suffix


def save_upload(source: Path, name: str, corpus_dir: Path, max_bytes: int) -> Outcome:
    """Check one uploaded file and copy it into ``corpus_dir``.

    Args:
        source: Where the uploaded bytes are (a temporary file).
        name: The name the user gave the file.
        corpus_dir: The corpus root.
        max_bytes: Largest accepted size.

    Returns:
        What happened; ``ok`` is False when the file was refused or already present.
    """
    try:
        target_name = safe_filename(name)
        data = _read_checked(source, max_bytes)
        _check_readable(data, target_name)
    except UploadRefused as exc:
        return Outcome(name, False, f"{name}: refused, {exc}.")
    root = corpus_dir.resolve()
    stem, suffix = target_name[: -len(Path(target_name).suffix)], Path(target_name).suffix
    for n in range(1, 1000):
        candidate = target_name if n == 1 else f"{stem}-{n}{suffix}"
        target = root / candidate
        if target.parent != root:
            return Outcome(name, False, f"{name}: refused, the name leads outside the corpus.")
        if target.is_file() and target.read_bytes() == data:
            return Outcome(name, False, f"{name}: already in the corpus as {candidate}, skipped.")
        try:
            _create(target, data)
        except FileExistsError:
            continue
        renamed = "" if candidate == name else f" as {candidate}"
        clash = " (a different file already has that name)" if n > 1 else ""
        return Outcome(name, True, f"{name}: added to the corpus{renamed}{clash}.", candidate)
    return Outcome(name, False, f"{name}: refused, too many files with that name.")


def save_uploads(
    files: Sequence[tuple[Path, str]], corpus_dir: Path, max_bytes: int
) -> list[Outcome]:
    """:func:`save_upload` for each ``(temporary path, original name)``."""
    return [save_upload(path, name, corpus_dir, max_bytes) for path, name in files]


def discard_uploaded(paths: Sequence[Path], upload_dir: Path) -> None:
    """Delete the web server's temporary copies of uploaded files, and their folders once empty.

    The web server keeps each upload in a folder of its own under ``upload_dir`` until it is
    told otherwise; once a file is saved into the corpus (or refused) the copy is of no use.
    Only paths inside ``upload_dir`` are touched, so a crafted request naming any other file
    deletes nothing.

    Args:
        paths: The uploaded files, as the web server handed them over.
        upload_dir: The web server's upload folder.
    """
    root = upload_dir.resolve()
    for path in paths:
        resolved = path.resolve()
        if root not in resolved.parents:
            continue
        resolved.unlink(missing_ok=True)
        folder = resolved.parent
        while folder != root:
            try:
                folder.rmdir()
            except OSError:  # not empty: another upload still uses it
                break
            folder = folder.parent


def corpus_files(corpus_dir: Path) -> list[str]:
    """The corpus-relative paths of the files ingestion would read, sorted.

    Mirrors ``qa.ingest.load_corpus``: hidden files and folders are left out, and so are
    files of unsupported types.
    """
    root = Path(corpus_dir)
    found: list[str] = []
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = [s for s in subfolders if not s.startswith(".")]
        for name in names:
            if not name.startswith(".") and Path(name).suffix.lower() in SUPPORTED_SUFFIXES:
                found.append((Path(folder) / name).relative_to(root).as_posix())
    return sorted(found)


def remove_files(paths: Sequence[str], corpus_dir: Path) -> list[Outcome]:
    """Delete corpus files named by their corpus-relative paths.

    Only paths that :func:`corpus_files` lists are deleted, so a crafted path cannot reach a
    file outside the corpus or one ingestion does not read.
    """
    known = set(corpus_files(corpus_dir))
    outcomes = []
    for rel in paths:
        if rel not in known:
            message = f"{rel}: not a file of the corpus, nothing removed."
            outcomes.append(Outcome(rel, False, message))
            continue
        (Path(corpus_dir) / rel).unlink(missing_ok=True)
        outcomes.append(Outcome(rel, True, f"{rel}: removed from the corpus.", rel))
    return outcomes


def _read_checked(source: Path, max_bytes: int) -> bytes:
    size = source.stat().st_size
    if size == 0:
        raise UploadRefused("the file is empty")
    if size > max_bytes:
        raise UploadRefused(
            f"the file is {_megabytes(size)}, larger than the limit of {_megabytes(max_bytes)}"
        )
    return source.read_bytes()


def _check_readable(data: bytes, target_name: str) -> None:
    """Refuse a file ingestion cannot get text from, with ingestion's reason.

    The bytes are read under the target name in a private temporary folder, since the suffix
    chooses the loader.
    """
    with tempfile.TemporaryDirectory(prefix="qa-upload-") as tmp:
        probe = Path(tmp) / target_name
        probe.write_bytes(data)
        try:
            load_file(probe, Path(tmp))
        except IngestError as exc:
            raise UploadRefused(f"its text cannot be read ({exc.reason})") from None


def _create(target: Path, data: bytes) -> None:
    """Write ``data`` to a new file; ``FileExistsError`` if the name is taken (even by a link)."""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
    except BaseException:
        target.unlink(missing_ok=True)
        raise


def _megabytes(n: int) -> str:
    return f"{n / 2**20:.1f} MB"
