"""Updates in place: new rows appended, removed ones masked, compaction past the bound; the
answers those give equal a full build's, and questions asked meanwhile see one index whole."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from pathlib import Path

import numpy as np
import pytest

import qa.appending as qa_appending
import qa.indexing.dense
from qa.indexing.dense import DENSE_FILE, TAIL_FILE, flat_precision_of, refine_of
from qa.indexing.persist import (
    CHUNKS_FILE,
    DOCUMENTS_FILE,
    FILES_FILE,
    FORMAT_VERSION,
    MASKED_FILE,
    TABLE_ENTRIES,
    _read_chunks,
    _read_documents,
    _read_table_entries,
    load_index,
)
from qa.lexical import TERMS_FILE, TOKENS_FILE, LexicalIndex
from qa.pipeline import QA
from qa.retrieval import Retriever, allowed_rows, dense_search
from qa.sentence_vectors import (
    RAW_SPANS_FILE,
    RAW_VECTORS_FILE,
    SPANS_FILE,
    ChunkOwners,
    SentenceVectors,
    StackedRows,
)
from qa.settings import Settings
from qa.store import Index, TailedIndex, is_masked
from qa.types import Chunk, Document

from ..conftest import HashEmbedder

ARTICLES = {
    "budget.txt": "The chancellor set out the budget on Tuesday. Income tax stays at 22 pence. "
    "Borrowing will rise to 34 billion pounds next year. The opposition called it a gamble.",
    "football.txt": "Chelsea beat Arsenal three goals to one at Stamford Bridge. Lampard scored "
    "twice in the second half. The win keeps Chelsea top of the league by six points.",
    "phones.txt": "Mobile phone sales rose by a fifth in the third quarter. Nokia sold 50 "
    "million handsets. Camera phones made up half of all sales in Europe.",
    "oil.txt": "Oil prices climbed above 50 dollars a barrel in New York. Traders worried "
    "about supplies from Nigeria. Opex ministers meet in Vienna next week.",
    "film.txt": "The Aviator won five Oscars at the ceremony in Los Angeles. Cate Blanchett "
    "was named best supporting actress. Million Dollar Baby took best picture.",
    "court.txt": "The high court ruled the detention of foreign suspects unlawful. Nine law "
    "lords heard the appeal. The home secretary said the law would be reviewed.",
    "music.txt": "The band topped the album chart for a third week. Their tour sold out in "
    "four hours. Tickets for the London shows went for 40 pounds.",
    "bank.txt": "The Bank of England held interest rates at 4.75 percent. House prices cooled "
    "in the spring. Economists expect a cut before the summer.",
}
LATER = {
    "0_election.txt": "The prime minister called an election for the fifth of May. Labour "
    "leads the polls by eight points. The campaign starts on Monday.",
    "strike.txt": "Postal workers voted to strike over pay. The union wants a rise of four "
    "percent. Letters may be delayed across Scotland next week.",
}
QUESTIONS = [
    "How many handsets did Nokia sell?",
    "When is the election?",
    "Who scored twice for Chelsea?",
    "What did the high court rule?",
    "Why may letters be delayed?",
    "How much will borrowing rise?",
    "oil prices barrel",
]


class WeightedHashEmbedder(HashEmbedder):
    """HashEmbedder with more dimensions, a weight per word and one dimension every text has,
    so that different chunks seldom tie on cosine (not even at 0, sharing no word with the
    question): exact ties are ranked by row, which an update orders otherwise than a full build
    does."""

    dimension = 512

    def _hash(self, texts, normalize: bool = True) -> np.ndarray:  # noqa: ANN001
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        out[:, 0] = 1.0
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                digest = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest())
                out[row, digest % self.dimension] += 1.0 + (digest >> 16) % 97 / 31
        if not normalize:
            return out
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms)


def make_qa(
    tmp_path: Path,
    name: str,
    articles: dict[str, str],
    embedder: HashEmbedder | None = None,
    **settings: object,
) -> QA:
    corpus = tmp_path / f"{name}-corpus"
    corpus.mkdir()
    for file, text in articles.items():
        (corpus / file).write_text(text, encoding="utf-8")
    values = {
        "corpus_dir": corpus,
        "index_dir": tmp_path / f"{name}-index",
        "chunk_size": 12,
        "chunk_overlap": 3,
        "embedding_model": "test",
        "reader_model": "none",
        **settings,
    }
    embedder = embedder or WeightedHashEmbedder()
    return QA(Settings(**values), embedder=embedder)  # type: ignore[arg-type]


def full_build(tmp_path: Path, articles: dict[str, str], **settings: object) -> QA:
    qa = make_qa(tmp_path, "full", articles, **settings)
    assert qa.build(rebuild=True, show_progress=False).rebuilt
    return qa


def rankings(qa: QA | Index, settings: Settings | None = None) -> list[list[tuple]]:
    """Per question and mode, the passages found (ties in score put in document order)."""
    index = qa.index if isinstance(qa, QA) else qa
    retriever = Retriever(index, WeightedHashEmbedder(), settings or qa.settings)  # type: ignore[union-attr]
    out = []
    for question in QUESTIONS:
        for mode in ("hybrid", "dense", "lexical"):
            hits = retriever.search(question, k=8, mode=mode)  # type: ignore[arg-type]
            found = [(round(p.score, 6), p.chunk.doc_id, p.chunk.start, p.chunk.end) for p in hits]
            out.append(sorted(found, key=lambda h: (-h[0], *h[1:])))
    return out


def answers(qa: QA) -> list[list[tuple]]:
    out = []
    for question in QUESTIONS:
        result = qa.ask(question, threshold=0.0, n_answers=3)
        out.append([(a.doc_id, a.start, a.end, a.text, round(a.score, 5)) for a in result.answers])
    return out


def edit(qa: QA, add: dict[str, str] | None = None, remove: tuple[str, ...] = ()) -> None:
    for file, text in (add or {}).items():
        (qa.settings.corpus_dir / file).write_text(text, encoding="utf-8")
    for file in remove:
        (qa.settings.corpus_dir / file).unlink()


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_added_documents_are_appended_and_answer_as_a_full_build(tmp_path: Path, kind: str) -> None:
    qa = make_qa(tmp_path, "live", ARTICLES, faiss_index=kind)
    qa.build(show_progress=False)
    before = qa.index
    edit(qa, add=LATER)
    report = qa.build(show_progress=False)
    assert report.in_place and not report.rebuilt and report.added == sorted(LATER)
    index = qa.index
    # Previous rows keep their numbers; the new documents' chunks come after them.
    assert index.chunks[: len(before.chunks)] == before.chunks
    assert {c.doc_id for c in index.chunks[len(before.chunks) :]} == set(LATER)
    assert index.dense.ntotal == len(index.chunks) == index.lexical.size
    np.testing.assert_array_equal(index.vectors()[: len(before.chunks)], before.vectors())
    assert index.manifest["generation"] == before.manifest["generation"] + 1 == 2

    full = full_build(tmp_path, {**ARTICLES, **LATER}, faiss_index=kind)
    assert full.index.chunks != index.chunks  # rows in another order...
    assert rankings(qa) == rankings(full)  # ...the same passages and scores
    assert answers(qa) == answers(full)
    reloaded = load_index(qa.settings, embedding_name=WeightedHashEmbedder.name)
    assert rankings(reloaded, qa.settings) == rankings(full)
    assert answers(QA(qa.settings, embedder=WeightedHashEmbedder())) == answers(full)
    # The sentence spans and vectors files are the previous build's, appended to; that build
    # still reads its own rows from them, and the previous rows were not changed.
    for name in (RAW_SPANS_FILE, RAW_VECTORS_FILE):
        shared = [build / name for build in (before.path, index.path)]
        assert shared[0].stat().st_ino == shared[1].stat().st_ino
    own = before.manifest["sentences"]
    assert own == len(before.sentences) < len(index.sentences) == index.manifest["sentences"]
    again = SentenceVectors.load(
        before.path, ChunkOwners(before.chunks), WeightedHashEmbedder.dimension, own
    )
    np.testing.assert_array_equal(again.vectors, before.sentences.vectors)
    np.testing.assert_array_equal(again.spans, before.sentences.spans)
    np.testing.assert_array_equal(index.sentences.spans[:own], before.sentences.spans)
    for doc_id in before.documents:
        np.testing.assert_array_equal(
            index.sentences.of_document(doc_id)[0], before.sentences.of_document(doc_id)[0]
        )


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_new_rows_go_to_an_exact_tail_and_the_faiss_file_is_shared_until_merged(
    tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An update in place leaves the FAISS index as it is (its file hard-linked, never read or
    written again) and keeps the new rows in an exact tail; past the tail's bound they are
    merged into the index, written anew. Either way it answers as a full build does."""
    qa = make_qa(tmp_path, "live", ARTICLES, faiss_index=kind, compact_at=0.9)
    qa.build(show_progress=False)
    first = qa.index
    edit(qa, add=LATER)
    assert qa.build(show_progress=False).in_place
    tailed = qa.index
    assert isinstance(tailed.dense, TailedIndex) and tailed.dense.base is first.dense
    assert tailed.dense.tail.ntotal == len(tailed.chunks) - len(first.chunks)
    dense_file = [build / DENSE_FILE for build in (first.path, tailed.path)]
    assert dense_file[0].stat().st_ino == dense_file[1].stat().st_ino
    assert (tailed.path / TAIL_FILE).is_file() and not (first.path / TAIL_FILE).exists()
    reloaded = load_index(qa.settings, embedding_name=WeightedHashEmbedder.name)
    assert isinstance(reloaded.dense, TailedIndex)
    np.testing.assert_array_equal(reloaded.vectors(), tailed.vectors())
    full = full_build(tmp_path, {**ARTICLES, **LATER}, faiss_index=kind)
    assert rankings(reloaded, qa.settings) == rankings(full)
    # A process that loaded the index (memory-mapped) adds to its tail, then, the tail's bound
    # lowered to 2 rows, merges the tail and its own rows into a copy read from the file (one
    # cloned from the mapping would abort the process when added to).
    qa = QA(qa.settings, embedder=WeightedHashEmbedder())
    extra = {"zz_rates.txt": "The central bank raised rates by a quarter point on Thursday."}
    edit(qa, add=extra)
    assert qa.build(show_progress=False).in_place
    tailed = qa.index
    assert isinstance(tailed.dense, TailedIndex) and tailed.dense_mapped
    monkeypatch.setattr("qa.indexing.dense.TAIL_MIN", 2)
    extra["zz_strike.txt"] = "Rail staff will strike on Friday over pensions."
    edit(qa, add=extra)
    assert qa.build(show_progress=False).in_place
    merged = qa.index
    assert not isinstance(merged.dense, TailedIndex) and merged.dense.ntotal == len(merged.chunks)
    assert (merged.path / DENSE_FILE).stat().st_ino != (tailed.path / DENSE_FILE).stat().st_ino
    assert not (merged.path / TAIL_FILE).exists()
    np.testing.assert_array_equal(merged.vectors()[: len(tailed.chunks)], tailed.vectors())
    (tmp_path / "again").mkdir()
    full = full_build(tmp_path / "again", {**ARTICLES, **LATER, **extra}, faiss_index=kind)
    assert rankings(qa) == rankings(full)


def test_removed_and_changed_documents_old_rows_are_never_returned(tmp_path: Path) -> None:
    qa = make_qa(tmp_path, "live", ARTICLES, compact_at=0.5)
    qa.build(show_progress=False)
    changed = {"phones.txt": "Nokia cut its prices. Mobile phone sales fell in the fourth quarter."}
    edit(qa, add=changed, remove=("oil.txt",))
    report = qa.build(show_progress=False)
    assert report.in_place and (report.removed, report.changed) == (["oil.txt"], ["phones.txt"])
    reloaded = load_index(qa.settings, embedding_name=WeightedHashEmbedder.name)
    for index in (qa.index, reloaded):
        masked = [row for row, c in enumerate(index.chunks) if is_masked(c)]
        assert len(masked) == index.masked == index.manifest["masked_chunks"] > 0
        old_texts = [ARTICLES["oil.txt"], ARTICLES["phones.txt"]]
        n = len(index.chunks)
        for query in [*old_texts, *QUESTIONS]:
            vector = WeightedHashEmbedder().encode_query(query)
            dense = dense_search(index.dense, vector, n, allowed_rows(index))
            lexical = index.lexical.search(query, n)
            assert dense and not {row for row, _ in dense} & set(masked)
            assert not {row for row, _ in lexical} & set(masked)
            assert not index.lexical.scores(query)[masked].any()
            for mode in ("hybrid", "dense", "lexical"):
                retriever = Retriever(index, WeightedHashEmbedder(), qa.settings)
                for p in retriever.search(query, n, mode):  # type: ignore[arg-type]
                    assert p.chunk.doc_id != "oil.txt"
                    assert index.documents[p.chunk.doc_id].text[p.chunk.start : p.chunk.end] == (
                        p.chunk.text
                    )
    full = full_build(
        tmp_path, {k: v for k, v in {**ARTICLES, **changed}.items() if k != "oil.txt"}
    )
    assert rankings(qa) == rankings(full)
    assert answers(qa) == answers(full)
    # From disk too: the sentence rows the update left behind are not the document's.
    assert answers(QA(qa.settings, embedder=WeightedHashEmbedder())) == answers(full)
    # The documents tab counts the live chunks, as the full build has them.
    from qa.web.app import WebApp

    live = len(full.index.chunks)
    assert live < len(qa.index.chunks)
    assert f"{len(full.index.documents)} documents, {live} chunks in the index" in (
        WebApp(qa).documents_html()
    )


def test_compaction_past_the_bound_renumbers_rows_and_answers_the_same(tmp_path: Path) -> None:
    qa = make_qa(tmp_path, "live", ARTICLES, compact_at=0.2)
    qa.build(show_progress=False)
    edit(qa, remove=("court.txt",))
    first = qa.build(show_progress=False)
    masked = qa.index.masked
    assert first.in_place and 0 < masked < 0.2 * len(qa.index.chunks)
    edit(qa, remove=("music.txt",))
    second = qa.build(show_progress=False)
    assert not second.in_place and not second.rebuilt and second.embedded_chunks == 0
    assert qa.index.masked == 0 and qa.index.live_rows is None
    assert qa.index.manifest["generation"] == 3

    rest = {k: v for k, v in ARTICLES.items() if k not in ("court.txt", "music.txt")}
    full = full_build(tmp_path, rest)
    # Compacted rows are numbered as a full build numbers them.
    assert qa.index.chunks == full.index.chunks
    np.testing.assert_allclose(qa.index.vectors(), full.index.vectors(), atol=1e-6)
    assert rankings(qa) == rankings(full)
    assert answers(qa) == answers(full)


class WaitingEmbedder(WeightedHashEmbedder):
    """Embeds once ``asked`` is set, if given: questions are asked while the update runs."""

    asked: threading.Event | None = None

    def encode_pooled(self, texts, spans, *, progress=None):  # noqa: ANN001, ANN201
        assert self.asked is None or self.asked.wait(60)
        return super().encode_pooled(texts, spans, progress=progress)


def test_questions_during_an_update_see_the_old_or_the_new_index_whole(tmp_path: Path) -> None:
    embedder = WaitingEmbedder()
    qa = make_qa(tmp_path, "live", ARTICLES, embedder, compact_at=0.5)
    qa.build(show_progress=False)
    old = qa.index
    old_chunks, old_total = list(old.chunks), old.dense.ntotal
    before = rankings(qa)
    seen: list[list[list[tuple]]] = []
    embedder.asked, done = threading.Event(), threading.Event()

    def ask_meanwhile() -> None:
        while not done.is_set():
            seen.append(rankings(qa))
            if len(seen) >= 4:
                embedder.asked.set()  # type: ignore[union-attr]

    askers = [threading.Thread(target=ask_meanwhile) for _ in range(2)]
    for thread in askers:
        thread.start()
    edit(qa, add=LATER, remove=("bank.txt",))
    try:
        report = qa.build(show_progress=False)
    finally:
        done.set()
        for thread in askers:
            thread.join()
    assert report.in_place and report.embedded_chunks
    after = rankings(qa)
    assert before != after
    assert len(seen) >= 4
    assert all(result in (before, after) for result in seen)
    # The index questions were reading is untouched: the update added to a copy.
    assert old.chunks == old_chunks and old.dense.ntotal == old_total
    assert rankings(old, qa.settings) == before


def test_an_ivfpq_index_grows_in_place_and_a_new_refine_setting_remakes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """IVF-PQ (trained here on a few hundred chunks) takes new chunks through its trained
    quantizers, in place; asked to keep other vectors for re-ranking, the next update makes
    the index anew rather than growing one of the old kind."""
    monkeypatch.setattr(qa.indexing.dense, "IVF_TRAIN_MIN", 256)
    monkeypatch.setattr(qa.indexing.dense, "IVFPQ_M", 32)  # this embedder's 512 dimensions
    words = sorted({w for text in ARTICLES.values() for w in re.findall(r"[a-z]+", text)})
    filler = {
        f"filler{i:02d}.txt": " ".join(words[(i * 7 + j * 3) % len(words)] for j in range(60)) + "."
        for i in range(40)
    }
    live = make_qa(tmp_path, "live", {**ARTICLES, **filler}, faiss_index="ivfpq")
    live.build(show_progress=False)
    assert len(live.index.chunks) >= 256 and refine_of(live.index.dense) == "fp16"
    edit(live, add=LATER)
    report = live.build(show_progress=False)
    assert report.in_place and report.added == sorted(LATER)
    index = live.index
    assert refine_of(index.dense) == "fp16" and index.dense.ntotal == len(index.chunks)
    for chunk in index.chunks:
        if chunk.doc_id in LATER:
            vector = WeightedHashEmbedder().encode_query(chunk.text)
            best, cosine = dense_search(index.dense, vector, 1)[0]
            assert index.chunks[best].text == chunk.text and cosine == pytest.approx(1, abs=2e-3)

    flat = QA(live.settings.replace(ivfpq_refine="flat"), embedder=WeightedHashEmbedder())
    edit(flat, add={"strike.txt": LATER["strike.txt"] + " The talks resume on Friday."})
    report = flat.build(show_progress=False)
    assert not report.in_place and report.changed == ["strike.txt"]
    assert refine_of(flat.index.dense) == "flat" and flat.index.masked == 0


@pytest.mark.parametrize("precision", ["fp16", "fp32"])
def test_an_exact_index_grows_in_its_precision_and_a_new_precision_remakes_it(
    tmp_path: Path, precision: str
) -> None:
    """The exact tail holds its rows as the exact index does, so an update answers as a full
    build in that precision; asked for the other precision, the next update makes the index
    anew from the vectors it held."""
    live = make_qa(tmp_path, "live", ARTICLES, faiss_index="flat", flat_precision=precision)
    live.build(show_progress=False)
    edit(live, add=LATER)
    assert live.build(show_progress=False).in_place
    dense = live.index.dense
    assert isinstance(dense, TailedIndex) and flat_precision_of(dense.tail) == precision
    assert flat_precision_of(dense) == precision
    reloaded = load_index(live.settings, embedding_name=WeightedHashEmbedder.name)
    full = full_build(tmp_path, {**ARTICLES, **LATER}, faiss_index="flat", flat_precision=precision)
    assert flat_precision_of(full.index.dense) == precision
    assert rankings(reloaded, live.settings) == rankings(full)
    other = "fp32" if precision == "fp16" else "fp16"
    again = QA(live.settings.replace(flat_precision=other), embedder=WeightedHashEmbedder())
    edit(again, add={"zz_rates.txt": "The central bank raised rates by a quarter point."})
    report = again.build(show_progress=False)
    assert not isinstance(again.index.dense, TailedIndex)
    assert flat_precision_of(again.index.dense) == other and report.added == ["zz_rates.txt"]
    # The old chunks keep their vectors (rows are numbered afresh).
    old = zip(live.index.chunks, live.index.vectors(), strict=True)
    held = {(c.doc_id, c.start): v for c, v in old}
    for chunk, vector in zip(again.index.chunks, again.index.vectors(), strict=True):
        if chunk.doc_id != "zz_rates.txt":
            np.testing.assert_allclose(vector, held[chunk.doc_id, chunk.start], atol=1e-3)


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivfpq"])
def test_a_loaded_index_is_memory_mapped_and_grows_from_an_owned_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """A process that loads the live index maps its FAISS storage read-only; its update in
    place reads an owned copy to add to (a clone would view the mapping, and adding to it
    aborts the process), and leaves the mapped index as it was."""
    monkeypatch.setattr(qa.indexing.dense, "IVF_TRAIN_MIN", 256)
    monkeypatch.setattr(qa.indexing.dense, "IVFPQ_M", 32)  # this embedder's 512 dimensions
    words = sorted({w for text in ARTICLES.values() for w in re.findall(r"[a-z]+", text)})
    filler = {
        f"filler{i:02d}.txt": " ".join(words[(i * 7 + j * 3) % len(words)] for j in range(60)) + "."
        for i in range(40 if kind == "ivfpq" else 0)
    }
    first = make_qa(tmp_path, "live", {**ARTICLES, **filler}, faiss_index=kind)
    first.build(show_progress=False)
    # A second process alike: the index comes from disk.
    live = QA(first.settings, embedder=WeightedHashEmbedder())
    loaded = live.index
    assert loaded.dense_mapped and isinstance(loaded.lexical.token_ids, np.memmap)
    assert not loaded.lexical._base_postings.rows.flags.writeable
    total, before = loaded.dense.ntotal, rankings(loaded, live.settings)
    edit(live, add=LATER)
    report = live.build(show_progress=False)
    assert report.in_place and report.added == sorted(LATER)
    assert live.index.dense.ntotal == len(live.index.chunks) > total
    assert loaded.dense.ntotal == total and rankings(loaded, live.settings) == before
    if kind != "ivfpq":  # IVF-PQ's approximate search is compared in the test above
        full = full_build(tmp_path, {**ARTICLES, **filler, **LATER}, faiss_index=kind)
        assert rankings(live) == rankings(full)


def table_files(path: Path) -> dict[str, int]:
    """The inode of each table file of the build at ``path`` (BM25's term ids and terms too)."""
    names = (DOCUMENTS_FILE, CHUNKS_FILE, FILES_FILE, f"bm25/{TOKENS_FILE}", f"bm25/{TERMS_FILE}")
    return {name: (path / name).stat().st_ino for name in names}


def read_build(index: Index) -> tuple[dict[str, Document], list[Chunk]]:
    """The documents and chunk rows the build folder of ``index`` holds, read as a load reads
    them (by the build's own share of its table files)."""
    sizes = index.manifest.get("table_bytes", {})
    masked = index.path / MASKED_FILE
    documents = _read_documents(index.path / DOCUMENTS_FILE, sizes.get(DOCUMENTS_FILE))
    chunks, derived = _read_chunks(
        index.path / CHUNKS_FILE,
        documents,
        sizes.get(CHUNKS_FILE),
        np.load(masked) if masked.exists() else None,
    )
    # What the load finds beside the rows is what the build carried over to its index.
    np.testing.assert_array_equal(derived["live"], index.live)
    assert derived["document_rows"] == index.document_rows
    return documents, chunks


def test_updates_in_place_append_to_the_live_tables_and_every_build_reads_its_own(
    tmp_path: Path,
) -> None:
    qa = make_qa(tmp_path, "live", ARTICLES, compact_at=0.9)
    qa.build(show_progress=False)
    first = qa.index
    # What a build that died after appending would leave: bytes past the live build's share.
    for name in (DOCUMENTS_FILE, CHUNKS_FILE, FILES_FILE):
        with (first.path / name).open("ab") as fh:
            fh.write(b'{"doc_id": "half written\n')
    changed = {"phones.txt": "Nokia cut its prices. Mobile phone sales fell in the fourth quarter."}
    builds = [first]
    for add, remove in (({**LATER, **changed}, ("oil.txt",)), ({}, ("0_election.txt",))):
        edit(qa, add=add, remove=remove)
        report = qa.build(show_progress=False)
        assert report.in_place and qa.index.masked
        previous = builds[-1]
        builds.append(qa.index)
        assert table_files(qa.index.path) == table_files(previous.path), "shared, not rewritten"
        # The build before (kept for processes still loading it) reads its own share still.
        for build in (previous, qa.index):
            documents, chunks = read_build(build)
            assert list(documents.items()) == list(build.documents.items())
            assert chunks == build.chunks
            bm25 = LexicalIndex.load(build.path / "bm25", len(chunks))
            for question in QUESTIONS:
                assert (bm25.scores(question) == build.lexical.scores(question)).all()
            # Its manifest holds nothing that grows with the corpus: the documents' hashes and
            # the files' signatures are read from its tables.
            manifest = json.loads((build.path / "manifest.json").read_text(encoding="utf-8"))
            assert not set(TABLE_ENTRIES) & set(manifest)
            _read_table_entries(manifest, build.path, documents)
            assert manifest["documents"] == build.manifest["documents"]
            assert manifest["files"] == build.manifest["files"]
    # The sentence vectors of the first build are read where they are, not copied into each
    # update's table.
    table = builds[-1].sentences.vectors
    assert isinstance(table, StackedRows) and table.blocks[0] is first.sentences.vectors
    assert "oil.txt" not in builds[-1].documents and "0_election.txt" in builds[1].documents
    assert builds[-1].documents["phones.txt"].text == changed["phones.txt"]
    reloaded = load_index(qa.settings, embedding_name=WeightedHashEmbedder.name)
    assert reloaded.chunks == qa.index.chunks and reloaded.masked == qa.index.masked
    full = full_build(
        tmp_path,
        {k: v for k, v in {**ARTICLES, **LATER, **changed}.items() if k not in REMOVED},
    )
    assert list(reloaded.documents) == list(full.index.documents)
    assert rankings(reloaded, qa.settings) == rankings(full)
    assert sorted(reloaded.manifest["files"]) == sorted(full.index.manifest["files"])


REMOVED = ("oil.txt", "0_election.txt")


@pytest.mark.parametrize("base", ["format 3", "format 5", "no hard links"])
def test_tables_of_an_older_build_or_without_hard_links_are_written_right(
    tmp_path: Path, base: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    qa = make_qa(tmp_path, "live", ARTICLES)
    qa.build(show_progress=False)
    first = qa.index
    if base == "format 3":
        # An index of format 3 reads its table files whole: they are not appended to.
        del first.manifest["table_bytes"]
    elif base == "format 5":
        # An index of format 5 keeps its files' signatures in its manifest, not in a table.
        del first.manifest["table_bytes"][FILES_FILE]
        (first.path / FILES_FILE).unlink()
    else:

        def no_links(source: object, target: object) -> None:
            raise OSError("hard links are not supported here")

        monkeypatch.setattr(qa_appending.os, "link", no_links)
    edit(qa, add=LATER, remove=("court.txt",))
    assert qa.build(show_progress=False).in_place
    if base == "format 5":
        # Its documents and chunks are still appended to; the files table is written whole.
        assert (qa.index.path / DOCUMENTS_FILE).samefile(first.path / DOCUMENTS_FILE)
        assert (qa.index.path / FILES_FILE).stat().st_nlink == 1
    else:
        assert table_files(qa.index.path) != table_files(first.path), "written whole"
    reloaded = load_index(qa.settings, embedding_name=WeightedHashEmbedder.name)
    assert reloaded.manifest["files"] == qa.index.manifest["files"]
    assert set(reloaded.manifest["files"]) == {*ARTICLES, *LATER} - {"court.txt"}
    documents, chunks = read_build(qa.index)
    assert list(documents.items()) == list(qa.index.documents.items())
    assert chunks == qa.index.chunks
    assert (read_build(first)[0], read_build(first)[1]) == (first.documents, first.chunks)


def test_an_index_named_by_a_relative_path_shares_its_files_and_keeps_the_build_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``index`` (the default) and not an absolute path: builds are named by absolute paths, so
    the next update in place finds its base live and shares the tables and sentence vectors,
    and pruning keeps the build before for processes still loading it."""
    monkeypatch.chdir(tmp_path)
    qa = make_qa(Path("."), "live", ARTICLES, index_dir=Path("index"))
    qa.build(show_progress=False)
    first = qa.index
    edit(qa, add=LATER)
    assert qa.build(show_progress=False).in_place
    assert first.path.is_absolute() and first.path.is_dir(), "the build before is kept"
    for name in (DOCUMENTS_FILE, CHUNKS_FILE, RAW_VECTORS_FILE):
        assert (first.path / name).stat().st_ino == (qa.index.path / name).stat().st_ino, name


def test_an_update_for_listed_files_adds_changes_and_removes_them_alone(tmp_path: Path) -> None:
    qa = make_qa(tmp_path, "live", ARTICLES)
    qa.build(show_progress=False)
    edit(qa, add=LATER, remove=("oil.txt",))
    (qa.settings.corpus_dir / "film.txt").write_text(
        "Not listed: this edit waits.", encoding="utf-8"
    )
    corpus = qa.settings.corpus_dir
    report = qa.build(show_progress=False, only=["0_election.txt", corpus / "oil.txt"])
    assert report.in_place and report.added == ["0_election.txt"]
    assert report.removed == ["oil.txt"] and report.changed == []
    assert "Aviator" in qa.document("film.txt").text and "strike.txt" not in qa.index.documents
    # The files table got the listed files' lines alone: the film's edit is not recorded, so
    # the next whole update reads it again.
    signatures = load_index(qa.settings, embedding_name=WeightedHashEmbedder.name).manifest["files"]
    assert signatures == qa.index.manifest["files"]
    assert "oil.txt" not in signatures and "strike.txt" not in signatures
    stat = (corpus / "0_election.txt").stat()
    assert signatures["0_election.txt"] == (stat.st_size, stat.st_mtime_ns)
    assert signatures["film.txt"] != (
        (corpus / "film.txt").stat().st_size,
        signatures["film.txt"][1],
    )
    # The files not listed are caught up by the next whole update, as if listed.
    report = qa.build(show_progress=False)
    assert report.added == ["strike.txt"] and report.changed == ["film.txt"]
    expected = {**ARTICLES, **LATER, "film.txt": "Not listed: this edit waits."}
    del expected["oil.txt"]
    full = full_build(tmp_path, expected)
    assert rankings(qa) == rankings(full) and answers(qa) == answers(full)
    with pytest.raises(ValueError, match="not a file of the corpus folder"):
        qa.build(show_progress=False, only=[tmp_path / "elsewhere.txt"])
    with pytest.raises(ValueError, match="rebuild"):
        qa.build(rebuild=True, show_progress=False, only=["film.txt"])


def test_listed_files_without_a_live_index_build_the_whole_corpus(tmp_path: Path) -> None:
    qa = make_qa(tmp_path, "new", ARTICLES)
    report = qa.build(show_progress=False, only=["oil.txt"])
    assert report.rebuilt and report.added == sorted(ARTICLES)


def test_an_update_in_place_carries_the_derived_tables_as_a_fresh_index_would_make_them(
    tmp_path: Path,
) -> None:
    """The row maps an update in place carries over instead of remaking (each document's rows,
    live rows, each row's document position, each document's sentence rows) are those its
    index would make from its own tables, through additions before, between and after the
    documents there, changes and removals."""
    qa = make_qa(tmp_path, "live", ARTICLES, compact_at=0.9)
    qa.build(show_progress=False)
    steps = [
        ({"0_first.txt": "A new first article on rates.", "m_middle.txt": "Rates held."}, ()),
        ({"phones.txt": "Nokia cut its prices again."}, ("oil.txt",)),
        ({"zz_last.txt": "The last article on oil and rates."}, ("0_first.txt",)),
    ]
    for add, remove in steps:
        allowed_rows(qa.index, exclude=frozenset({"bank.txt"}))  # makes chunk_documents
        edit(qa, add=add, remove=remove)
        assert qa.build(show_progress=False).in_place
        index = qa.index
        assert set(index.derived) == {"document_rows", "live", "chunk_documents"}
        remade = Index(
            index.manifest,
            index.documents,
            index.chunks,
            index.dense,
            index.lexical,
            index.path,
            index.sentences,
        )
        assert index.document_rows == remade.document_rows
        np.testing.assert_array_equal(index.live, remade.live)
        np.testing.assert_array_equal(index.chunk_documents, remade.chunk_documents)
        sentences = index.sentences
        fresh = SentenceVectors(sentences.doc_ids, sentences.spans, sentences.vectors)
        assert sentences.document_blocks() == fresh.document_blocks()
        for doc_id, rows in index.document_rows.items():
            assert {index.chunks[r].doc_id for r in rows} == {doc_id}
    assert "oil.txt" not in qa.index.document_rows
    assert answers(qa) == answers(
        full_build(
            tmp_path,
            {f.name: f.read_text(encoding="utf-8") for f in qa.settings.corpus_dir.iterdir()},
        )
    )


def test_an_update_for_listed_files_compares_only_their_documents_and_plans_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An update for listed files compares (and writes) only the documents of those files;
    its plan is the one a comparison of every document makes, and so is what it writes."""
    import qa.indexing.plan as plan_module

    compared: list[tuple[object, object]] = []
    real = plan_module.compare

    def both(documents, previous, touched=None):  # noqa: ANN001, ANN202
        plan = real(documents, previous, touched)
        compared.append((touched, real(documents, previous)))
        return plan

    monkeypatch.setattr(plan_module, "compare", both)
    qa = make_qa(tmp_path, "live", ARTICLES)
    qa.build(show_progress=False)
    steps = [
        ({"0_election.txt": LATER["0_election.txt"]}, (), ["0_election.txt"]),
        ({"phones.txt": "Nokia cut its prices again."}, ("oil.txt",), ["phones.txt", "oil.txt"]),
        ({"bank.txt": ARTICLES["bank.txt"] + " Unlisted edit."}, (), ["film.txt"]),
    ]
    for add, remove, listed in steps:
        edit(qa, add=add, remove=remove)
        compared.clear()
        report = qa.build(show_progress=False, only=listed)
        [(touched, whole)] = compared
        assert touched is not None and set(touched) <= {*listed, *ARTICLES, *LATER}
        assert (report.added, report.changed, report.removed) == (
            whole.added,  # type: ignore[attr-defined]
            whole.changed,  # type: ignore[attr-defined]
            whole.removed,  # type: ignore[attr-defined]
        )
        assert qa.index.manifest["documents"] == whole.hashes  # type: ignore[attr-defined]
        assert set(qa.index.document_rows) <= set(qa.index.documents)
        reloaded = load_index(qa.settings, embedding_name=WeightedHashEmbedder.name)
        assert reloaded.documents == qa.index.documents
        assert reloaded.manifest["documents"] == qa.index.manifest["documents"]
    assert "oil.txt" not in qa.index.documents and "Unlisted" not in qa.document("bank.txt").text


def test_a_sentence_table_keyed_by_document_position_is_keyed_by_chunk_row_as_it_grows(
    tmp_path: Path,
) -> None:
    """An index of format 5 keeps its sentences in a ``.npy`` keyed by document position (-1:
    a row an update left behind). It is read as it is, and the first update in place keys the
    table by chunk rows and writes its spans whole; it answers as a full build throughout."""
    qa = make_qa(tmp_path, "live", ARTICLES)
    qa.build(show_progress=False)
    edit(qa, remove=("oil.txt",))
    assert qa.build(show_progress=False).in_place
    index = qa.index
    # Written back as format 5 would have it.
    position = {doc_id: n for n, doc_id in enumerate(index.documents)}
    spans = np.array(index.sentences.spans)
    owners = [index.sentences.doc_ids[key] for key in spans[:, 0].tolist()]
    spans[:, 0] = [-1 if d is None else position[d] for d in owners]
    assert (spans[:, 0] == -1).any() and (spans[:, 0] >= 0).any()
    np.save(index.path / SPANS_FILE, spans)
    (index.path / RAW_SPANS_FILE).unlink()
    manifest = json.loads((index.path / "manifest.json").read_text(encoding="utf-8"))
    manifest["format_version"] = 5
    del manifest["sentences"]
    (index.path / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")

    old = QA(qa.settings, embedder=WeightedHashEmbedder())
    assert old.index.manifest["format_version"] == 5
    after_removal = {k: v for k, v in ARTICLES.items() if k != "oil.txt"}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert answers(old) == answers(full_build(tmp_path / "a", after_removal))
    changed = {"phones.txt": "Nokia cut its prices. Mobile phone sales fell in the fourth quarter."}
    edit(old, add={**LATER, **changed})
    assert old.build(show_progress=False).in_place
    grown = old.index
    assert grown.manifest["format_version"] == FORMAT_VERSION
    assert (grown.path / RAW_SPANS_FILE).stat().st_nlink == 1  # written whole, shared by none
    full = full_build(tmp_path / "b", {**after_removal, **LATER, **changed})
    for doc_id in grown.documents:
        np.testing.assert_array_equal(
            grown.sentences.of_document(doc_id)[0], full.index.sentences.of_document(doc_id)[0]
        )
    assert not len(grown.sentences.of_document("oil.txt")[0])
    assert answers(old) == answers(full)
    assert answers(QA(qa.settings, embedder=WeightedHashEmbedder())) == answers(full)
