"""The roles the pipeline's components play, for the type checker and for test doubles.

``QA`` (``qa.pipeline``) builds its components from ``Settings`` or takes them as arguments;
anything that has these members can stand in (a loaded model shared by several ``QA``, a
deterministic test double). mypy checks the product's own classes against them where they are
used, and the test doubles in ``tests/doubles.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from qa.types import Passage, SpanCandidate

if TYPE_CHECKING:
    from qa.filters import Filter
    from qa.settings import RetrievalMode, Settings
    from qa.store import Index


class Encoder(Protocol):
    """Turns text into unit vectors (inner product = cosine); ``qa.embedding.Embedder``."""

    @property
    def name(self) -> str:
        """The model's name, recorded in the index manifest."""
        ...

    @property
    def dimension(self) -> int: ...

    @property
    def tokenizer(self) -> Any:
        """A Hugging Face-style tokenizer, called to count a text's tokens when chunking."""
        ...

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), dimension)`` float32 unit vectors."""
        ...

    def encode_pooled(
        self,
        texts: Sequence[str],
        spans: Sequence[Sequence[tuple[int, int]]],
        *,
        progress: Callable[[int], None] | None = None,
    ) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
        """The text vectors, and per text the summed token vectors and token counts of each
        character span (sentence vectors come from them)."""
        ...

    def encode_query(self, text: str) -> np.ndarray:
        """One question's vector."""
        ...

    def prepare_query_encoder(self) -> Path | None:
        """Build whatever embeds questions ahead of the first one (``qa index`` calls it)."""
        ...


class Reader(Protocol):
    """Extracts scored spans from contexts; ``qa.reading.spans.SpanReader`` and its runtimes."""

    #: What was asked for (``"default"``, a folder, a hub id): names the answering mode.
    model_name: Any

    def warm_up(self) -> None: ...

    def read(
        self, question: str, contexts: Sequence[str], top_n: int = 5
    ) -> list[SpanCandidate]: ...


class Retriever(Protocol):
    """Ranks an index's passages for a query; ``qa.retrieval.Retriever`` (dense + BM25)."""

    def search(
        self,
        query: str,
        k: int | None = None,
        mode: RetrievalMode | None = None,
        timings: dict[str, float] | None = None,
        exclude: frozenset[str] = frozenset(),
        filter: Filter | None = None,
    ) -> list[Passage]:
        """The ``k`` best passages, best first, of the documents not excluded that pass
        ``filter``."""
        ...


#: Makes the retriever of one index snapshot: ``QA`` calls it once per question with the
#: live index, its encoder and its settings (``qa.retrieval.Retriever`` itself by default).
RetrieverFactory = Callable[["Index", Encoder, "Settings"], Retriever]
