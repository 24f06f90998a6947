"""Passages that several articles carry word for word are read once and cited from each."""

from __future__ import annotations

import shutil
from pathlib import Path

from qa.pipeline import QA
from qa.reading.copies import cite_copies, set_apart
from qa.settings import Settings
from qa.types import Answer, Chunk, Document, Passage

from ..conftest import HashEmbedder

STORY = "Ferry\n\nThe ferry was launched by Hollis Marrow in 1952. It sank in 1960.\n"
# The same story run by another outlet, after a line of its own; a third has other words.
COPY = "Harbour Times\n\n" + STORY
OTHER = "Notes\n\nThe ferry was launched by Jo Hale in 1952. It sank in 1960.\n"
DOCS = {
    d.doc_id: d
    for d in [
        Document("a.txt", "Ferry", "a.txt", STORY, "h1"),
        Document("b.txt", "Harbour Times", "b.txt", COPY, "h2"),
        Document("c.txt", "Notes", "c.txt", OTHER, "h3"),
    ]
}


def passage(doc_id: str, start: int, end: int, score: float) -> Passage:
    text = DOCS[doc_id].text[start:end]
    chunk = Chunk(chunk_id=f"{doc_id}#0", doc_id=doc_id, text=text, start=start, end=end, index=0)
    return Passage(chunk, DOCS[doc_id].title, doc_id, score)


def story_passages() -> list[Passage]:
    body = STORY.index("The ferry")
    shift = len("Harbour Times\n\n")
    return [
        passage("a.txt", body, len(STORY), 0.9),
        passage("b.txt", body + shift, len(COPY), 0.9),
        passage("c.txt", OTHER.index("The ferry"), len(OTHER), 0.5),
    ]


def test_copies_are_set_apart_after_the_first() -> None:
    a, b, c = story_passages()
    distinct, copies = set_apart([a, b, c])
    assert distinct == [a, c]
    assert copies == {a.chunk.chunk_id: [b]}


def test_a_copy_is_cited_at_its_own_offsets_after_its_twin() -> None:
    a, b, c = story_passages()
    start = STORY.index("Hollis Marrow")
    sentence = STORY.index("The ferry")
    context = STORY[sentence : STORY.index(" It sank")]
    found = Answer(
        "Hollis Marrow", 0.8, start, start + 13, "a.txt", "Ferry", "a.txt", context, sentence
    )
    cite_copies([found], [a, c], {a.chunk.chunk_id: [b]}, DOCS)
    assert [s.doc_id for s in found.sources] == ["a.txt", "b.txt"]
    copy = found.sources[1]
    assert COPY[copy.start : copy.end] == "Hollis Marrow" and copy.start == start + 15
    assert COPY[copy.context_start : copy.context_start + len(copy.context)] == context
    assert copy.score == found.score and copy.title == "Harbour Times"


def test_a_copy_that_does_not_hold_the_words_is_not_cited() -> None:
    a, _, c = story_passages()
    # Pretend c.txt were a copy of a's passage: its words differ where the answer would be.
    start = STORY.index("Hollis Marrow")
    found = Answer("Hollis Marrow", 0.8, start, start + 13, "a.txt", "Ferry", "a.txt", "x", 0)
    cite_copies([found], [a], {a.chunk.chunk_id: [c]}, DOCS)
    assert [s.doc_id for s in found.sources] == ["a.txt"]
    # Nor one whose article is unknown (a cluster sent only the documents it read).
    _, b, _ = story_passages()
    cite_copies([found], [a], {a.chunk.chunk_id: [b]}, {"a.txt": DOCS["a.txt"]})
    assert [s.doc_id for s in found.sources] == ["a.txt"]


def test_ask_reads_a_copied_story_once_and_cites_both_articles(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for doc in DOCS.values():
        (corpus / doc.doc_id).write_text(doc.text, encoding="utf-8")
    shutil.copy(corpus / "a.txt", corpus / "d.txt")  # a byte-identical copy too
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", reader_model="none")
    qa = QA(settings, embedder=HashEmbedder())
    qa.build(show_progress=False)
    result = qa.ask("Who launched the ferry in 1952?", threshold=0.0, n_answers=5)
    texts = [p.chunk.text for p in result.passages]
    assert len(texts) == len(set(texts))  # leads: each text once
    cited = {s.doc_id for a in result.answers for s in a.sources}
    assert {"a.txt", "b.txt", "d.txt"} <= cited
    documents = qa.index.documents
    for a in result.answers:
        for s in a.sources:
            text = documents[s.doc_id].text
            assert text[s.start : s.end] == s.text
            assert text[s.context_start : s.context_start + len(s.context)] == s.context
