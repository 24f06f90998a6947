"""Concurrent questions through one QA with the real packaged reader: the answers the same
questions get one at a time, exact offsets, and one index snapshot per reply while builds swap
the index (the tokenizers, models and live index are shared between threads)."""

from __future__ import annotations

import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from qa import QA, Result, Settings
from qa.reading.transformer import DEFAULT_READER_DIR
from qa.store import Index
from tests.conftest import SEED_CORPUS

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (DEFAULT_READER_DIR / "model.safetensors").exists(), reason="the reader is not shipped"
    ),
]

QUESTIONS = [
    "How many liaison officers would each side have had under the 1994 plan?",
    "Where did Kim Jong-un and Trump agree to resume working-level talks?",
    "Who argues that liaison offices would be a useful step?",
    "What is the capital of France?",
    "When was the Agreed Framework signed?",
    "Why did North Korea cancel the liaison office plan?",
]
LIAISON_DOC = "000_4b3a89178ec270f5.txt"


def make_qa(settings: Settings, embedder, runtime: str = "auto") -> QA:  # noqa: ANN001 - the session's Embedder
    return QA(settings.replace(reader_model="default", reader_runtime=runtime), embedder=embedder)


def holds(index: Index, result: Result) -> bool:
    """Whether every answer and passage of ``result`` is exact against ``index``'s documents."""
    for a in result.answers:
        doc = index.documents.get(a.doc_id)
        if doc is None or doc.text[a.start : a.end] != a.text:
            return False
        if doc.text[a.context_start : a.context_start + len(a.context)] != a.context:
            return False
    for p in result.passages:
        doc = index.documents.get(p.chunk.doc_id)
        if doc is None or doc.text[p.chunk.start : p.chunk.end] != p.chunk.text:
            return False
    return True


@pytest.mark.parametrize("runtime", ["onnx-fp32", "openvino"])
def test_concurrent_asks_match_sequential_ones(
    seed_index_settings: Settings,
    embedder,  # noqa: ANN001
    runtime: str,
) -> None:
    # Both runtimes of the packaged reader: one onnxruntime session shared by every thread, and
    # one OpenVINO compiled model with an infer request per thread (bfloat16 where the CPU has
    # AMX, as ``auto`` reads there).
    qa = make_qa(seed_index_settings, embedder, runtime)
    assert qa.reading.reader is not None and qa.reading.reader.runtime == runtime.split("-")[0]

    def answer(question: str) -> Result:
        return qa.ask(question, threshold=0.0)

    def summary(result: Result) -> list[tuple[str, int, float]]:
        return [(a.doc_id, a.start, round(a.score, 4)) for a in result.answers]

    expected = {q: summary(answer(q)) for q in QUESTIONS}
    asked = QUESTIONS * 6  # 36 questions on 8 threads
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(answer, asked))
    assert [summary(r) for r in got] == [expected[q] for q in asked]
    for result in got:
        assert result.answers and holds(qa.index, result)


def test_each_reply_holds_to_one_snapshot_while_builds_swap_the_index(
    tmp_path: Path,
    embedder,  # noqa: ANN001
) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(SEED_CORPUS, corpus)
    qa = make_qa(Settings(corpus_dir=corpus, index_dir=tmp_path / "index"), embedder)
    qa.build(show_progress=False)
    snapshots = [qa.index]
    results: list[Result] = []
    errors: list[BaseException] = []
    building = threading.Event()
    building.set()

    def ask_until_built(offset: int) -> None:
        asked = 0
        while building.is_set() or asked < 3:
            question = QUESTIONS[(offset + asked) % len(QUESTIONS)]
            try:
                results.append(qa.ask(question, threshold=0.0))
            except BaseException as exc:  # noqa: BLE001 - every failure is reported below
                errors.append(exc)
            asked += 1

    askers = [threading.Thread(target=ask_until_built, args=(i,)) for i in range(4)]
    for asker in askers:
        asker.start()
    try:
        article = corpus / LIAISON_DOC
        for n in range(3):
            # A paragraph put in front moves every offset of the article in the new index.
            text = article.read_text(encoding="utf-8")
            title, _, body = text.partition("\n\n")
            article.write_text(
                f"{title}\n\nUpdate {n}: officials met again.\n\n{body}", encoding="utf-8"
            )
            report = qa.build(show_progress=False)
            assert report.changed == [LIAISON_DOC] and report.index is not None
            snapshots.append(report.index)
    finally:
        building.clear()
        for asker in askers:
            asker.join(300)
    assert errors == []
    assert len(results) >= 12
    for result in results:
        assert any(holds(index, result) for index in snapshots), result.question
    # The last index no longer holds the first one's offsets: a mixed reply would be caught.
    first, last = snapshots[0].documents[LIAISON_DOC], snapshots[-1].documents[LIAISON_DOC]
    assert first.text != last.text
