"""The recorded SHA-256 of every packaged model file, and refusing a file that differs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from qa.models import READER_DIR, checksums
from qa.models.checksums import ModelFileError


def _corrupted_copy(source: Path, target: Path, name: str) -> Path:
    """A copy of a model folder with one byte of ``name`` changed."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("checkpoints"))
    damaged = target / name
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    return target


@pytest.mark.parametrize("model", sorted(checksums.MODELS))
def test_every_shipped_model_file_matches_its_recorded_digest(model: str) -> None:
    names = {n.split("/", 1)[1] for n in checksums.recorded() if n.startswith(f"{model}/")}
    assert names == set(checksums.MODELS[model][1])
    checksums.verify(model)


def test_a_corrupted_reader_file_is_refused_with_its_name(tmp_path: Path) -> None:
    copy = _corrupted_copy(READER_DIR, tmp_path / "reader", "model.safetensors")
    with pytest.raises(ModelFileError, match=r"model 'reader' refused: model\.safetensors"):
        checksums.verify("reader", copy)


def test_load_reader_refuses_a_corrupted_packaged_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qa.reading import transformer

    copy = _corrupted_copy(READER_DIR, tmp_path / "reader", "tokenizer.json")
    monkeypatch.setattr(transformer, "READER_DIR", copy)
    monkeypatch.setattr(transformer, "DEFAULT_READER_DIR", copy)
    with pytest.raises(ModelFileError, match="tokenizer.json"):
        transformer.load_reader("default")


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    copy = tmp_path / "reader"
    copy.mkdir()
    with pytest.raises(ModelFileError, match="model.safetensors, tokenizer.json"):
        checksums.verify("reader", copy)


def test_a_file_replaced_in_place_is_hashed_again(tmp_path: Path) -> None:
    folder = tmp_path / "reader"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"first")
    sums = tmp_path / "SHA256SUMS"
    sums.write_text(
        f"{checksums.sha256(folder / 'model.safetensors')}  reader/model.safetensors\n",
        encoding="utf-8",
    )
    checksums.verify("reader", folder, sums_file=sums)
    (folder / "model.safetensors").write_bytes(b"other")  # same size, new content
    with pytest.raises(ModelFileError, match="refused"):
        checksums.verify("reader", folder, sums_file=sums)


def test_only_packaged_models_are_listed() -> None:
    # The ONNX question encoders are built on each machine (qa.models.query_encoder), not shipped.
    assert {name.split("/", 1)[0] for name in checksums.recorded()} == {
        "reader",
        "all-MiniLM-L6-v2",
    }


def test_write_records_what_verify_then_accepts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "reader"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(b"\x00\x01")
    monkeypatch.setattr(checksums, "MODELS", {"reader": (lambda: folder, ("weights.bin",))})
    sums = tmp_path / "SHA256SUMS"
    written = checksums.write(sums)
    assert list(written) == ["reader/weights.bin"]
    assert (
        sums.read_text(encoding="utf-8") == f"{written['reader/weights.bin']}  reader/weights.bin\n"
    )
    checksums.verify("reader", sums_file=sums)
