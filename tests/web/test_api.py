"""The app's API through ``gradio_client``'s default call: concurrent questions are all answered
correctly, and every refused request says why."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from qa.web.layout import EXAMPLES

pytestmark = pytest.mark.slow


def connect(url: str):  # noqa: ANN201 - a gradio_client.Client
    """A client for the app, as the README shows it (files downloaded, the client's default).

    A long timeout: the default 5 s for joining the queue is too short on a busy 2-core machine.
    """
    from gradio_client import Client

    return Client(url, verbose=False, httpx_kwargs={"timeout": 120})


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


def test_the_default_call_with_the_question_alone(server: str) -> None:
    from gradio_client import Client

    result = Client(server, verbose=False).predict(EXAMPLES[0], api_name="/ask")
    assert result["question"] == EXAMPLES[0] and not result["abstained"]
    best = result["answers"][0]
    assert best["file"] == best["doc_id"] == "000_4b3a89178ec270f5.txt"
    assert best["context"][best["start"] - best["context_start"] :].startswith(best["text"])


@pytest.mark.parametrize(
    ("arguments", "reason"),
    [
        ((EXAMPLES[0], 3, 0.4, "psychic"), "retrieval mode must be one of hybrid, dense, lexical"),
        ((EXAMPLES[0], -2, None, None), "number of answers must be a whole number from 1 to 20"),
        ((EXAMPLES[0], 0, None, None), "from 1 to 20, got 0"),
        ((EXAMPLES[0], 21, None, None), "from 1 to 20, got 21"),
        ((EXAMPLES[0], 3, 1.5, None), "threshold must be a number from 0 to 1, got 1.5"),
        ((EXAMPLES[0], 3, -0.1, None), "from 0 to 1, got -0.1"),
        (("", 3, None, None), "the question is empty"),
        (
            ("why " * 300, 3, None, None),
            "the question is 1,200 characters long; the limit is 1,000",
        ),
    ],
)
def test_api_refuses_with_the_reason(server: str, arguments: tuple, reason: str) -> None:
    with pytest.raises(Exception, match=reason):
        connect(server).predict(*arguments, api_name="/ask")


def test_api_accepts_the_limits(server: str) -> None:
    client = connect(server)
    lexical = client.predict(EXAMPLES[0], 1, 0.0, "lexical", api_name="/ask")
    assert len(lexical["answers"]) == 1
    many = client.predict("x" * 999 + "?", 20, 1.0, "dense", api_name="/ask")
    assert many["abstained"] and many["answers"] == []


def test_a_follow_up_through_the_api_with_the_turn_it_returned(server: str) -> None:
    client = connect(server)
    first = client.predict("Where was the failed February summit held?", api_name="/ask")
    assert first["understood_as"] is None
    assert first["turn"]["question"] == "Where was the failed February summit held?"
    second = client.predict("And when?", None, None, None, [first["turn"]], api_name="/ask")
    assert second["question"] == "And when?"
    assert second["understood_as"] == "When was the failed February summit held?"
    assert not second["abstained"]
    assert "27–28 February" in second["answers"][0]["context"]
    with pytest.raises(Exception, match="a turn needs its question"):
        client.predict("And when?", None, None, None, [{"answer": "x"}], api_name="/ask")
