"""Uploads land in the corpus folder only, under safe names, within limits; removal is confined."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from qa.ingest import SUPPORTED_SUFFIXES
from qa.web.uploads import (
    UploadRefused,
    corpus_files,
    discard_uploaded,
    remove_files,
    safe_filename,
    save_upload,
)

MB = 2**20
ARTICLE = b"The Zorblat festival\n\nThe Zorblat festival takes place in Quenton every May.\n"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("news.txt", "news.txt"),
        ("../../etc/passwd.txt", "passwd.txt"),
        ("/etc/cron.d/job.md", "job.md"),
        ("..\\..\\Windows\\evil.HTML", "evil.html"),
        (".hidden.txt", "hidden.txt"),
        ("...txt.txt", "txt.txt"),
        ("a b<c>|d?.txt", "a_b_c_d_.txt"),
        ("report\x00\n.txt", "report.txt"),
        ("ｆｕｌｌ.txt", "full.txt"),  # NFKC folds full-width letters
        ("Été 2019.pdf", "Été_2019.pdf"),
        ("x" * 300 + ".jsonl", "x" * 100 + ".jsonl"),
    ],
)
def test_safe_filename(given: str, expected: str) -> None:
    name = safe_filename(given)
    assert name == expected
    assert "/" not in name and "\\" not in name and not name.startswith(".")
    assert Path(name).suffix in SUPPORTED_SUFFIXES


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("evil.exe", "not supported"),
        ("script.txt.sh", "not supported"),
        ("README", "no extension"),
        (".txt", "no usable characters"),
        ("../", "no extension"),
        ("...", "not supported"),
        ("<>.md", "no usable characters"),
    ],
)
def test_safe_filename_refuses(given: str, reason: str) -> None:
    with pytest.raises(UploadRefused, match=reason):
        safe_filename(given)


def _upload(tmp_path: Path, name: str, data: bytes) -> Path:
    """Bytes in a temporary file as Gradio keeps an upload (original name in its own folder)."""
    folder = tmp_path / "gradio" / str(len(list((tmp_path).glob("gradio/*"))))
    folder.mkdir(parents=True)
    path = folder / Path(name.replace("\\", "/")).name
    path.write_bytes(data)
    return path


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    root.mkdir()
    (root / "old.txt").write_bytes(b"Old news\n\nSomething happened once.\n")
    return root


def test_upload_is_saved_into_the_corpus(tmp_path: Path, corpus: Path) -> None:
    source = _upload(tmp_path, "zorblat.txt", ARTICLE)
    outcome = save_upload(source, "../zorblat.txt", corpus, 20 * MB)
    assert outcome.ok and outcome.path == "zorblat.txt"
    assert (corpus / "zorblat.txt").read_bytes() == ARTICLE
    assert "added to the corpus as zorblat.txt" in outcome.message
    assert not (tmp_path / "zorblat.txt").exists()


def test_name_clash_keeps_both_files_and_says_so(tmp_path: Path, corpus: Path) -> None:
    first = save_upload(_upload(tmp_path, "old.txt", ARTICLE), "old.txt", corpus, MB)
    assert first.ok and first.path == "old-2.txt"
    assert "a different file already has that name" in first.message
    assert (corpus / "old.txt").read_bytes().startswith(b"Old news")  # not overwritten
    again = save_upload(_upload(tmp_path, "old.txt", ARTICLE + b"More.\n"), "old.txt", corpus, MB)
    assert again.path == "old-3.txt"


def test_identical_file_is_skipped(tmp_path: Path, corpus: Path) -> None:
    data = (corpus / "old.txt").read_bytes()
    outcome = save_upload(_upload(tmp_path, "old.txt", data), "old.txt", corpus, MB)
    assert not outcome.ok and "already in the corpus as old.txt" in outcome.message
    assert sorted(p.name for p in corpus.iterdir()) == ["old.txt"]


def test_a_link_in_the_corpus_is_never_written_through(tmp_path: Path, corpus: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"precious\n")
    (corpus / "trap.txt").symlink_to(outside)
    outcome = save_upload(_upload(tmp_path, "trap.txt", ARTICLE), "trap.txt", corpus, MB)
    assert outcome.ok and outcome.path == "trap-2.txt"
    assert outside.read_bytes() == b"precious\n"


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("big.txt", b"x" * (MB + 1), "larger than the limit of 1.0 MB"),
        ("empty.txt", b"", "the file is empty"),
        ("blank.txt", b"   \n\n  ", "cannot be read"),
        ("broken.pdf", b"%PDF-1.4 this is not a pdf", "cannot be read"),
        ("program.exe", ARTICLE, "files of type .exe are not supported"),
        ("data.json", b"{not json", "cannot be read"),
    ],
)
def test_refused_uploads_say_why_and_write_nothing(
    tmp_path: Path, corpus: Path, name: str, data: bytes, reason: str
) -> None:
    outcome = save_upload(_upload(tmp_path, name, data), name, corpus, MB)
    assert not outcome.ok and outcome.path is None
    assert outcome.message.startswith(f"{name}: refused, ")
    assert reason in outcome.message
    assert sorted(p.name for p in corpus.iterdir()) == ["old.txt"]


def test_corpus_files_lists_what_ingestion_reads(corpus: Path) -> None:
    (corpus / ".hidden.txt").write_text("x", encoding="utf-8")
    (corpus / "notes.exe").write_text("x", encoding="utf-8")
    (corpus / ".git").mkdir()
    (corpus / ".git" / "x.txt").write_text("x", encoding="utf-8")
    (corpus / "sub").mkdir()
    (corpus / "sub" / "b.MD").write_text("# b\n\nbody", encoding="utf-8")
    assert corpus_files(corpus) == ["old.txt", "sub/b.MD"]


def test_remove_deletes_only_corpus_files(tmp_path: Path, corpus: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("keep", encoding="utf-8")
    (corpus / ".hidden.txt").write_text("keep", encoding="utf-8")
    outcomes = remove_files(["old.txt", "../outside.txt", str(outside), ".hidden.txt"], corpus)
    assert [o.ok for o in outcomes] == [True, False, False, False]
    assert "not a file of the corpus" in outcomes[1].message
    assert not (corpus / "old.txt").exists()
    assert outside.exists() and (corpus / ".hidden.txt").exists()
    assert os.listdir(corpus) == [".hidden.txt"]


def test_discard_uploaded_deletes_the_copies_and_their_empty_folders(tmp_path: Path) -> None:
    uploads = tmp_path / "uploads"
    first, second = uploads / "a1" / "news.txt", uploads / "b2" / "c3" / "more.txt"
    shared = uploads / "d4" / "one.txt"
    for path in (first, second, shared, shared.with_name("two.txt")):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(ARTICLE)
    outside = tmp_path / "corpus" / "keep.txt"
    outside.parent.mkdir()
    outside.write_bytes(ARTICLE)
    crafted = uploads / ".." / "corpus" / "keep.txt"
    discard_uploaded([first, second, shared, outside, crafted, uploads / "gone.txt"], uploads)
    assert sorted(p.relative_to(uploads).as_posix() for p in uploads.rglob("*")) == [
        "d4",
        "d4/two.txt",  # the folder another upload still uses stays
    ]
    assert outside.read_bytes() == ARTICLE  # nothing outside the upload folder is touched
