"""Extractive question answering over news articles.

``QA(Settings()).build()`` indexes ``corpus/``; ``QA().ask(question)`` returns a ``Result``
whose ``answers`` are exact spans of articles with their sources and offsets.
"""

from qa.pipeline import QA
from qa.settings import Settings
from qa.types import Answer, Chunk, Document, Passage, Result

__all__ = ["QA", "Answer", "Chunk", "Document", "Passage", "Result", "Settings"]
