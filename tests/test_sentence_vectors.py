"""Sentence vectors made at index time from the chunks' token vectors."""

from __future__ import annotations

import numpy as np
import pytest

from qa import QA
from qa.sentence_vectors import assemble, chunk_sentence_spans
from qa.settings import Settings
from qa.text import split_sentences
from qa.types import Chunk, Document

from .conftest import HashEmbedder


def _doc(text: str) -> Document:
    return Document("d.txt", "D", "d.txt", text, "h")


def _chunk(doc: Document, index: int, start: int, end: int) -> Chunk:
    return Chunk(f"d.txt#{index}", doc.doc_id, index, start, end, doc.text[start:end])


def test_a_sentence_cut_by_chunk_boundaries_pools_every_piece() -> None:
    doc = _doc("Alpha beta gamma. Delta epsilon zeta eta theta. Iota kappa.")
    sentences = split_sentences(doc.text)
    assert len(sentences) == 3
    # Chunk 0 ends inside the second sentence, chunk 1 starts inside it: no chunk holds it.
    cut = doc.text.index("zeta")
    chunks = [_chunk(doc, 0, 0, cut), _chunk(doc, 1, cut, len(doc.text))]
    requests, plan = chunk_sentence_spans([doc], chunks)
    assert requests[0] == [(0, 17), (18, cut)]
    assert requests[1] == [
        (0, sentences[1].end - cut),
        (sentences[2].start - cut, sentences[2].end - cut),
    ]
    assert plan[0][1] == (sentences[1].start, sentences[1].end, 0, 1, 1, 0)

    emb = HashEmbedder()
    _, pools = emb.encode_pooled([c.text for c in chunks], requests)
    spans, vectors = assemble([doc], plan, pools, emb.encode, emb.dimension)
    np.testing.assert_array_equal(spans[0], [[s.start, s.end] for s in sentences])
    # Pooled from both pieces, the cut sentence's vector is that of its whole text.
    expected = emb.encode([s.text for s in sentences])
    np.testing.assert_allclose(vectors[0].astype(np.float32), expected, atol=2e-3)


def test_a_sentence_without_tokens_of_its_own_is_embedded_alone() -> None:
    doc = _doc("Alpha beta. Gamma delta.")
    chunks = [_chunk(doc, 0, 0, len(doc.text))]
    requests, plan = chunk_sentence_spans([doc], chunks)
    emb = HashEmbedder()
    _, pools = emb.encode_pooled([c.text for c in chunks], requests)
    pools[0][1][1] = 0  # as if no word piece of the second sentence were in the chunk
    pools[0][0][1] = 0
    alone: list[str] = []

    def embed_alone(texts: list[str]) -> np.ndarray:
        alone.extend(texts)
        return emb.encode(texts)

    _, vectors = assemble([doc], plan, pools, embed_alone, emb.dimension)
    assert alone == ["Gamma delta."]
    np.testing.assert_allclose(vectors[0][1].astype(np.float32), emb.encode(alone)[0], atol=2e-3)


@pytest.mark.slow
def test_pooled_encoding_gives_the_model_vectors_and_span_sums(embedder) -> None:  # noqa: ANN001
    texts = ["Hello world. Second sentence here.", "Short.", "A third text, longer than both."]
    spans = [[(0, 12), (13, 34)], [(0, 6)], []]
    done: list[int] = []
    vectors, pools = embedder.encode_pooled(texts, spans, progress=done.append)
    # sentence-transformers' own loop, which orders and pads its batches otherwise.
    own = embedder.model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    np.testing.assert_allclose(vectors, own, atol=1e-5)
    assert done[-1] == len(texts)
    # "hello world ." and "second sentence here ." are 3 and 4 word pieces; "short ." 2.
    assert pools[0][1].tolist() == [3, 4] and pools[1][1].tolist() == [2]
    assert pools[2][0].shape == (0, embedder.dimension)


@pytest.mark.slow
def test_index_holds_a_vector_for_every_sentence(seed_index_settings: Settings, embedder) -> None:  # noqa: ANN001
    qa = QA(seed_index_settings, embedder=embedder)
    index = qa.index
    own_nearest = total = 0
    for doc in index.documents.values():
        sentences = split_sentences(doc.text)
        found = index.sentences.lookup(doc.doc_id, [(s.start, s.end) for s in sentences])
        assert all(v is not None for v in found), doc.doc_id
        contextual = np.stack(found)  # type: ignore[arg-type]
        np.testing.assert_allclose(np.linalg.norm(contextual, axis=1), 1.0, atol=2e-3)
        alone = embedder.encode([s.text for s in sentences])
        # Pooled in context, a sentence's vector is still closest to that sentence on its own.
        own_nearest += int(np.sum(np.argmax(contextual @ alone.T, axis=1) == np.arange(len(alone))))
        total += len(sentences)
    assert total > 40 and own_nearest / total >= 0.9
    assert index.sentences.lookup("no-such-doc", [(0, 5)]) == [None]


@pytest.mark.slow
def test_asking_embeds_only_the_question(seed_index_settings: Settings, embedder) -> None:  # noqa: ANN001
    qa = QA(seed_index_settings, embedder=embedder)
    qa.ask("warm up the index")
    calls: list[list[str]] = []
    real = embedder.encode

    def counting(texts: list[str], **kw: object) -> np.ndarray:
        calls.append(list(texts))
        return real(texts, **kw)

    embedder.encode = counting
    try:
        result = qa.ask("Where did Kim Jong-un and Trump agree to resume working-level talks?")
    finally:
        del embedder.encode
    assert not result.abstained
    # Only the question may be embedded (by torch when no ONNX query encoder is in use).
    assert all(texts == [result.question] for texts in calls)


def test_stacked_rows_read_as_the_joined_table_and_save_the_same_file(tmp_path) -> None:  # noqa: ANN001
    from qa.sentence_vectors import RAW_VECTORS_FILE, SentenceVectors, StackedRows

    rng = np.random.default_rng(3)
    blocks = [rng.standard_normal((n, 4)).astype(np.float16) for n in (5, 0, 3, 1)]
    joined = np.concatenate(blocks)
    stacked = StackedRows(blocks)
    assert stacked.shape == joined.shape and len(stacked) == 9 and stacked.dtype == np.float16
    assert np.array_equal(np.asarray(stacked), joined)
    for lo in range(10):
        for hi in range(lo, 11):
            assert np.array_equal(stacked[lo:hi], joined[lo:hi]), (lo, hi)
    for row in (0, 4, 5, 7, 8, -1, -9):
        assert np.array_equal(stacked[row], joined[row])
    with pytest.raises(IndexError):
        stacked[9]
    with pytest.raises(IndexError):
        stacked[::2]
    # A document's rows lie in one block: read as a view, not a copy.
    assert np.shares_memory(stacked[5:8], blocks[2])
    # Nested tables flatten; a single block is itself.
    assert StackedRows.of(blocks[0]) is blocks[0]
    assert len(StackedRows([stacked, blocks[3]]).blocks) == 4
    # Past MAX_BLOCKS, every block after the first is joined.
    many = StackedRows([blocks[0], *[blocks[3]] * (StackedRows.MAX_BLOCKS + 1)])
    assert len(many.blocks) == 2 and many.blocks[0] is blocks[0]
    with pytest.raises(ValueError, match="row shape"):
        StackedRows([blocks[0], np.zeros((2, 3), np.float16)])
    # Saved whole, a stacked table writes the same bytes as the joined one.
    spans = np.column_stack([np.zeros(9, np.int64), np.arange(9), np.arange(9) + 1])
    for name, vectors in (("joined", joined), ("stacked", stacked)):
        (tmp_path / name).mkdir()
        SentenceVectors(["d"], spans, vectors).save(tmp_path / name)
    assert (tmp_path / "joined" / RAW_VECTORS_FILE).read_bytes() == (
        tmp_path / "stacked" / RAW_VECTORS_FILE
    ).read_bytes()


def test_embedding_in_groups_of_documents_gives_the_result_of_one_pass() -> None:
    from qa.indexing.chunking import Chunker
    from qa.indexing.embed import embed_chunks

    texts = ["Alpha beta gamma. Delta epsilon.", "", "Zeta eta. Theta iota kappa. Lambda mu."]
    documents = [Document(f"{i}.txt", str(i), f"{i}.txt", t, str(i)) for i, t in enumerate(texts)]
    documents += [Document("3.txt", "3", "3.txt", " ".join(texts) * 3, "3")]
    chunks = Chunker(8, 2, lambda text: len(text.split())).split_all(documents)
    assert len({c.doc_id for c in chunks}) == 3 and len(chunks) > 4
    emb = HashEmbedder()
    calls: list[tuple[int, int]] = []
    whole, at_once = embed_chunks(documents, chunks, emb, None, False)
    grouped, in_groups = embed_chunks(
        documents, chunks, emb, lambda done, total: calls.append((done, total)), False, 2
    )
    np.testing.assert_array_equal(whole, grouped)
    assert at_once.keys() == in_groups.keys() == {d.doc_id for d in documents}
    for doc_id, (spans, vectors) in at_once.items():
        np.testing.assert_array_equal(spans, in_groups[doc_id][0])
        np.testing.assert_array_equal(vectors, in_groups[doc_id][1])
    # Progress counts chunks over the whole build, group after group.
    assert calls[-1] == (len(chunks), len(chunks))
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


@pytest.mark.slow
def test_batches_hold_texts_of_nearly_one_length_in_word_pieces(embedder) -> None:  # noqa: ANN001
    from qa.embedding import Embedder

    # Ordered by characters (31, 27, 20, 17), the batches of two would pair 8 with 16 pieces
    # and 4 with 11; ordered by word pieces they pair 16 with 11 and 8 with 4.
    texts = [
        "Unquestionably straightforward.",
        "a b c d e f g h i j k l m n",
        "Extraordinarily fine",
        "1 2 3 4 5 6 7 8 9",
    ]
    pieces = [len(embedder.text_tokenizer.encode(t).ids) for t in texts]
    ordered = sorted(pieces, reverse=True)
    by_chars = [pieces[i] for i in sorted(range(4), key=lambda i: -len(texts[i]))]
    assert max(by_chars[:2]) + max(by_chars[2:]) > ordered[0] + ordered[2]

    pairs = Embedder(batch_size=2, loaded=embedder.model)
    widths: list[int] = []
    hook = embedder.model.register_forward_pre_hook(
        lambda _module, args: widths.append(args[0]["input_ids"].shape[1])
    )
    try:
        vectors, _ = pairs.encode_pooled(texts, [[] for _ in texts])
    finally:
        hook.remove()
    assert widths == [ordered[0], ordered[2]]
    own = embedder.model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    np.testing.assert_allclose(vectors, own, atol=1e-5)
