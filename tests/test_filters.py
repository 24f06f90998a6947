"""Metadata filters: parsing and refusals, which documents pass, and filtering inside retrieval."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest

from qa.filters import Filter, check_filter, document_folder, folders
from qa.indexing.build import build_index
from qa.indexing.dense import make_dense_index
from qa.indexing.persist import load_index
from qa.pipeline import QA
from qa.retrieval import Retriever, allowed_rows, dense_search
from qa.settings import Settings
from qa.store import Index
from qa.types import Document

from .conftest import HashEmbedder


def doc(path: str, text: str = "Some text.", title: str = "T", **metadata: str) -> Document:
    return Document(path, title, path, text, path, metadata)


# Parsing and refusals


def test_parse_where_items_and_string() -> None:
    f = Filter.parse(where=["folder=Business", "author = Ann Smith"], since="2005-01-01")
    assert f.where == {"folder": "business", "author": "Ann Smith"}
    assert (f.since, f.until) == ("2005-01-01", None)
    g = Filter.parse(where="folder=business; author=Ann Smith; date>=2005-01-01; date<=2005-12-31")
    assert g.where == {"folder": "business", "author": "Ann Smith"}
    assert (g.since, g.until) == ("2005-01-01", "2005-12-31")
    assert g.describe() == "folder business, author Ann Smith, since 2005-01-01, until 2005-12-31"
    assert Filter.parse(where="url=https://x.example/a?b=c").where == {
        "url": "https://x.example/a?b=c"
    }
    assert not Filter.parse(where=["", " "], since="", until=None)  # nothing restricts
    assert Filter.parse(where=["folder=business"]) == Filter({"folder": "business"})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"where": ["business"]}, "a condition must be KEY=VALUE"),
        ({"where": ["=business"]}, "a condition must be KEY=VALUE"),
        ({"where": ["fo lder=business"]}, "is not a field name"),
        ({"where": ["author="]}, "author= needs a value"),
        ({"where": ["folder=a", "folder=b"]}, "folder is given twice"),
        ({"where": ["date>2005-01-01"]}, "use >= or <="),
        ({"where": ["title>=a"]}, "only date can be compared"),
        ({"where": ["date=yesterday"]}, "date must be a date YYYY-MM-DD"),
        ({"where": ["date<=2005-1-1"]}, "date<= must be a date YYYY-MM-DD, got '2005-1-1'"),
        ({"where": "date>=2005-01-01", "since": "2004-01-01"}, "since is given twice"),
        ({"where": 3}, "where must be text or a list"),
        ({"since": "2005-13-01"}, "since must be a date YYYY-MM-DD, got '2005-13-01'"),
        ({"since": "1 Jan 2005"}, "since must be a date YYYY-MM-DD"),
        ({"until": "2005-02-30"}, "until must be a date YYYY-MM-DD"),
        ({"since": "2006-01-01", "until": "2005-01-01"}, "since 2006-01-01 is after until"),
    ],
)
def test_parse_refuses_with_the_reason(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        Filter.parse(**kwargs)


def test_direct_construction_is_checked_too() -> None:
    with pytest.raises(ValueError, match="until must be a date"):
        Filter(until="soon")
    with pytest.raises(ValueError, match="the value of folder must be text"):
        Filter({"folder": 3})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="must be a qa.filters.Filter"):
        check_filter({"folder": "business"})
    assert check_filter(None) is None


# Which documents pass


def test_derived_fields_match_without_being_stored() -> None:
    business = doc("Business/2005/a.txt", title="Rates up")
    root = doc("b.txt")
    assert document_folder(business) == "Business/2005" and document_folder(root) == ""
    assert Filter({"folder": "business"}).matches(business)  # case, and folders below
    assert Filter({"folder": "business/2005/"}).matches(business)
    assert not Filter({"folder": "busi"}).matches(business)
    assert not Filter({"folder": "business"}).matches(root)
    assert Filter({"folder": ""}).matches(root) and not Filter({"folder": ""}).matches(business)
    assert Filter({"path": "b.txt"}).matches(root) and not Filter({"path": "B.txt"}).matches(root)
    assert Filter({"title": "Rates up"}).matches(business)
    assert folders([business, root, doc("sport/x.txt")]) == ["Business", "Business/2005", "sport"]


def test_dates_and_metadata_keys() -> None:
    new = doc("a.txt", date="2005-03-01", author="Ann")
    old = doc("b.txt", date="2005-03-01T10:00:00Z")  # an index built before days were ISO
    undated = doc("c.txt", date_source="2005")
    for since, until, passing in [
        ("2005-03-01", "2005-03-01", {"a.txt", "b.txt"}),
        ("2005-03-02", None, set()),
        (None, "2005-02-28", set()),
        (None, None, {"a.txt", "b.txt", "c.txt"}),
    ]:
        f = Filter(since=since, until=until)
        assert {d.doc_id for d in (new, old, undated) if f.matches(d)} == passing
    assert Filter({"date": "2005-03-01"}).matches(old)
    assert Filter({"author": "Ann"}).matches(new) and not Filter({"author": "ann"}).matches(new)
    assert not Filter({"author": "Ann"}).matches(old)


# Inside retrieval (index mechanics, with the hash embedder)

DOCS = [
    doc("business/rates.txt", "The central bank raised interest rates by a quarter point."),
    doc("business/fish.txt", "Zebrafish farms raised prices as interest in fish grew."),
    doc("science/fins.txt", "Zebrafish regenerate fins quickly in warm water.", date="2005-02-01"),
    doc("science/labs.txt", "Interest in zebrafish research grew among biologists."),
    doc("sport/swim.txt", "Swimmers raced in warm water; fins are not allowed."),
]


def hash_index(tmp_path: Path, docs: list[Document], name: str, kind: str = "flat") -> Index:
    settings = Settings(
        index_dir=tmp_path / name,
        chunk_size=40,
        chunk_overlap=5,
        embedding_model="test",
        faiss_index=kind,  # type: ignore[arg-type]
    )
    build_index(settings, docs, HashEmbedder(), show_progress=False)
    return load_index(settings, embedding_name=HashEmbedder.name)


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_a_filtered_search_returns_only_passing_documents(tmp_path: Path, mode: str) -> None:
    index = hash_index(tmp_path, DOCS, "all")
    retriever = Retriever(index, HashEmbedder(), Settings(embedding_model="test"))
    unfiltered = retriever.search("zebrafish fins warm water", k=2, mode=mode)
    assert {p.chunk.doc_id for p in unfiltered} & {"science/fins.txt", "science/labs.txt"}
    found = retriever.search(
        "zebrafish fins warm water", k=2, mode=mode, filter=Filter({"folder": "business"})
    )
    # Two passages although the best unfiltered ones are elsewhere: filtered inside the search.
    assert [p.chunk.doc_id for p in found] != [] and len(found) == (1 if mode == "lexical" else 2)
    assert all(p.chunk.doc_id.startswith("business/") for p in found)
    dated = retriever.search("zebrafish", k=5, mode=mode, filter=Filter(since="2005-01-01"))
    assert {p.chunk.doc_id for p in dated} == {"science/fins.txt"}
    # exclude and filter together: one allowed set.
    both = retriever.search(
        "zebrafish",
        k=5,
        mode=mode,
        filter=Filter({"folder": "science"}),
        exclude=frozenset({"science/fins.txt"}),
    )
    assert {p.chunk.doc_id for p in both} == {"science/labs.txt"}
    assert retriever.search("zebrafish", mode=mode, filter=Filter({"folder": "none"})) == []


def test_filtered_top_k_is_the_exact_top_k_of_the_allowed_rows(tmp_path: Path) -> None:
    index = hash_index(tmp_path, DOCS, "all")
    allowed = allowed_rows(index, Filter({"folder": "science"}), frozenset({"sport/swim.txt"}))
    assert allowed is not None
    assert [index.chunks[i].doc_id.startswith("science/") for i in range(len(allowed))] == list(
        allowed
    )
    query = "interest zebrafish water"
    # BM25: the whole index's scores, restricted to the allowed rows, best first.
    scores = index.lexical.scores(query)
    expected = [int(i) for i in np.argsort(-scores, kind="stable") if allowed[i] and scores[i] > 0]
    got = index.lexical.search(query, 10, allowed)
    assert [i for i, _ in got] == expected[:10]
    assert [s for _, s in got] == pytest.approx([float(scores[i]) for i in expected[:10]])
    # FAISS: the cosines of the allowed rows, best first.
    vector = HashEmbedder().encode_query(query)
    cosines = index.vectors() @ vector
    top = sorted(np.flatnonzero(allowed), key=lambda i: -cosines[i])[:2]
    assert [i for i, _ in dense_search(index.dense, vector, 2, allowed)] == top


@pytest.mark.parametrize("exact_rows", [0, 10_000])
def test_hnsw_filtered_search_is_exact_on_these_vectors(
    exact_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both HNSW paths: the selector on the graph (few rows: the graph finds them all), and
    the exact scan of the graph's storage below ``HNSW_EXACT_ROWS``."""
    monkeypatch.setattr("qa.retrieval.HNSW_EXACT_ROWS", exact_rows)
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((2_000, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    hnsw, flat = make_dense_index(vectors, "hnsw"), make_dense_index(vectors, "flat", flat="fp32")
    hnsw.hnsw.efSearch = 1_000  # a walk this wide finds every best allowed row
    allowed = np.zeros(2_000, dtype=bool)
    allowed[rng.choice(2_000, 400, replace=False)] = True
    for query in vectors[:20]:
        got = dense_search(hnsw, query, 10, allowed)
        assert [i for i, _ in got] == [i for i, _ in dense_search(flat, query, 10, allowed)]
        assert all(allowed[i] for i, _ in got)


def test_an_index_without_selectors_is_searched_deeper_until_exact() -> None:
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((500, 16)).astype(np.float32)
    lsh = faiss.IndexLSH(16, 64)
    lsh.add(vectors)
    allowed = np.arange(500) % 50 == 0  # 10 rows, rarely near the top
    _, ranked = lsh.search(vectors[:1], 500)
    expected = [int(i) for i in ranked[0] if allowed[i]][:5]
    assert [i for i, _ in dense_search(lsh, vectors[0], 5, allowed)] == expected


# With the real embedder: a filtered search equals a search of an index of those documents alone

NEWS = [
    doc("business/rates.txt", "The central bank raised interest rates to fight inflation."),
    doc("business/oil.txt", "Oil prices climbed after producers agreed to cut output."),
    doc("business/jobs.txt", "Unemployment fell as factories hired more workers in March."),
    doc("sport/final.txt", "The striker scored twice as the home side won the cup final."),
    doc("sport/tennis.txt", "The champion lost in straight sets at the grass court open."),
    doc("tech/chips.txt", "The chip maker's profits rose on strong demand for phones."),
]


@pytest.fixture(scope="module")
def two_indexes(tmp_path_factory: pytest.TempPathFactory, embedder) -> tuple[QA, QA]:
    root = tmp_path_factory.mktemp("filters")
    settings = Settings(index_dir=root / "all", reader_model="none")
    build_index(settings, NEWS, embedder, show_progress=False)
    business = settings.replace(index_dir=root / "business")
    build_index(
        business, [d for d in NEWS if d.path.startswith("business/")], embedder, show_progress=False
    )
    return QA(settings, embedder=embedder), QA(business, embedder=embedder)


@pytest.mark.parametrize("query", ["profits rose on demand", "who won the final", "prices"])
def test_filtered_dense_top_k_equals_the_index_of_the_filtered_documents(
    two_indexes: tuple[QA, QA], query: str
) -> None:
    full, business = two_indexes
    f = Filter.parse(where=["folder=business"])
    filtered = full.search(query, k=3, mode="dense", filter=f)
    alone = business.search(query, k=3, mode="dense")
    assert [p.chunk.chunk_id for p in filtered] == [p.chunk.chunk_id for p in alone]
    assert [p.score for p in filtered] == pytest.approx([p.score for p in alone], abs=1e-5)
    assert len(filtered) == 3
    # And the unfiltered search does reach outside business for these queries.
    if query != "prices":
        assert any(not p.path.startswith("business/") for p in full.search(query, k=3))


def test_filtered_hybrid_returns_the_filtered_documents_only(two_indexes: tuple[QA, QA]) -> None:
    full, business = two_indexes
    f = Filter.parse(where=["folder=business"])
    filtered = full.search("profits rose on demand", k=3, filter=f)
    assert {p.chunk.doc_id for p in filtered} == {
        p.chunk.doc_id for p in business.search("profits rose on demand", k=3)
    }


def test_ask_takes_a_filter_and_refuses_anything_else(two_indexes: tuple[QA, QA]) -> None:
    full, _ = two_indexes
    f = Filter.parse(where=["folder=sport"])
    result = full.ask("Who scored twice?", filter=f, threshold=0.0)
    assert result.passages and all(p.path.startswith("sport/") for p in result.passages)
    assert all(a.path.startswith("sport/") for a in result.answers)
    tech = full.ask("Who scored twice?", filter=Filter({"folder": "tech"}), threshold=0.0)
    assert all(a.doc_id == "tech/chips.txt" for a in tech.answers)
    with pytest.raises(ValueError, match="must be a qa.filters.Filter"):
        full.ask("Who scored?", filter="folder=sport")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must be a qa.filters.Filter"):
        full.search("Who scored?", filter={"folder": "sport"})  # type: ignore[arg-type]
