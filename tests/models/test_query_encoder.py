"""Building the question encoders (fp32, int8) into the cache: once, atomically, checked on
every load.

A stand-in export (a few bytes, after a pause) replaces the real one here, so that these tests
show the cache's rules in a second each; the real build is shown by tests/test_embedding.py.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from qa.models import checksums, export_query_encoder, query_encoder
from qa.models.query_encoder import QueryEncoderBuildError, query_encoder_file

from ..conftest import REPO


class FakeExport:
    """Writes a stand-in graph after ``pause`` seconds, counting its calls."""

    def __init__(self, pause: float = 0.0) -> None:
        self.pause = pause
        self.calls = 0
        self.precisions: list[str] = []

    def __call__(self, target: Path, source: Path, precision: str) -> dict[str, object]:
        self.calls += 1
        self.precisions.append(precision)
        time.sleep(self.pause)
        target.write_bytes(b"int8 graph " * 1000)
        return {"source_sha256": "stand-in"}


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("QA_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _patch_export(monkeypatch: pytest.MonkeyPatch, fake: object) -> None:
    monkeypatch.setattr(export_query_encoder, "export", fake)


def test_the_cache_follows_qa_cache_dir_and_is_keyed_by_weights_and_recipe(cache: Path) -> None:
    weights = checksums.recorded()["all-MiniLM-L6-v2/model.safetensors"]
    assert query_encoder.cache_dir() == cache
    for precision, version in export_query_encoder.RECIPE_VERSIONS.items():
        key = query_encoder.cache_key(precision)
        assert key.startswith(weights[:16]) and key.endswith(f"recipe{version}")


def test_a_build_writes_the_file_its_digest_and_what_made_it(
    cache: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeExport()
    _patch_export(monkeypatch, fake)
    with caplog.at_level(logging.WARNING):
        path = query_encoder_file()
    assert path == cache / "minilm-fp32" / query_encoder.cache_key() / "model.onnx"
    digest = checksums.sha256(path)
    assert (path.parent / "model.onnx.sha256").read_text(
        encoding="utf-8"
    ) == f"{digest}  model.onnx\n"
    assert json.loads((path.parent / "build.json").read_text(encoding="utf-8"))["sha256"] == digest
    assert [r.getMessage() for r in caplog.records if "building" in r.getMessage()] == [
        f"building the fp32 question encoder (once, ~{query_encoder.BUILD_SECONDS} s) "
        f"into {path.parent}"
    ]
    assert not list(path.parent.glob("*.tmp"))
    assert query_encoder_file() == path and fake.calls == 1  # used as it is from now on


def test_a_corrupted_cached_file_is_rebuilt_with_a_warning(
    cache: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeExport()
    _patch_export(monkeypatch, fake)
    path = query_encoder_file()
    good = path.read_bytes()
    damaged = bytearray(good)
    damaged[len(damaged) // 2] ^= 0xFF
    path.write_bytes(bytes(damaged))
    with caplog.at_level(logging.WARNING):
        assert query_encoder_file() == path
    assert fake.calls == 2 and path.read_bytes() == good
    assert any("differs from the SHA-256" in r.getMessage() for r in caplog.records)


@pytest.fixture
def built(cache: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[FakeExport, Path]:
    """A question encoder built into the cache by a stand-in export, and that export."""
    fake = FakeExport()
    _patch_export(monkeypatch, fake)
    return fake, query_encoder_file()


def test_a_checked_file_is_not_read_again_until_it_is_written_to(
    built: tuple[FakeExport, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, path = built
    hashed: list[Path] = []
    real_sha256 = checksums.sha256

    def counting(target: Path) -> str:
        hashed.append(target)
        return real_sha256(target)

    monkeypatch.setattr(checksums, "sha256", counting)
    query_encoder_file()  # the first load after the build checks it in full...
    query_encoder_file()  # ...the next ones trust its recorded stamp
    assert hashed == [path] and fake.calls == 1
    # Rewritten with the same bytes: a new mtime, so it is read and checked again (after a
    # pause longer than the file system clock's tick, which may be a few milliseconds).
    time.sleep(0.05)
    path.write_bytes(path.read_bytes())
    query_encoder_file()
    assert hashed == [path, path] and fake.calls == 1
    # Damaged with its size kept and its stamp file left behind: the new mtime gives it away.
    damaged = bytearray(path.read_bytes())
    damaged[0] ^= 0xFF
    time.sleep(0.05)
    path.write_bytes(bytes(damaged))
    query_encoder_file()
    assert fake.calls == 2 and path.read_bytes() != bytes(damaged)


def test_a_file_without_its_digest_is_built_again(built: tuple[FakeExport, Path]) -> None:
    fake, path = built
    (path.parent / "model.onnx.sha256").unlink()  # as a build stopped before recording it
    query_encoder_file()
    assert fake.calls == 2 and (path.parent / "model.onnx.sha256").is_file()


def test_two_threads_asking_at_once_build_it_once(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeExport(pause=0.5)
    _patch_export(monkeypatch, fake)
    start = threading.Barrier(2)
    paths: list[Path] = []

    def ask() -> None:
        start.wait()
        paths.append(query_encoder_file())

    threads = [threading.Thread(target=ask) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert fake.calls == 1
    assert len(paths) == 2 and paths[0] == paths[1] and paths[0].is_file()


SECOND_PROCESS = """
import sys, time
from qa.models import export_query_encoder, query_encoder

def export(target, source, precision):
    with open(sys.argv[1], "a") as calls:
        calls.write("built\\n")
    time.sleep(2.0)
    target.write_bytes(b"int8 graph")
    return {}

export_query_encoder.export = export
print(query_encoder.query_encoder_file())
"""


def test_a_second_process_waits_for_the_build_and_uses_it(cache: Path, tmp_path: Path) -> None:
    calls = tmp_path / "calls.txt"
    command = [sys.executable, "-c", SECOND_PROCESS, str(calls)]
    procs = [
        subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert calls.read_text(encoding="utf-8") == "built\n"
    assert outputs[0][0] == outputs[1][0] and outputs[0][0].strip().endswith(b"model.onnx")
    notices = b"".join(err for _, err in outputs).count(b"building the fp32 question encoder")
    assert notices == 1


def test_an_export_that_cannot_run_says_why_and_leaves_nothing(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def missing_onnx(target: Path, source: Path, precision: str) -> dict[str, object]:
        target.write_bytes(b"half a graph")
        raise ModuleNotFoundError("No module named 'onnx'")

    _patch_export(monkeypatch, missing_onnx)
    with pytest.raises(QueryEncoderBuildError, match="No module named 'onnx'"):
        query_encoder_file()
    folder = cache / "minilm-fp32" / query_encoder.cache_key()
    assert sorted(p.name for p in folder.iterdir()) == [".lock"]


def test_the_command_writes_into_a_named_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeExport()
    _patch_export(monkeypatch, fake)
    export_query_encoder.main(["--precision", "int8", "--out", str(tmp_path / "int8")])
    assert fake.precisions == ["int8"]
    assert capsys.readouterr().out == f"written: {tmp_path / 'int8' / 'model.onnx'}\n"
    assert {p.name for p in (tmp_path / "int8").iterdir()} >= {
        "model.onnx",
        "model.onnx.sha256",
        "build.json",
    }


def test_each_precision_is_built_into_a_folder_of_its_own(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeExport()
    _patch_export(monkeypatch, fake)
    fp32, int8 = query_encoder_file(), query_encoder_file("int8")
    assert fake.precisions == ["fp32", "int8"]
    assert fp32.parent.parent.name == "minilm-fp32" and int8.parent.parent.name == "minilm-int8"
    assert query_encoder_file("fp32") == fp32 and fake.calls == 2


class ExportWithWeights(FakeExport):
    """Writes a stand-in graph and, beside it, its weights file (as ``weights_beside`` does)."""

    def __call__(self, target: Path, source: Path, precision: str) -> dict[str, object]:
        built = super().__call__(target, source, precision)
        target.with_name(target.name + ".data").write_bytes(b"weights " * 4000)
        return built


def test_files_built_beside_the_file_are_moved_in_with_it_and_checked_with_it(
    cache: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    fake = ExportWithWeights()
    _patch_export(monkeypatch, fake)
    path = query_encoder_file()
    data = path.with_name("model.onnx.data")
    assert data.read_bytes() == b"weights " * 4000
    assert (path.parent / "model.onnx.sha256").read_text(encoding="utf-8") == (
        f"{checksums.sha256(path)}  model.onnx\n{checksums.sha256(data)}  model.onnx.data\n"
    )
    assert json.loads((path.parent / "build.json").read_text(encoding="utf-8"))["files"] == {
        "model.onnx": checksums.sha256(path),
        "model.onnx.data": checksums.sha256(data),
    }
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".build")]
    assert query_encoder_file() == path and fake.calls == 1
    # The weights damaged (a new mtime, the graph untouched): built again, with a warning.
    damaged = bytearray(data.read_bytes())
    damaged[7] ^= 0xFF
    time.sleep(0.05)
    data.write_bytes(bytes(damaged))
    with caplog.at_level(logging.WARNING):
        query_encoder_file()
    assert fake.calls == 2 and data.read_bytes() == b"weights " * 4000
    assert any("differs from the SHA-256" in r.getMessage() for r in caplog.records)
    # The weights gone: built again.
    data.unlink()
    query_encoder_file()
    assert fake.calls == 3 and data.is_file()


def test_a_digest_file_naming_another_folder_is_not_trusted(
    built: tuple[FakeExport, Path],
) -> None:
    fake, path = built
    digests = path.parent / "model.onnx.sha256"
    digests.write_text(
        digests.read_text(encoding="utf-8") + f"{'0' * 64}  ../elsewhere.data\n", encoding="utf-8"
    )
    query_encoder_file()
    assert fake.calls == 2 and digests.read_text(encoding="utf-8").count("\n") == 1
