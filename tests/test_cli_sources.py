"""`qa ask` shows every article that gives the answer, in its text output and its JSON."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from qa import cli
from qa.reading.answers import dedupe
from qa.types import Document, Result
from tests.web.test_render_sources import answer

runner = CliRunner()

DOCS = [
    Document("a.txt", "Ferry news", "a.txt", "Ferry\n\nIt was launched by Hollis Marrow.", "h"),
    Document("b.txt", "Harbour", "news/b.txt", "Museum\n\nhollis marrow launched it.", "h"),
]


class FixedQA:
    """Stands in for ``QA``: answers every question with ``result``."""

    def __init__(self, result: Result) -> None:
        self.result = result

    def ask(self, question: str, **_: Any) -> Result:
        return self.result


@pytest.fixture
def agreeing(monkeypatch: pytest.MonkeyPatch) -> Result:
    merged, other = dedupe(
        [
            answer(DOCS[0], "Hollis Marrow", 0.8),
            answer(DOCS[1], "hollis marrow", 0.5),
            answer(DOCS[0], "Ferry", 0.2),
        ]
    )
    result = Result("Who launched it?", [merged, other], False, [], "reader:qa-minilm-l6")
    monkeypatch.setattr(cli, "_qa", lambda settings, question=None: FixedQA(result))
    return result


def run(*args: str) -> str:
    out = runner.invoke(cli.app, ["ask", "Who launched it?", *args])
    assert out.exit_code == 0, out.output
    return out.stdout


def test_text_output_lists_each_agreeing_article_with_its_marked_sentence(
    agreeing: Result,
) -> None:
    lines = run().splitlines()
    assert lines[0] == "Hollis Marrow"
    out = "\n".join(lines)
    assert "2 articles say so:" in out
    first, second = out.index("1. Ferry news"), out.index("2. Harbour")
    assert first < second
    assert "a.txt, chars 26-39" in out[first:second]
    assert "It was launched by »Hollis Marrow«." in out[first:second]
    assert "b.txt, news/b.txt, chars 8-21" in out[second:]
    assert "»hollis marrow« launched it." in out[second:]
    assert "score 0.800" in out[first:second] and "score 0.500" in out[second:]
    assert "[reader:qa-minilm-l6]" in out
    assert "2. [0.200] Ferry" in out  # the alternative, a single source: no count
    assert "Ferry (1 articles)" not in out


def test_json_output_carries_the_sources(agreeing: Result) -> None:
    payload = json.loads(run("--json"))
    best = payload["answers"][0]
    assert best["text"] == "Hollis Marrow" and best["doc_id"] == "a.txt"
    assert [(s["doc_id"], s["text"], s["start"], s["end"]) for s in best["sources"]] == [
        ("a.txt", "Hollis Marrow", 26, 39),
        ("b.txt", "hollis marrow", 8, 21),
    ]
    for s, d in zip(best["sources"], DOCS, strict=True):
        assert d.text[s["start"] : s["end"]] == s["text"]
    assert len(payload["answers"][1]["sources"]) == 1


def test_a_single_source_answer_prints_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    single = answer(DOCS[0], "Hollis Marrow", 0.8)
    result = Result("Who?", [single], False, [], "reader:qa-minilm-l6")
    monkeypatch.setattr(cli, "_qa", lambda settings, question=None: FixedQA(result))
    out = run()
    assert "articles say so" not in out
    assert "It was launched by »Hollis Marrow«." in out
    assert "Ferry news\n  a.txt, chars 26-39" in out
