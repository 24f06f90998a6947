"""The test doubles fill the roles the product's components play.

mypy (run in CI over this file, see pyproject.toml) checks each assignment below against the
protocol's signatures; the test checks that the roles' members exist at run time too.
"""

from __future__ import annotations

from pathlib import Path
from typing import get_type_hints

from qa.embedding import Embedder
from qa.filters import Filter
from qa.pipeline import QA
from qa.protocols import Encoder, Reader, Retriever, RetrieverFactory
from qa.reading.onnx_reader import OnnxReader
from qa.reading.transformer import TransformerReader
from qa.retrieval import Retriever as HybridRetriever
from qa.settings import RetrievalMode, Settings
from qa.store import Index
from qa.types import Passage
from tests.conftest import HashEmbedder
from tests.evaluation.test_calibration import NameReader
from tests.reading.test_answers import FakeReader

ENCODERS: list[Encoder] = [HashEmbedder(), Embedder()]
READERS: list[Reader] = [FakeReader({}), NameReader(), OnnxReader(), TransformerReader()]


class FirstChunks:
    """A retriever double: an index's first chunks in order, whatever the query."""

    def __init__(self, index: Index, embedder: Encoder, settings: Settings) -> None:
        self.index = index
        self.queries: list[str] = []

    def search(
        self,
        query: str,
        k: int | None = None,
        mode: RetrievalMode | None = None,
        timings: dict[str, float] | None = None,
        exclude: frozenset[str] = frozenset(),
        filter: Filter | None = None,
    ) -> list[Passage]:
        SEARCHED.append(query)
        documents = self.index.documents
        return [
            Passage(c, documents[c.doc_id].title, documents[c.doc_id].path, 1.0)
            for c in self.index.chunks[: k or 5]
        ]


SEARCHED: list[str] = []
RETRIEVER_FACTORIES: list[RetrieverFactory] = [HybridRetriever, FirstChunks]


def _members(role: type) -> set[str]:
    own = {n for n in vars(role) if not n.startswith("_")}
    return own | set(get_type_hints(role))


def test_every_double_and_component_has_the_members_of_its_role() -> None:
    for role, players in ((Encoder, ENCODERS), (Reader, READERS), (Retriever, RETRIEVER_FACTORIES)):
        members = _members(role)
        assert members, role
        for player in players:
            missing = {m for m in members if not hasattr(type(player), m) and m not in vars(player)}
            name = type(player).__name__
            assert not missing, f"{name} lacks {sorted(missing)} of {role.__name__}"


def test_qa_asks_through_the_retriever_it_is_given(seed_corpus: Path, tmp_path: Path) -> None:
    settings = Settings(corpus_dir=seed_corpus, index_dir=tmp_path / "index", reader_model="none")
    qa = QA(settings, embedder=HashEmbedder(), retriever=FirstChunks)
    qa.build(show_progress=False)
    SEARCHED.clear()
    first = qa.index.chunks[0]
    assert [p.chunk for p in qa.search("anything", k=2)] == qa.index.chunks[:2]
    result = qa.ask("What is the capital of France?", threshold=0.0)
    assert SEARCHED == ["anything", "What is the capital of France?"]
    assert result.passages[0].chunk == first  # what the double returned, not a real search
