"""The app's API through ``gradio_client``: concurrent questions are all answered correctly."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from qa.web.app import EXAMPLES

pytestmark = pytest.mark.slow


def connect(url: str):  # noqa: ANN201 - a gradio_client.Client
    """A client for the app.

    ``download_files=False``: the answers' ``path`` fields are corpus paths, and gradio_client
    (2.7) otherwise takes any dict with a ``path`` key for a file to download. A long timeout:
    the default 5 s for joining the queue is too short on a busy 2-core machine.
    """
    from gradio_client import Client

    return Client(url, verbose=False, download_files=False, httpx_kwargs={"timeout": 120})


#: (question, a word the best answer's context must hold; None: the corpus does not answer).
CASES = [(EXAMPLES[0], "seven"), (EXAMPLES[1], "Panmunjom"), (EXAMPLES[2], None)]


def test_twenty_concurrent_questions_are_all_answered(server: str) -> None:
    client = connect(server)
    asked = [CASES[i % len(CASES)] for i in range(20)]

    def ask(case: tuple[str, str | None]) -> dict[str, Any]:
        return client.predict(case[0], 3, None, "hybrid", api_name="/ask")

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(asked)) as pool:
        results = list(pool.map(ask, asked))
    elapsed = time.perf_counter() - started
    for (question, expected), result in zip(asked, results, strict=True):
        assert result["question"] == question
        if expected is None:
            assert result["abstained"] and result["answers"] == [] and result["passages"]
        else:
            assert not result["abstained"], question
            # Sentence mode: the sentence holding the answer is among the 3 answers (on the
            # liaison question two sentences score within 0.01 of each other).
            contexts = [a["context"] for a in result["answers"]]
            assert any(expected in c for c in contexts), (question, contexts)
    print(f"20 concurrent questions answered in {elapsed:.1f} s")


def test_api_validates_the_mode(server: str) -> None:
    client = connect(server)
    with pytest.raises(Exception, match="retrieval mode must be one of"):
        client.predict(EXAMPLES[0], 3, 0.4, "psychic", api_name="/ask")
    lexical = client.predict(EXAMPLES[0], 1, 0.0, "lexical", api_name="/ask")
    assert len(lexical["answers"]) == 1
