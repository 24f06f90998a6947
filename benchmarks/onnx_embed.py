"""The int8 copy of all-MiniLM-L6-v2 (built into the user's cache) against the torch model.

The ONNX file holds the transformer only; tokenisation uses the packaged torch model's
tokenizer, and pooling (mean over real tokens, then L2 norm) is the product's
``OnnxQueryEncoder``, as the sentence-transformers model does it, so both produce comparable
unit vectors. Quality is compared by cosine agreement on the same texts and by retrieval recall
on xquad-dev; speed by batch throughput on chunk texts and by single-query latency, interleaved
under the same load.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import load, median_of_runs, summarize


class OnnxEmbedder:
    """Duck-types ``qa.embedding.Embedder`` (name, dimension, tokenizer, encode, encode_query).

    Batches of texts, longest first as sentence-transformers does, through the product's
    ``OnnxQueryEncoder`` (which embeds one question at a time in the product).

    Args:
        model_dir: The packaged sentence-transformers folder (for ``tokenizer.json``).
        onnx_file: The int8 ONNX model (named in ``name``).
        batch_size: Texts per inference call.
        threads: onnxruntime intra-op threads (default: all cores, as torch uses).
    """

    dimension = 384

    def __init__(
        self, model_dir: Path, onnx_file: Path, batch_size: int = 32, threads: int | None = None
    ) -> None:
        from transformers import AutoTokenizer

        from qa.embedding import OnnxQueryEncoder, frozen_tokenizer

        self.name = f"{onnx_file.name} (int8 ONNX of all-MiniLM-L6-v2)"
        self.batch_size = batch_size
        # The product's chunker counts tokens with a Hugging Face tokenizer: give it the same one.
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        self._encoder = OnnxQueryEncoder(
            onnx_file,
            frozen_tokenizer(self.tokenizer, max_length=_max_seq_length(model_dir)),
            threads=threads or os.cpu_count() or 1,
        )

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """Unit vectors for ``texts``, batched by length as sentence-transformers does."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        order = np.argsort([-len(t) for t in texts], kind="stable")
        for i in range(0, len(texts), self.batch_size):
            rows = order[i : i + self.batch_size]
            out[rows] = self._encoder.encode([texts[r] for r in rows])
        return out

    def encode_query(self, text: str) -> np.ndarray:
        return self.encode([text])[0]


def _max_seq_length(model_dir: Path) -> int:
    """The word pieces the sentence-transformers model keeps (its ``sentence_bert_config``)."""
    config = json.loads((model_dir / "sentence_bert_config.json").read_text(encoding="utf-8"))
    return int(config["max_seq_length"])


def model_paths() -> tuple[Path, Path]:
    """The packaged torch model folder and the int8 ONNX file the product builds from it.

    The int8 file is built into the cache first where it is not there yet (it raises
    ``QueryEncoderBuildError`` where it cannot be built: a benchmark of it needs it).
    """
    from qa.models import embedding_model_dir
    from qa.models.query_encoder import query_encoder_file

    return embedding_model_dir(), query_encoder_file("int8")


def compare(
    torch_embedder: Any, onnx_embedder: Any, texts: Sequence[str], queries: Sequence[str], runs: int
) -> dict[str, Any]:
    """Throughput, query latency and cosine agreement of two embedders on the same texts."""
    a = torch_embedder.encode(list(texts))
    b = onnx_embedder.encode(list(texts))
    cosines = np.sum(a * b, axis=1)
    out: dict[str, Any] = {
        "texts": len(texts),
        "cosine_mean": round(float(cosines.mean()), 5),
        "cosine_min": round(float(cosines.min()), 5),
        "load": load(),
    }
    throughput: dict[str, list[float]] = {"torch": [], "onnx": []}
    latency: dict[str, list[dict[str, float]]] = {"torch": [], "onnx": []}
    for _ in range(runs):
        for name, emb in (("torch", torch_embedder), ("onnx", onnx_embedder)):
            started = time.perf_counter()
            emb.encode(list(texts))
            throughput[name].append(len(texts) / (time.perf_counter() - started))
            single = []
            for q in queries:
                started = time.perf_counter()
                # ``encode``, not ``encode_query``: the product's embedder memoises queries.
                emb.encode([q])
                single.append(time.perf_counter() - started)
            latency[name].append(summarize(single))
    for name in ("torch", "onnx"):
        out[f"{name}_chunks_per_s"] = round(float(np.median(throughput[name])), 2)
        out[f"{name}_query"] = median_of_runs(latency[name])
    out["speedup_batch"] = round(out["onnx_chunks_per_s"] / out["torch_chunks_per_s"], 3)
    out["speedup_query_p50"] = round(out["torch_query"]["p50_ms"] / out["onnx_query"]["p50_ms"], 3)
    return out
