"""Walking a corpus folder: ids, order, hidden files, and bad files skipped with one warning."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import qa.ingest
from qa.ingest import SUPPORTED_SUFFIXES, IngestError, load_corpus, load_file, scan_corpus


def test_supported_suffixes() -> None:
    assert set(SUPPORTED_SUFFIXES) == {".txt", ".md", ".html", ".htm", ".json", ".jsonl", ".pdf"}


def test_walk_ids_order_and_hashes(tmp_path: Path) -> None:
    (tmp_path / "b" / "deep").mkdir(parents=True)
    (tmp_path / "b" / "deep" / "z.txt").write_text("Zed\n\nLast text.", encoding="utf-8")
    (tmp_path / "a.TXT").write_text("Upper suffix\n\nStill text.", encoding="utf-8")
    (tmp_path / "b" / "m.md").write_text("# Em\n\nBody.", encoding="utf-8")
    (tmp_path / ".hidden.txt").write_text("Hidden\n\nNot loaded.", encoding="utf-8")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "x.txt").write_text("Hidden folder\n\nNot loaded.", encoding="utf-8")

    docs = load_corpus(tmp_path)

    assert [d.doc_id for d in docs] == ["a.TXT", "b/deep/z.txt", "b/m.md"]
    assert [d.title for d in docs] == ["Upper suffix", "Zed", "Em"]
    for doc in docs:
        raw = (tmp_path / doc.path).read_bytes()
        assert doc.content_hash == hashlib.sha256(raw).hexdigest()


def test_walk_reads_linked_files_but_enters_no_linked_folder(tmp_path: Path) -> None:
    corpus, outside = tmp_path / "corpus", tmp_path / "outside"
    (corpus / "a" / "b").mkdir(parents=True)
    outside.mkdir()
    (outside / "far.txt").write_text("Far\n\nOutside the corpus.", encoding="utf-8")
    (corpus / "a" / "b" / "near.txt").write_text("Near\n\nInside.", encoding="utf-8")
    (corpus / "a" / "linked.txt").symlink_to(outside / "far.txt")
    (corpus / "elsewhere").symlink_to(outside, target_is_directory=True)
    (corpus / "a" / "loop").symlink_to(corpus, target_is_directory=True)

    docs, signatures = scan_corpus(corpus)

    # As os.walk without followlinks: a linked file is read, a linked folder is not entered
    # (so a link back to the corpus cannot loop).
    assert [d.doc_id for d in docs] == ["a/b/near.txt", "a/linked.txt"]
    assert set(signatures) == {"a/b/near.txt", "a/linked.txt"}
    assert signatures["a/linked.txt"][0] == (outside / "far.txt").stat().st_size
    # Files named one by one are taken as the walk takes them: none through a linked folder.
    listed, _ = scan_corpus(
        corpus, only=["a/b/near.txt", "a/linked.txt", "elsewhere/far.txt", "a/loop/a/b/near.txt"]
    )
    assert [d.doc_id for d in listed] == ["a/b/near.txt", "a/linked.txt"]


def test_bad_files_are_skipped_with_one_warning_each(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "good.txt").write_text("Good headline\n\nGood body.", encoding="utf-8")
    bad = {
        "sub/image.txt": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        "empty.txt": (b"", "no text"),
        "blank.md": (b"  \n\n\t\n", "no text"),
        "only-furniture.txt": (b"Next Story\nShare it\n|\n", "no text"),
        "broken.json": (b'{"text": "unterminated', "malformed JSON"),
        "broken.pdf": (b"%PDF-1.4\nnot really a PDF", "broken PDF"),
        "notes.docx": (b"PK\x03\x04", "unsupported"),
        "README": (b"no extension", "unsupported"),
    }
    for name, (data, _) in bad.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)

    with caplog.at_level(logging.WARNING, logger="qa.ingest"):
        docs = load_corpus(tmp_path)

    assert [d.doc_id for d in docs] == ["good.txt"]
    # One line per bad file, and nothing else: libraries' own warnings (pypdf) stay quiet.
    assert {r.name for r in caplog.records} == {"qa.ingest"}
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == len(bad)
    for name, (_, reason) in bad.items():
        [message] = [m for m in warnings if f" {name}:" in m]
        assert reason in message


def test_missing_corpus_folder(tmp_path: Path) -> None:
    with pytest.raises(NotADirectoryError):
        load_corpus(tmp_path / "nope")


_EXAMPLES = st.one_of(
    st.binary(max_size=300),
    st.text(alphabet=string.printable + "<>\\\"'u003cé’–\u00a0\u200b", max_size=300).map(
        str.encode
    ),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=_EXAMPLES, suffix=st.sampled_from(SUPPORTED_SUFFIXES))
def test_any_bytes_load_or_raise_ingest_error(tmp_path: Path, data: bytes, suffix: str) -> None:
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(data)
    try:
        docs = load_file(path, tmp_path)
    except IngestError:
        return
    for doc in docs:
        assert doc.title and doc.title == " ".join(doc.title.split())
        assert doc.text == doc.text.strip() and doc.text
        for paragraph in doc.text.split("\n\n"):
            assert paragraph and paragraph == " ".join(paragraph.split())


def test_scan_reuses_unchanged_files_without_reading_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    import qa.ingest
    from qa.ingest import scan_corpus

    (tmp_path / "a.txt").write_text("Alpha\n\nThe first article.", encoding="utf-8")
    (tmp_path / "b.txt").write_text("Beta\n\nThe second article.", encoding="utf-8")
    docs, signatures = scan_corpus(tmp_path)
    assert set(signatures) == {"a.txt", "b.txt"}
    stat = (tmp_path / "a.txt").stat()
    assert signatures["a.txt"] == (stat.st_size, stat.st_mtime_ns)
    known = {d.path: (signatures[d.path], [d]) for d in docs}

    read: list[str] = []
    real = qa.ingest.load_file

    def counting(path: Path, root: Path) -> list:
        read.append(path.name)
        return real(path, root)

    monkeypatch.setattr(qa.ingest, "load_file", counting)
    (tmp_path / "c.txt").write_text("Gamma\n\nA new article.", encoding="utf-8")
    (tmp_path / "b.txt").write_text("Beta\n\nThe second article, edited.", encoding="utf-8")
    again, _ = scan_corpus(tmp_path, known)
    assert sorted(read) == ["b.txt", "c.txt"]  # a.txt was not opened
    assert [d.doc_id for d in again] == ["a.txt", "b.txt", "c.txt"]
    assert again[0] is docs[0] and "edited" in again[1].text

    # Same size, new mtime: read again (an edit that kept the length).
    read.clear()
    os.utime(tmp_path / "a.txt", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    scan_corpus(tmp_path, known)
    assert "a.txt" in read


def test_scan_keeps_skipping_a_bad_file_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from qa.ingest import scan_corpus

    (tmp_path / "good.txt").write_text("Good\n\nText.", encoding="utf-8")
    (tmp_path / "bad.txt").write_bytes(b"\x00\x01\x02binary")
    with caplog.at_level(logging.WARNING, logger="qa.ingest"):
        docs, signatures = scan_corpus(tmp_path)
    assert [d.doc_id for d in docs] == ["good.txt"] and set(signatures) == {"good.txt"}
    assert "bad.txt" in caplog.text


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (ZeroDivisionError("division by zero"), "could not be parsed (ZeroDivisionError"),
        (RecursionError("maximum recursion depth exceeded"), "nested too deeply"),
        (MemoryError(), "out of memory"),
    ],
)
def test_any_failure_inside_a_loader_skips_only_that_file(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    error: BaseException,
    reason: str,
) -> None:
    def broken_parser(data: bytes, source: str) -> list:
        raise error

    monkeypatch.setitem(qa.ingest._LOADERS, ".html", ("html", broken_parser))
    (tmp_path / "good.txt").write_text("Good headline\n\nGood body.", encoding="utf-8")
    (tmp_path / "page.html").write_text("<p>Parsers have bugs.</p>", encoding="utf-8")
    skipped: dict[str, str] = {}

    with caplog.at_level(logging.WARNING, logger="qa.ingest"):
        docs, _ = scan_corpus(tmp_path, skipped=skipped)

    assert [d.doc_id for d in docs] == ["good.txt"]
    assert list(skipped) == ["page.html"] and skipped["page.html"].startswith(reason)
    assert [r.getMessage() for r in caplog.records] == [
        f"skipped page.html: {skipped['page.html']}"
    ]


def test_sizes_are_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(qa.ingest, "MAX_FILE_BYTES", 1_000)
    monkeypatch.setattr(qa.ingest, "MAX_DOCUMENT_CHARS", 100)
    (tmp_path / "big.txt").write_text("Big\n\n" + "word " * 300, encoding="utf-8")
    (tmp_path / "long.txt").write_text("Long\n\n" + "word " * 30, encoding="utf-8")
    records = [{"text": "Short record."}, {"text": "word " * 30}]
    (tmp_path / "mixed.jsonl").write_text(
        "\n".join(json.dumps(r) for r in records), encoding="utf-8"
    )
    skipped: dict[str, str] = {}

    with caplog.at_level(logging.WARNING, logger="qa.ingest"):
        docs, _ = scan_corpus(tmp_path, skipped=skipped)

    assert [d.doc_id for d in docs] == ["mixed.jsonl#1"]
    assert skipped == {
        "big.txt": "too large (1,505 bytes; the limit is 1,000)",
        "long.txt": "text too long (155 characters; the limit is 100)",
    }
    assert "mixed.jsonl: skipped 1 of 2 records: text too long" in caplog.text


def test_a_named_pipe_is_skipped_without_blocking(tmp_path: Path) -> None:
    (tmp_path / "good.txt").write_text("Good headline\n\nGood body.", encoding="utf-8")
    os.mkfifo(tmp_path / "pipe.txt")
    skipped: dict[str, str] = {}
    docs, _ = scan_corpus(tmp_path, skipped=skipped)
    assert [d.doc_id for d in docs] == ["good.txt"]
    assert skipped == {"pipe.txt": "not a regular file"}


def test_lone_surrogates_and_undecodable_names(tmp_path: Path) -> None:
    # JSON escapes decode to lone surrogates, which no index file could store; a name with bytes
    # that are not UTF-8 cannot be a stored id.
    (tmp_path / "s.jsonl").write_text(
        '{"title": "A \\ud800 title", "text": "Text \\udfff end."}', encoding="utf-8"
    )
    (tmp_path / "caf\udce9.txt").write_bytes(b"Headline\n\nBody.")
    skipped: dict[str, str] = {}
    [doc], _ = scan_corpus(tmp_path, skipped=skipped)
    assert (doc.title, doc.text) == ("A \ufffd title", "Text \ufffd end.")
    assert skipped == {"caf\\xe9.txt": "file name is not valid UTF-8"}


def test_scan_of_listed_files_reads_them_alone_and_keeps_the_rest_unlooked_at(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qa.ingest import corpus_relative

    for name in ("a.txt", "b.txt", "c.txt"):
        (tmp_path / name).write_text(f"{name}\n\nThe article {name}.", encoding="utf-8")
    docs, signatures = scan_corpus(tmp_path)
    known = {d.path: (signatures[d.path], [d]) for d in docs}
    (tmp_path / "a.txt").write_text("A\n\nEdited, but not listed.", encoding="utf-8")
    (tmp_path / "b.txt").unlink()
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "d.txt").write_text("D\n\nA new article.", encoding="utf-8")
    (tmp_path / ".e.txt").write_text("E\n\nHidden.", encoding="utf-8")
    # No walk of the folder and no stat of a file not listed.
    monkeypatch.setattr(qa.ingest, "_corpus_files", lambda root: pytest.fail("walked"))
    stats: list[str] = []
    real_stat = os.stat

    def counting(path, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        stats.append(os.path.basename(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", counting)
    listed = corpus_relative(tmp_path, ["b.txt", tmp_path / "new" / "d.txt", ".e.txt", "gone.txt"])
    assert listed == ["b.txt", "new/d.txt", ".e.txt", "gone.txt"]
    again, signatures = scan_corpus(tmp_path, known, only=listed)
    monkeypatch.setattr(os, "stat", real_stat)
    assert [d.doc_id for d in again] == ["a.txt", "c.txt", "new/d.txt"]
    assert again[0] is docs[0]  # a.txt kept as it was known, its edit unseen
    assert set(signatures) == {"a.txt", "c.txt", "new/d.txt"}
    assert {"b.txt", "d.txt", "gone.txt"} <= set(stats)
    assert not {"a.txt", "c.txt"} & set(stats)
    for outside in (tmp_path.parent / "x.txt", "../x.txt", tmp_path):
        with pytest.raises(ValueError, match="not a file of the corpus folder"):
            corpus_relative(tmp_path, [outside])


def test_known_files_finds_each_files_documents_as_a_map_of_every_file_would(
    tmp_path: Path,
) -> None:
    """``KnownFiles`` finds a file's documents by binary search of the ids: ids that merely
    start with a path (``a.txt.md`` after ``a.txt``), the records of a JSON Lines file
    (``b.jsonl#...``) and a file without documents are told apart as a map of every file would."""
    from qa.ingest import KnownFiles

    (tmp_path / "a.txt").write_text("A\n\nThe article a.", encoding="utf-8")
    (tmp_path / "a.txt.md").write_text("# A md\n\nAnother article.", encoding="utf-8")
    records = [{"title": f"R{n}", "text": f"Record {n} of the archive."} for n in range(3)]
    (tmp_path / "b.jsonl").write_text("\n".join(json.dumps(r) for r in records), encoding="utf-8")
    (tmp_path / "c.txt").write_text("C\n\nThe article c.", encoding="utf-8")
    docs, signatures = scan_corpus(tmp_path)
    signatures["empty.txt"] = (0, 1)  # recorded, but nothing of it indexed
    by_path: dict[str, list] = {}
    for doc in docs:
        by_path.setdefault(doc.path, []).append(doc)
    expected = {p: (signatures[p], by_path[p]) for p in signatures if p in by_path}
    known = KnownFiles(docs, signatures)
    assert len(by_path["b.jsonl"]) == 3 and dict(known) == expected
    assert "empty.txt" not in known and "a" not in known
    rest, kept = known.rest({"a.txt", "b.jsonl"})
    assert [d.doc_id for d in rest] == ["a.txt.md", "c.txt"]
    assert set(kept) == {"a.txt.md", "c.txt", "empty.txt"}
    (tmp_path / "a.txt").write_text("A\n\nEdited.", encoding="utf-8")
    listed = ["a.txt", "b.jsonl"]
    fast, fast_signatures = scan_corpus(tmp_path, known, only=listed)
    plain, plain_signatures = scan_corpus(tmp_path, expected, only=listed)
    assert fast == plain
    # A recorded file without documents keeps its signature, as a walk of the folder keeps it
    # (the map made of every file has no entry to carry it by).
    assert fast_signatures == {**plain_signatures, "empty.txt": (0, 1)}
    assert next(d for d in fast if d.doc_id == "a.txt").text.endswith("Edited.")
