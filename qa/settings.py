"""Every knob of the product in one dataclass, with its default.

Values come from, in order of precedence: explicit arguments (CLI flags, the Python API), then
environment variables named ``QA_<FIELD>`` (``QA_TOP_K=10``), then the defaults below.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal, get_args, get_type_hints

RetrievalMode = Literal["hybrid", "dense", "lexical"]
FaissKind = Literal["auto", "flat", "hnsw", "ivfpq"]
IvfpqRefine = Literal["fp16", "flat"]
FlatPrecision = Literal["fp16", "fp32"]
#: Kept here, not imported from qa.embedding, so reading settings imports no model code.
QueryEncoderKind = Literal["auto", "torch", "onnx-fp32", "onnx-int8", "onnx-int8-blocks"]
ReaderPrecision = Literal["auto", "fp32", "bf16"]
ReaderRuntime = Literal["auto", "onnx-int8", "onnx-fp32", "openvino", "torch"]
Agreement = Literal["off", "noisy-or"]
Fusion = Literal["convex", "rrf"]
Engine = Literal["local", "ray"]
#: The settings that take one of a fixed set of values, with the type that lists them.
CHOICES: dict[str, Any] = {
    "retrieval_mode": RetrievalMode,
    "fusion": Fusion,
    "query_encoder": QueryEncoderKind,
    "reader_precision": ReaderPrecision,
    "reader_runtime": ReaderRuntime,
    "faiss_index": FaissKind,
    "ivfpq_refine": IvfpqRefine,
    "flat_precision": FlatPrecision,
    "agreement": Agreement,
    "engine": Engine,
}
#: Most answers one question may ask for (settings, Python API, CLI and web page alike).
MAX_ANSWERS = 20

#: Where the articles and the index live by default: in the current folder, wherever ``qa`` is
#: installed (``QA_CORPUS_DIR`` / ``QA_INDEX_DIR`` or ``--corpus`` / ``--index`` move them).
DEFAULT_CORPUS_DIR = Path("corpus")
DEFAULT_INDEX_DIR = Path("index")


def _number_in(value: object, kind: type, low: float, high: float) -> bool:
    """Whether ``value`` is a finite number of ``kind`` (not a bool) from ``low`` to ``high``."""
    return (
        isinstance(value, kind)
        and not isinstance(value, bool)
        and math.isfinite(value)  # type: ignore[arg-type]
        and low <= value <= high  # type: ignore[operator]
    )


def check_n_answers(value: object, label: str = "n_answers") -> None:
    """Refuse an answer count that is not a whole number from 1 to ``MAX_ANSWERS``.

    Settings and every request (``qa.pipeline.check_request``) check with this one rule;
    ``label`` names the value in the message.
    """
    if not _number_in(value, numbers.Integral, 1, MAX_ANSWERS):
        raise ValueError(f"{label} must be a whole number from 1 to {MAX_ANSWERS}, got {value!r}")


def check_threshold(value: object, label: str = "threshold") -> None:
    """Refuse a threshold that is not a finite number from 0 to 1 (settings and requests)."""
    if not _number_in(value, numbers.Real, 0, 1):
        raise ValueError(f"{label} must be a number from 0 to 1, got {value!r}")


@dataclass(frozen=True)
class Settings:
    """Settings of indexing and asking.

    Attributes:
        corpus_dir: Folder of source articles (default ``./corpus``, of the current folder).
        index_dir: Folder holding built indexes (``index_dir/current`` is the live one; default
            ``./index``).
        embedding_model: ``"default"`` (the packaged all-MiniLM-L6-v2, offline), a local folder,
            or a hub id (needs network access).
        chunk_size: Chunk length in tokens of the embedding model's tokenizer. Tokens, not
            characters, because the embedding model truncates at 256 word pieces: counting in
            its own tokens guarantees nothing of a chunk is silently dropped when embedding.
            128 is the length all-MiniLM-L6-v2 was trained on, about 90 words: two to four
            news sentences, specific enough for retrieval, whole enough to hold an answer.
        chunk_overlap: Tokens shared by consecutive chunks, so an answer near a boundary is
            whole in at least one chunk.
        retrieval_mode: ``hybrid`` (dense + BM25, fused as ``fusion`` says), ``dense`` or
            ``lexical``.
        top_k: Passages returned by retrieval.
        fusion: How ``hybrid`` fuses the two lists: ``convex`` (each list's scores scaled to
            0..1 over its candidates, then ``dense_weight`` x cosine + the rest x BM25) or
            ``rrf`` (reciprocal rank, ``rrf_k``). Chosen on qa-val and a sample of qa-train
            (eval/RESULTS.md): convex at 0.5 found the question's paragraph in the top 5 for
            98.9 % of qa-val (rrf 97.7 %) and 97.4 % of 3,000 SQuAD-train questions (rrf
            96.8 %), and first more often on both.
        dense_weight: The weight of the cosine in ``convex`` fusion, from 0 (BM25 alone) to 1.
        rrf_k: The constant of reciprocal rank fusion (60, as in Cormack et al. 2009).
        candidates: How many hits each retriever contributes before fusion.
        faiss_index: ``flat`` (exact), ``hnsw`` (approximate), ``ivfpq`` (approximate and
            compressed, 48 bytes a vector), or ``auto`` (exact below ``hnsw_threshold``
            vectors, HNSW above, IVF-PQ above ``ivfpq_threshold``).
        hnsw_threshold: Vector count above which ``auto`` switches to HNSW. Exact search reads
            every vector, about 1.2 ms per 10,000 for one query on 2 cores (benchmarks/), so at
            50,000 it takes some 6 ms, a third of the 15 ms search budget; HNSW answers in
            about 2 ms at 10^5 vectors, finding 0.95 of the exact top 10 there.
        ivfpq_threshold: Vector count above which ``auto`` switches to IVF-PQ: past 10^5 an
            HNSW graph (efConstruction 64) finds less than 0.95 of the exact top 10 on vectors
            without topic clusters (0.90 at 2 x 10^5 and efSearch 256, 0.91 at 10^6 and 1,024)
            and takes minutes to build (12 at 10^6 on 2 cores), where IVF-PQ re-ranked finds
            0.97 at both sizes (3 to 5 and 14 to 17 ms), builds in 25 s and 90 s, holds a
            vector in about 830 bytes against 1.8 KB, and takes new vectors without a graph
            to insert them into (benchmarks/RESULTS.md, "Ten to the sixth").
        ivfpq_k_factor: How deep an IVF-PQ search re-ranks: its codes' best ``k`` times this
            are ranked again by their kept vectors, of which the best ``k`` are returned. On
            10^6 vectors without topic clusters, 10 stopped at 0.93 of the exact top 10 and
            20 found 0.97 (on real chunk vectors 10 already finds 0.99). A search at depth 50
            re-ranks 1,000 vectors.
        ivfpq_refine: What an IVF-PQ index keeps to re-rank by: ``fp16``, every vector in half
            precision (768 bytes a 384-d vector; its cosines within about 1e-3 of the exact
            ones), or ``flat``, the float32 vectors (1,536 bytes). At 2 million chunks a shard,
            1.5 GB against 3.1 GB of memory.
        flat_precision: How an exact (``flat``) index holds the chunk vectors: ``fp16``, in
            half precision (768 bytes a 384-d vector; a search reads half the memory, 1.0
            against 1.9 ms for BBC's 13,187 chunks on one core, and finds 0.999 of the float32
            top 10), or ``fp32`` (1,536 bytes; every cosine exact). The exact tail of an index
            updated in place holds its vectors as its index does. An update after a change of
            this setting makes the FAISS index anew from the vectors the old one held (so from
            ``fp16`` to ``fp32`` they stay rounded until ``qa index --rebuild``).
        compact_at: Share of the chunk table's rows an update in place may leave masked.
            An update adds new chunks to the live index's FAISS index and tables and masks the
            rows of removed and changed documents (``qa.indexing.build``); one that would leave
            this share of rows masked, or more, compacts instead: makes the FAISS index and
            tables anew from the live rows alone (no embedding), numbering them afresh. Masked
            rows cost memory and make every search pass a mask; 0 compacts on every update.
        batch_size: Embedding batch size.
        query_encoder: What embeds questions: ``auto`` (when the default model is in use,
            ``onnx-int8-blocks`` where the CPU has AVX512-VNNI and ``onnx-fp32`` elsewhere;
            else torch), ``onnx-fp32`` (the ONNX copy of the default model in float32, built
            into the user's cache on first use and run by onnxruntime: the model's own
            vectors), ``onnx-int8`` (its copy with int8 linear layers: a question in about 0.75
            of fp32's time, vectors at cosine 0.99 to 0.98 of the model's, which moved one
            xquad-dev question of 1,090 out of the dense top 5), ``onnx-int8-blocks`` (int8
            weights and activations in blocks of 128: vectors at cosine 0.9992 of the model's
            on average, 1.5 ms a question faster than fp32 with AVX512-VNNI) or ``torch``.
            Documents are always embedded by the model itself.
        reader_model: ``"default"`` (the packaged reader), ``"none"`` (sentence fallback only),
            a local folder, or a hub id of a ``*ForQuestionAnswering`` checkpoint.
        max_answer_tokens: Longest answer span the reader may return, in word pieces.
        n_answers: How many answers (the best plus alternatives) ``ask`` returns.
        threshold: Answer score below which ``ask`` abstains; ``None`` uses the mode's
            recommended value recorded with the reader.
        read_passages: How many retrieved passages the reader reads, each whole. Chosen on
            qa-val with the reading time beside the F1 (figures in eval/RESULTS.md): more
            passages gained too little F1 for the time they cost.
        stop_reading_at: Answer score from which the reader stops after the text holding the
            best-ranked passage, leaving the other passages unread; ``1`` reads every passage
            for every question. Chosen on qa-val (``python -m benchmarks.early_stop``, figures
            in eval/RESULTS.md): 0.4 read 1.98 texts a question instead of 2.64 with F1 0.696
            instead of 0.689 and the same abstention, and a warm BBC ``ask`` takes 0.43 of the
            time (``benchmarks/reading_latency.py``).
        max_upload_mb: Largest file the web page accepts as an upload, in megabytes.
        reader_precision: How the reader computes: ``auto`` (bfloat16 where the CPU computes
            it natively, AVX512-BF16 or AMX, about twice as fast with the same qa-val F1;
            float32 elsewhere, where bfloat16 is emulated and slow), ``fp32`` or ``bf16``.
            For the torch runtime only.
        reader_runtime: What runs the reader: ``auto`` (the ONNX copy of the packaged reader,
            built into the user's cache on first use and run by onnxruntime, so asking imports
            no torch; where the CPU has AMX, that copy compiled by OpenVINO in bfloat16; torch
            for any other reader, for ``reader_precision=bf16``, and where the ONNX copy cannot
            be built), ``onnx-int8``, ``onnx-fp32``, ``openvino`` (packaged reader only) or
            ``torch``. ``auto`` reads with the fp32 copy (torch's spans); ``onnx-int8``
            (linear layers in int8) reads about 1.45 times as fast on two AVX2 cores and loses
            1.6 qa-val F1 points; ``openvino`` computes in bfloat16 where the CPU has AMX (2.3
            times as fast as ``onnx-fp32`` there, the same qa-val F1), in float32 elsewhere.
        agreement: How an answer given by several articles is scored: ``off`` (the score of
            its best source; the answer model already counts, as one of its signals, the other
            readings of the same words) or ``noisy-or`` (``1 - prod(1 - score)`` over its
            sources, one per article). Off: on qa-val noisy-or changed no best answer and
            no F1; the one answer it moved across the threshold was wrong (eval/RESULTS.md).
            Either way the reply lists every agreeing article read (``stop_reading_at``).
        engine: Where the index is built and searched: ``local`` (this process, one index
            under ``index_dir``) or ``ray`` (a Ray cluster, ``qa.scale``: ``shards`` shard
            indexes under ``index_dir`` embedded by Ray Data on every node, searched through
            the Ray Serve application ``qa``; needs the ``scale`` extra).
        ray_address: The Ray cluster the ``ray`` engine uses (``auto``: the one started on
            this machine with ``ray start``; or ``HOST:PORT``).
        shards: How many shards the ``ray`` engine partitions the documents into (by a stable
            hash of the document id). 1 is the single-machine index itself.
        replicas: How many replicas of each deployment (every shard, the router, the reader) the
            ``ray`` engine's Serve application runs, spread over the nodes live at deploy time (no
            more than their share on one). With 2 or more, a lost node's share of questions goes to
            a replica on another node instead of waiting for Serve to start the lost one again
            (which waits for a node with room); each shard replica maps its shard's files
            (``qa.indexing.persist``), so replicas on one node share their pages.
    """

    corpus_dir: Path = DEFAULT_CORPUS_DIR
    index_dir: Path = DEFAULT_INDEX_DIR
    embedding_model: str = "default"
    chunk_size: int = 128
    chunk_overlap: int = 32
    retrieval_mode: RetrievalMode = "hybrid"
    top_k: int = 5
    fusion: Fusion = "convex"
    dense_weight: float = 0.5
    rrf_k: int = 60
    candidates: int = 50
    faiss_index: FaissKind = "auto"
    hnsw_threshold: int = 50_000
    ivfpq_threshold: int = 100_000
    ivfpq_k_factor: int = 20
    ivfpq_refine: IvfpqRefine = "fp16"
    flat_precision: FlatPrecision = "fp16"
    compact_at: float = 0.2
    batch_size: int = 32
    query_encoder: QueryEncoderKind = "auto"
    reader_model: str = "default"
    max_answer_tokens: int = 30
    n_answers: int = 3
    threshold: float | None = None
    read_passages: int = 3
    stop_reading_at: float = 0.4
    max_upload_mb: int = 20
    reader_precision: ReaderPrecision = "auto"
    reader_runtime: ReaderRuntime = "auto"
    agreement: Agreement = "off"
    engine: Engine = "local"
    ray_address: str = "auto"
    shards: int = 1
    replicas: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "corpus_dir", Path(self.corpus_dir))
        object.__setattr__(self, "index_dir", Path(self.index_dir))
        if self.chunk_size <= 0:
            raise ValueError(f"chunk_size must be positive, got {self.chunk_size}")
        if not 0 <= self.chunk_overlap < self.chunk_size:
            raise ValueError(f"chunk_overlap must be in [0, chunk_size), got {self.chunk_overlap}")
        if self.top_k <= 0:
            raise ValueError(f"top_k must be positive, got {self.top_k}")
        for name, kind in CHOICES.items():
            value = getattr(self, name)
            if value not in get_args(kind):
                raise ValueError(f"{name} must be one of {get_args(kind)}, got {value!r}")
        packaged_only = self.reader_runtime.startswith("onnx-") or self.reader_runtime == "openvino"
        if packaged_only and self.reader_model != "default":
            raise ValueError(
                f"reader_runtime {self.reader_runtime} runs the packaged reader only; use "
                f"'torch' or 'auto' for reader_model {self.reader_model!r}"
            )
        check_n_answers(self.n_answers)
        if self.threshold is not None:
            check_threshold(self.threshold)
        if not _number_in(self.dense_weight, numbers.Real, 0, 1):
            raise ValueError(
                f"dense_weight must be a number from 0 to 1, got {self.dense_weight!r}"
            )
        if self.shards <= 0:
            raise ValueError(f"shards must be positive, got {self.shards}")
        if self.replicas <= 0:
            raise ValueError(f"replicas must be positive, got {self.replicas}")
        if self.ivfpq_k_factor < 1:
            raise ValueError(f"ivfpq_k_factor must be at least 1, got {self.ivfpq_k_factor}")
        if not _number_in(self.compact_at, numbers.Real, 0, 1):
            raise ValueError(f"compact_at must be a number from 0 to 1, got {self.compact_at!r}")
        if self.read_passages <= 0:
            raise ValueError(f"read_passages must be positive, got {self.read_passages}")
        check_threshold(self.stop_reading_at, "stop_reading_at")

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        """Build settings from ``QA_*`` environment variables, then explicit overrides.

        Overrides whose value is ``None`` are ignored, so CLI options left unset fall through.
        """
        hints = get_type_hints(cls)
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = os.environ.get(f"QA_{f.name.upper()}")
            if raw is not None:
                values[f.name] = _parse(raw, hints[f.name], f.name)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def _parse(raw: str, hint: Any, name: str) -> Any:
    text = str(hint)
    try:
        if hint is int:
            return int(raw)
        if hint is Path:
            return Path(raw)
        if "float" in text:
            return None if raw.lower() in {"", "none"} else float(raw)
    except ValueError as exc:
        raise ValueError(f"QA_{name.upper()}={raw!r} is not a valid value") from exc
    return raw
