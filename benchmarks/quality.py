"""Retrieval quality on xquad-dev as an open corpus: recall@5 of the paragraph holding the answer.

Each of the 215 paragraphs is a document; a question is a hit when a chunk of its paragraph is
among the top 5 passages. xquad-dev is only ever measured here, never tuned on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from qa.evaluation.datasets import EvalQuestion, load_squad, sample
from qa.indexing.build import build_index
from qa.indexing.persist import load_index
from qa.settings import RetrievalMode, Settings
from qa.store import Index
from qa.types import Document

K = 5


def xquad(path: Path, limit: int | None = None) -> tuple[list[EvalQuestion], list[Document]]:
    """The answerable questions (a fixed sample of ``limit``) and the paragraph documents."""
    questions, documents = load_squad(path)
    return sample([q for q in questions if q.answerable], limit), documents


def build_our_index(
    documents: list[Document], embedder: Any, index_dir: Path
) -> tuple[Settings, Index]:
    """Index ``documents`` with the product's default settings in ``index_dir``."""
    settings = Settings.from_env(index_dir=index_dir)
    build_index(settings, documents, embedder, rebuild=True, show_progress=False)
    return settings, load_index(settings, embedding_name=embedder.name)


def recall(
    rank: Callable[[str], Sequence[str]], questions: Sequence[EvalQuestion], k: int = K
) -> float:
    """Share of ``questions`` whose gold document is among the first ``k`` ids ``rank`` gives."""
    hits = sum(q.doc_id in set(list(rank(q.question))[:k]) for q in questions)
    return round(hits / max(1, len(questions)), 4)


def our_ranker(retriever: Any, mode: RetrievalMode, k: int = K) -> Callable[[str], list[str]]:
    """Document ids of the product's top ``k`` passages in ``mode``."""
    return lambda q: [p.chunk.doc_id for p in retriever.search(q, k=k, mode=mode)]
