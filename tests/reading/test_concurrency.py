"""Concurrent questions through one QA with the real packaged reader give the answers that
the same questions get one at a time (the tokenizers and models are shared between threads)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from qa import QA, Settings
from qa.reading.transformer import DEFAULT_READER_DIR

pytestmark = pytest.mark.slow

QUESTIONS = [
    "How many liaison officers would each side have had under the 1994 plan?",
    "Where did Kim Jong-un and Trump agree to resume working-level talks?",
    "Who argues that liaison offices would be a useful step?",
    "What is the capital of France?",
    "When was the Agreed Framework signed?",
    "Why did North Korea cancel the liaison office plan?",
]


@pytest.mark.skipif(
    not (DEFAULT_READER_DIR / "model.safetensors").exists(), reason="the reader is not shipped"
)
def test_concurrent_asks_match_sequential_ones(seed_index_settings: Settings, embedder) -> None:  # noqa: ANN001
    qa = QA(seed_index_settings.replace(reader_model="default"))
    qa.__dict__["embedder"] = embedder  # the session's loaded model (a cached_property)

    def answer(question: str) -> list[tuple[str, int, float]]:
        result = qa.ask(question, threshold=0.0)
        return [(a.doc_id, a.start, round(a.score, 4)) for a in result.answers]

    expected = {q: answer(q) for q in QUESTIONS}
    asked = QUESTIONS * 6
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(answer, asked))
    assert got == [expected[q] for q in asked]
