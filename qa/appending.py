"""Files a build shares with the build before it: hard-linked, cut to that build's share,
appended to.

An update in place adds a little to tables that are mostly the live build's. Instead of
writing them whole, the new build hard-links the live build's file and appends its rows: the
builds share one file, each reading as many bytes (or rows) as its own manifest says, so the
live one never sees what is appended past its own share. Bytes a failed build appended are cut
off by the next build first (it keeps exactly the live build's share), which no build reads.
"""

from __future__ import annotations

import os
from pathlib import Path


def file_size(path: Path) -> int:
    """Bytes of ``path``, -1 if there is no such file."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return -1


def link_and_append(source: Path, target: Path, keep: int, tail: bytes) -> bool:
    """Make ``target`` a hard link of ``source`` holding its first ``keep`` bytes and then
    ``tail``; False, with nothing made, where ``source`` holds fewer bytes than ``keep`` or
    the file system makes no hard links (the caller then writes ``target`` whole)."""
    if not 0 <= keep <= file_size(source):
        return False
    try:
        os.link(source, target)
    except OSError:
        return False
    with target.open("r+b") as fh:
        fh.truncate(keep)
        fh.seek(0, os.SEEK_END)
        fh.write(tail)
    return True


def link_files(source: Path, target: Path, names: tuple[str, ...]) -> bool:
    """Hard-link the files ``names`` of folder ``source`` into folder ``target``, unchanged;
    False, with none of them left in ``target``, where one cannot be linked (the caller then
    writes them whole)."""
    try:
        for name in names:
            os.link(source / name, target / name)
    except OSError:
        for name in names:
            (target / name).unlink(missing_ok=True)
        return False
    return True
