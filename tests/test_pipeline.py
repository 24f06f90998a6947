"""``QA.ask`` refuses what it cannot honour, the same way everywhere, and reads one index."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from qa.pipeline import MAX_QUESTION_CHARS, QA, check_request
from qa.settings import MAX_ANSWERS, Settings
from qa.store import Index

from .conftest import HashEmbedder

QUESTION = "How many liaison officers would each side have had under the 1994 plan?"


@pytest.fixture
def qa(seed_corpus: Path, tmp_path: Path) -> QA:
    settings = Settings(corpus_dir=seed_corpus, index_dir=tmp_path / "index", reader_model="none")
    qa = QA(settings, embedder=HashEmbedder())  # fast, deterministic vectors
    qa.build(show_progress=False)
    return qa


@pytest.mark.parametrize(
    ("question", "options", "message"),
    [
        ("", {}, "the question is empty"),
        ("  \n\t ", {}, "the question is empty"),
        (None, {}, "the question must be text"),
        ("x" * (MAX_QUESTION_CHARS + 1), {}, "the question is 1,001 characters long"),
        (QUESTION, {"n_answers": 0}, "from 1 to 20, got 0"),
        (QUESTION, {"n_answers": -2}, "from 1 to 20, got -2"),
        (QUESTION, {"n_answers": MAX_ANSWERS + 1}, "from 1 to 20, got 21"),
        (QUESTION, {"n_answers": 2.5}, "whole number from 1 to 20"),
        (QUESTION, {"n_answers": True}, "whole number from 1 to 20"),
        (QUESTION, {"n_answers": "3"}, "whole number from 1 to 20"),
        (QUESTION, {"threshold": -0.01}, "threshold must be a number from 0 to 1, got -0.01"),
        (QUESTION, {"threshold": 1.5}, "from 0 to 1, got 1.5"),
        (QUESTION, {"threshold": float("nan")}, "from 0 to 1, got nan"),
        (QUESTION, {"threshold": "0.5"}, "from 0 to 1"),
        (QUESTION, {"mode": "psychic"}, "one of hybrid, dense, lexical, got 'psychic'"),
    ],
)
def test_ask_refuses_with_a_clear_reason(
    qa: QA, question: object, options: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        qa.ask(question, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "options",
    [
        {"n_answers": 1},
        {"n_answers": MAX_ANSWERS},
        {"n_answers": np.int64(2)},
        {"threshold": 0},
        {"threshold": 1.0},
        {"threshold": np.float32(0.5)},
        {"mode": "lexical"},
    ],
)
def test_ask_accepts_every_value_at_the_limits(qa: QA, options: dict[str, object]) -> None:
    check_request("x" * MAX_QUESTION_CHARS, **options)
    result = qa.ask(QUESTION, **options)  # type: ignore[arg-type]
    assert len(result.answers) <= options.get("n_answers", qa.settings.n_answers)


def test_read_refuses_the_same_requests(qa: QA) -> None:
    with pytest.raises(ValueError, match="from 1 to 20"):
        qa.read(QUESTION, [], n_answers=0)


def test_ask_reads_the_live_index_once(qa: QA) -> None:
    """One snapshot per question: a swap between retrieval and reading cannot mix indexes."""
    reads: list[Index] = []

    class Counting(QA):
        @property
        def index(self) -> Index:
            reads.append(qa.index)
            return qa.index

    counting = Counting(qa.settings, embedder=qa.embedder)
    result = counting.ask(QUESTION, threshold=0.0)
    assert result.answers and len(reads) == 1


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("n_answers", 0, "from 1 to 20"),
        ("n_answers", 21, "from 1 to 20"),
        ("n_answers", True, "from 1 to 20"),
        ("threshold", -0.1, "from 0 to 1"),
        ("threshold", 1.5, "from 0 to 1"),
        ("read_passages", 0, "positive"),
    ],
)
def test_settings_refuse_the_defaults_ask_would_refuse(
    field: str, value: object, message: str
) -> None:
    """`qa ask --k/--threshold` and QA_* variables go through Settings, not check_request."""
    with pytest.raises(ValueError, match=message):
        Settings(**{field: value})
    assert getattr(Settings(**{field: 1}), field) == 1


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("n_answers", True, "n_answers must be a whole number from 1 to 20, got True"),
        ("n_answers", 0, "n_answers must be a whole number from 1 to 20, got 0"),
        ("threshold", float("nan"), "threshold must be a number from 0 to 1, got nan"),
        ("threshold", True, "threshold must be a number from 0 to 1, got True"),
    ],
)
def test_settings_refuse_what_a_request_refuses_in_the_same_words(
    field: str, value: object, words: str
) -> None:
    with pytest.raises(ValueError, match=words):
        Settings(**{field: value})  # type: ignore[arg-type]
    label = "the number of answers" if field == "n_answers" else "the threshold"
    with pytest.raises(ValueError, match=words.replace(field, label)):
        check_request(QUESTION, **{field: value})  # type: ignore[arg-type]


def test_catalog_lists_every_document_with_its_live_chunks(qa: QA, seed_corpus: Path) -> None:
    """The documents table's rows: every document by title, its length and chunk count; a
    document taken out of the corpus leaves the list with the next update."""
    rows = qa.index.catalog()
    assert [r.doc_id for r in rows] == sorted(
        qa.index.documents, key=lambda d: (qa.index.documents[d].title.lower(), d)
    )
    for row in rows:
        doc = qa.index.documents[row.doc_id]
        assert (row.title, row.path, row.characters) == (doc.title, doc.path, len(doc.text))
        assert row.chunks == sum(1 for c in qa.index.chunks if c.doc_id == row.doc_id) > 0
    gone = rows[0]
    (seed_corpus / gone.path).unlink()
    report = qa.update(show_progress=False)  # the local engine: QA.build
    assert report.removed == [gone.doc_id]
    assert qa.index.catalog() == rows[1:]


def test_update_of_the_ray_engine_needs_its_sharded_index(tmp_path: Path) -> None:
    """With the ray engine there is nothing to update until `qa index --engine ray` made the
    sharded index, and the error says so (before any cluster is joined)."""
    pytest.importorskip("ray", reason="the scale extra (ray[data,serve]) is not installed")
    from qa.store import IndexMissingError

    settings = Settings(corpus_dir=tmp_path, index_dir=tmp_path / "none", engine="ray")
    with pytest.raises(IndexMissingError, match="qa index --engine ray"):
        QA(settings, embedder=HashEmbedder()).update()


class _WatchedEmbedder(HashEmbedder):
    """Records which thread embedded each question, and whether the index was loaded then."""

    def __init__(self, qa_box: list[QA], fail: bool = False) -> None:
        self.calls: list[tuple[str, str, bool]] = []
        self._qa_box = qa_box
        self._fail = fail

    def encode_query(self, text: str) -> np.ndarray:
        loaded = bool(self._qa_box) and self._qa_box[0]._index is not None
        self.calls.append((text, threading.current_thread().name, loaded))
        if self._fail:
            raise RuntimeError("the question encoder is broken")
        return super().encode_query(text)


def test_a_cold_search_embeds_its_question_while_the_index_loads(qa: QA) -> None:
    box: list[QA] = []
    watched = _WatchedEmbedder(box)
    cold = QA(qa.settings, embedder=watched)
    box.append(cold)
    passages = cold.search(QUESTION)
    assert [p.chunk.chunk_id for p in passages] == [p.chunk.chunk_id for p in qa.search(QUESTION)]
    # First on a thread of its own before the index was there, then again by retrieval.
    assert watched.calls[0] == (QUESTION, "qa-ahead", False)
    assert watched.calls[-1][1] == threading.current_thread().name
    # A warm search embeds on its own thread only; a lexical one embeds nothing.
    watched.calls.clear()
    cold.search(QUESTION)
    assert [c[1] for c in watched.calls] == [threading.current_thread().name]
    lexical = QA(qa.settings, embedder=(quiet := _WatchedEmbedder([])))
    lexical.search(QUESTION, mode="lexical")
    assert quiet.calls == []


def test_a_failure_loading_ahead_is_raised_by_the_question_itself(qa: QA) -> None:
    box: list[QA] = []
    broken = QA(qa.settings, embedder=_WatchedEmbedder(box, fail=True))
    box.append(broken)
    with pytest.raises(RuntimeError, match="the question encoder is broken"):
        broken.search(QUESTION)
    with pytest.raises(RuntimeError, match="the question encoder is broken"):
        broken.ask(QUESTION)
