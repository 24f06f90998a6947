from __future__ import annotations

import threading
import time
from pathlib import Path

import faiss
import pytest

from qa.indexing.build import build_index
from qa.indexing.persist import load_index
from qa.retrieval import Retriever, convex_fusion, rank, reciprocal_rank_fusion
from qa.settings import Settings
from qa.types import Document

from .conftest import HashEmbedder


def test_rrf_rewards_agreement_between_rankings() -> None:
    dense = [(1, 0.9), (2, 0.8), (3, 0.7)]
    lexical = [(3, 12.0), (4, 9.0), (1, 1.0)]
    fused = reciprocal_rank_fusion([dense, lexical], rrf_k=60)
    ids = [i for i, _ in fused]
    assert ids[0] in (1, 3) and set(ids[:2]) == {1, 3}
    assert fused[0][1] == 1 / 61 + 1 / 63
    assert ids[-2:] == [2, 4]  # seen once, rank 2 each: tie broken by id


def test_rrf_single_list_keeps_order() -> None:
    ranking = [(5, 3.0), (2, 2.0), (9, 1.0)]
    assert [i for i, _ in reciprocal_rank_fusion([ranking, []])] == [5, 2, 9]


def test_convex_fusion_weighs_how_far_ahead_not_only_the_place() -> None:
    dense = [(1, 0.90), (2, 0.89), (3, 0.10)]
    lexical = [(3, 30.0), (2, 29.0), (4, 2.0)]
    # Scaled: dense 1 -> 1, 2 -> 0.9875, 3 -> 0; lexical 3 -> 1, 2 -> 0.964, 4 -> 0.
    fused = convex_fusion(dense, lexical, 0.5)
    assert [i for i, _ in fused] == [2, 1, 3, 4]
    assert fused[0][1] == pytest.approx(0.5 * (0.79 / 0.80) + 0.5 * (27 / 28))
    assert fused[1][1] == fused[2][1] == pytest.approx(0.5)  # a tie, broken by best rank (1)
    assert fused[3][1] == 0.0
    # Reciprocal rank counts places only: 3, far behind on cosine, comes first there.
    assert [i for i, _ in reciprocal_rank_fusion([dense, lexical])] == [3, 2, 1, 4]
    # The weight moves the balance: all dense, all lexical.
    assert [i for i, _ in convex_fusion(dense, lexical, 1.0)][:3] == [1, 2, 3]
    assert [i for i, _ in convex_fusion(dense, lexical, 0.0)][:2] == [3, 2]


def test_convex_fusion_of_one_list_or_equal_scores() -> None:
    assert [i for i, _ in convex_fusion([(5, 0.3), (2, 0.2)], [], 0.5)] == [5, 2]
    assert convex_fusion([(7, 0.4), (8, 0.4)], [], 0.5) == [(7, 0.5), (8, 0.5)]
    assert convex_fusion([], [], 0.5) == []


def test_the_fusion_setting_chooses_the_rule() -> None:
    dense = [(1, 0.90), (2, 0.89), (3, 0.10)]
    lexical = [(3, 30.0), (2, 29.0), (4, 2.0)]
    convex = rank(dense, lexical, "hybrid", 4, Settings())
    assert convex == convex_fusion(dense, lexical, 0.5)
    assert rank(dense, lexical, "hybrid", 4, Settings(fusion="rrf", rrf_k=10)) == (
        reciprocal_rank_fusion([dense, lexical], 10)
    )
    assert rank(dense, lexical, "hybrid", 2, Settings(dense_weight=1.0)) == [
        (1, 1.0),
        (2, pytest.approx(0.9875)),
    ]
    with pytest.raises(ValueError, match="fusion must be one of"):
        Settings(fusion="sum")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="dense_weight must be a number from 0 to 1"):
        Settings(dense_weight=1.5)


def build(tmp_path: Path) -> tuple[Settings, Retriever]:
    settings = Settings(
        index_dir=tmp_path / "index", chunk_size=40, chunk_overlap=5, embedding_model="test"
    )
    docs = [
        Document("x.txt", "X", "x.txt", "Zebrafish regenerate fins quickly in warm water.", "1"),
        Document(
            "y.txt", "Y", "y.txt", "The central bank raised interest rates by a quarter point.", "2"
        ),
        Document(
            "z.txt", "Z", "z.txt", "Interest in zebrafish research grew among biologists.", "3"
        ),
    ]
    emb = HashEmbedder()
    build_index(settings, docs, emb, show_progress=False)
    return settings, Retriever(load_index(settings, embedding_name=emb.name), emb, settings)


class _Recording:
    """A BM25 index that notes in ``events`` when a search starts."""

    def __init__(self, lexical, events: list[str]) -> None:  # noqa: ANN001 - a LexicalIndex
        self._lexical, self.events = lexical, events

    def search(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201 - passed through
        self.events.append("bm25")
        return self._lexical.search(*args, **kwargs)


def test_hybrid_bm25_starts_once_the_question_is_embedded(tmp_path: Path) -> None:
    # BM25 on the second thread beside the encoder's two threads slowed the encoder on two
    # cores: it runs beside the dense search instead (qa.retrieval.LEXICAL_BESIDE).
    _, retriever = build(tmp_path)
    events: list[str] = []
    retriever.index.lexical = _Recording(retriever.index.lexical, events)
    encode = retriever.embedder.encode_query

    def slow_encode(text: str):  # noqa: ANN202
        time.sleep(0.2)  # time enough for a BM25 task started before it to begin
        events.append("embedded")
        return encode(text)

    retriever.embedder.encode_query = slow_encode
    hybrid = retriever.search("zebrafish fins", k=3)
    assert events == ["embedded", "bm25"]
    assert hybrid[0].chunk.doc_id == "x.txt" and hybrid[0].lexical_score is not None


def test_modes_and_scores(tmp_path: Path) -> None:
    _, retriever = build(tmp_path)
    timings: dict[str, float] = {}
    hybrid = retriever.search("zebrafish fins", k=3, timings=timings)
    assert hybrid[0].chunk.doc_id == "x.txt"
    # BM25 runs beside the dense search in hybrid mode; the wait for it is timed apart.
    assert set(timings) == {"embed", "dense", "lexical", "lexical_wait", "fusion"}
    assert all(p.dense_score is not None for p in hybrid)
    dense_timings: dict[str, float] = {}
    retriever.search("zebrafish fins", k=3, mode="dense", timings=dense_timings)
    assert set(dense_timings) == {"embed", "dense", "fusion"}
    lexical = retriever.search("interest rates", k=3, mode="lexical")
    assert lexical[0].chunk.doc_id == "y.txt"
    assert all(p.lexical_score and p.lexical_score > 0 for p in lexical)
    assert [p.score for p in lexical] == sorted((p.score for p in lexical), reverse=True)
    dense = retriever.search("bank rates", k=2, mode="dense")
    assert len(dense) == 2 and dense[0].chunk.doc_id == "y.txt"
    assert dense[0].score == dense[0].dense_score


def test_excluded_documents_are_searched_as_if_not_indexed(tmp_path: Path) -> None:
    settings, retriever = build(tmp_path)
    for mode in ("hybrid", "dense", "lexical"):
        found = retriever.search("zebrafish fins", k=3, mode=mode, exclude=frozenset({"x.txt"}))
        assert found and all(p.chunk.doc_id != "x.txt" for p in found)
    # The same ranking as an index built without the document (scores differ only by BM25's
    # corpus statistics, so compare the order).
    without = tmp_path / "without"
    docs = [d for d in load_index(settings, embedding_name="test-hash-embedder").documents.values()]
    narrow = settings.replace(index_dir=without)
    build_index(
        narrow, [d for d in docs if d.doc_id != "x.txt"], HashEmbedder(), show_progress=False
    )
    other = Retriever(
        load_index(narrow, embedding_name="test-hash-embedder"), HashEmbedder(), narrow
    )
    for query in ("zebrafish research", "interest rates"):
        excluded = retriever.search(query, k=3, mode="dense", exclude=frozenset({"x.txt"}))
        assert [p.chunk.doc_id for p in excluded] == [
            p.chunk.doc_id for p in other.search(query, k=3, mode="dense")
        ]


def test_no_match_and_empty_query(tmp_path: Path) -> None:
    _, retriever = build(tmp_path)
    assert retriever.search("   ") == []
    assert retriever.search("qwertyuiop", mode="lexical") == []
    # A stop word alone: BM25 matches nothing, so the embedding alone ranks the corpus. Asked
    # for 10, each of the three one-chunk documents comes once, the one holding "the" first.
    only_stopwords = retriever.search("the", k=10)
    assert [p.chunk.doc_id for p in only_stopwords][0] == "y.txt"
    assert sorted(p.chunk.doc_id for p in only_stopwords) == ["x.txt", "y.txt", "z.txt"]
    assert all(p.lexical_score is None for p in only_stopwords)
    assert retriever.search("the", k=10, mode="lexical") == []


def test_search_runs_faiss_on_one_thread_in_any_thread(tmp_path: Path) -> None:
    # OpenMP keeps the thread count per thread: a setting made at import in the main thread
    # does not reach a web server's worker threads, so search must make it in each thread.
    _, retriever = build(tmp_path)
    seen: list[int] = []

    def work() -> None:
        faiss.omp_set_num_threads(3)  # what a fresh thread may start with on a 3-core machine
        retriever.search("zebrafish fins", k=2, mode="dense")
        seen.append(faiss.omp_get_max_threads())

    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    assert seen == [1]
