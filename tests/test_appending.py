"""Hard-linking a build's files into the next build: all of them, or none."""

from __future__ import annotations

from pathlib import Path

from qa.appending import link_files


def test_named_files_are_linked_unchanged(tmp_path: Path) -> None:
    source, target = tmp_path / "live", tmp_path / "next"
    source.mkdir()
    target.mkdir()
    for name in ("a.npy", "b.npy", "other.npy"):
        (source / name).write_bytes(name.encode())
    assert link_files(source, target, ("a.npy", "b.npy"))
    assert sorted(p.name for p in target.iterdir()) == ["a.npy", "b.npy"]
    assert (target / "b.npy").stat().st_ino == (source / "b.npy").stat().st_ino
    assert (target / "a.npy").read_bytes() == b"a.npy"


def test_one_that_cannot_be_linked_leaves_none(tmp_path: Path) -> None:
    source, target = tmp_path / "live", tmp_path / "next"
    source.mkdir()
    target.mkdir()
    (source / "a.npy").write_bytes(b"a")
    assert not link_files(source, target, ("a.npy", "missing.npy"))
    assert list(target.iterdir()) == []
    assert (source / "a.npy").read_bytes() == b"a"
