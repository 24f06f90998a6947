"""Extractive question answering over news articles.

``QA(Settings()).build()`` indexes ``corpus/``; ``QA().ask(question)`` returns a ``Result``
whose ``answers`` are exact spans of articles with their sources and offsets.

The names below load on first use, so ``import qa.training.reader`` (reader training, which
may run on a machine with only torch and transformers) does not pull in the index stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qa.pipeline import QA
    from qa.settings import Settings
    from qa.types import Answer, Chunk, Document, Passage, Result

__all__ = ["QA", "Answer", "Chunk", "Document", "Passage", "Result", "Settings"]

_HOMES = {
    "QA": "qa.pipeline",
    "Settings": "qa.settings",
    "Answer": "qa.types",
    "Chunk": "qa.types",
    "Document": "qa.types",
    "Passage": "qa.types",
    "Result": "qa.types",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'qa' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
