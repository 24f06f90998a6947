"""The seed articles shipped in the package, and starting a new corpus folder from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.seed import SEED_CORPUS, SEED_SET, copy_seed_corpus

from .conftest import REPO, SEED_IDS


def test_the_package_ships_the_seed_articles_and_questions() -> None:
    assert sorted(p.name for p in SEED_CORPUS.iterdir()) == sorted(SEED_IDS)
    assert SEED_SET.read_text(encoding="utf-8").count("\n") > 10


def test_a_checkout_reads_the_same_articles_and_set() -> None:
    for name in SEED_IDS:
        assert (REPO / "corpus" / name).read_bytes() == (SEED_CORPUS / name).read_bytes()
    assert (REPO / "eval" / "seed.jsonl").read_bytes() == SEED_SET.read_bytes()


def test_copy_seed_corpus_creates_a_folder_of_copies(tmp_path: Path) -> None:
    copied = copy_seed_corpus(tmp_path / "corpus")
    assert sorted(p.name for p in copied) == sorted(SEED_IDS)
    assert all(not p.is_symlink() for p in copied)
    assert copied[0].read_bytes() == (SEED_CORPUS / copied[0].name).read_bytes()


def test_copy_seed_corpus_never_touches_an_existing_folder(tmp_path: Path) -> None:
    (tmp_path / "corpus").mkdir()
    with pytest.raises(FileExistsError):
        copy_seed_corpus(tmp_path / "corpus")
    assert not any((tmp_path / "corpus").iterdir())
