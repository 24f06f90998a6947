"""BM25: scores equal bm25s's own index's, and updates reuse saved token ids or grow in place."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import bm25s
import numpy as np
import pytest
from bm25s.stopwords import STOPWORDS_EN_PLUS

import qa.lexical
from qa.lexical import LexicalIndex, tokenize

WORDS = (
    "election minister budget deficit striker goal match club phone mobile sales price "
    "oil market shares bank rate film award actor music chart album court ruling police "
    "the of and a to in is was"
).split()
QUERIES = ["budget deficit", "striker goal match", "mobile phone sales", "oil", "film award"]
#: A repeated term (scored once for each time it is asked) and a term no chunk holds, among
#: others: every term's postings are scored in one pass, a row's scores added term by term.
MIXED_QUERIES = ["oil prices, oil shares and the oil market", "zebra budget of the court budget"]


def corpus(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS, k=rng.randint(3, 40))) + "." for _ in range(n)]


def bm25s_scores(texts: list[str], query: str, retriever: bm25s.BM25 | None = None) -> np.ndarray:
    reference = retriever or bm25s.BM25()
    reference.index(tokenize(texts), show_progress=False)
    return np.asarray(reference.get_scores(tokenize([query])[0]), dtype=np.float32)


def test_scores_are_bm25s_scores() -> None:
    texts = corpus(300)
    ours = LexicalIndex.build(texts)
    for query in QUERIES + MIXED_QUERIES:
        np.testing.assert_allclose(ours.scores(query), bm25s_scores(texts, query), rtol=1e-6)
        # Our Lucene formulas round as bm25s's own do: the scores are the same numbers.
        np.testing.assert_array_equal(ours.scores(query), bm25s_scores(texts, query))
        top = ours.search(query, 5)
        assert top and all(s > 0 for _, s in top)
        assert [s for _, s in top] == sorted((s for _, s in top), reverse=True)


def test_update_reuses_token_ids_and_equals_a_fresh_build(monkeypatch) -> None:  # noqa: ANN001
    old_texts = corpus(200, seed=1)
    previous = LexicalIndex.build(old_texts)
    # Drop rows 0-9, keep the rest in a new order, add 5 new chunks.
    kept = list(range(10, 200))
    random.Random(2).shuffle(kept)
    new_texts = corpus(5, seed=3)
    texts = [old_texts[r] for r in kept] + new_texts
    rows = kept + [-1] * len(new_texts)

    tokenised: list[str] = []
    real = qa.lexical.tokenize

    def counting(batch: list[str]) -> list[list[str]]:
        tokenised.extend(batch)
        return real(batch)

    monkeypatch.setattr(qa.lexical, "tokenize", counting)
    updated = LexicalIndex.build(texts, previous, rows)
    assert tokenised == new_texts  # only the new chunks were tokenised
    monkeypatch.setattr(qa.lexical, "tokenize", real)

    fresh = LexicalIndex.build(texts)
    for query in QUERIES:
        np.testing.assert_allclose(updated.scores(query), fresh.scores(query), rtol=1e-6)
    # Words only the dropped chunks had are gone from the vocabulary.
    assert set(updated.vocabulary) - {""} == set(fresh.vocabulary) - {""}


def test_saved_token_ids_round_trip(tmp_path: Path) -> None:
    texts = corpus(50, seed=4)
    built = LexicalIndex.build(texts)
    built.save(tmp_path / "bm25")
    loaded = LexicalIndex.load(tmp_path / "bm25", len(texts))
    assert loaded.token_ids is not None and loaded.token_offsets is not None
    np.testing.assert_array_equal(loaded.token_ids, built.token_ids)
    np.testing.assert_array_equal(loaded.token_offsets, built.token_offsets)
    again = LexicalIndex.build(texts + ["oil price"], loaded, [*range(len(texts)), -1])
    np.testing.assert_allclose(
        again.scores("oil"), LexicalIndex.build(texts + ["oil price"]).scores("oil"), rtol=1e-6
    )


def test_masked_rows_score_as_if_absent_and_round_trip(tmp_path: Path) -> None:
    old_texts = corpus(120, seed=5)
    previous = LexicalIndex.build(old_texts)
    masked = set(range(0, 120, 7))
    added = corpus(4, seed=6)
    # Rows keep their numbers; masked ones are None; new chunks are appended.
    texts = [None if r in masked else t for r, t in enumerate(old_texts)] + added
    rows = [-1 if r in masked else r for r in range(120)] + [-1] * len(added)
    updated = LexicalIndex.build(texts, previous, rows)
    live = [r for r, t in enumerate(texts) if t is not None]
    alone = LexicalIndex.build([texts[r] for r in live])
    updated.save(tmp_path / "bm25")
    loaded = LexicalIndex.load(tmp_path / "bm25", len(texts))
    for index in (updated, loaded):
        for query in QUERIES:
            scores = index.scores(query)
            assert not scores[sorted(masked)].any()
            np.testing.assert_allclose(scores[live], alone.scores(query), rtol=1e-6)
            found, expected = index.search(query, 5), alone.search(query, 5)
            assert [r for r, _ in found] == [live[i] for i, _ in expected]
            assert [s for _, s in found] == pytest.approx([s for _, s in expected])
        allowed = np.zeros(len(texts), bool)
        allowed[len(old_texts) :] = True
        assert {r for r, _ in index.search("oil market", 10, allowed)} <= set(range(120, 124))


@pytest.mark.parametrize("texts", [[], ["the of and", "a to in"]])
def test_corpora_without_terms_never_match(tmp_path: Path, texts: list[str]) -> None:
    built = LexicalIndex.build(texts)
    assert built.search("anything at all", 5) == []
    assert built.scores("anything").shape == (len(texts),)
    built.save(tmp_path / "bm25")
    assert LexicalIndex.load(tmp_path / "bm25", len(texts)).search("anything", 5) == []


def test_bm25_terms_are_those_saved_indexes_were_built_with() -> None:
    """Saved indexes hold token ids of these terms: a change to the default tokenising (its
    stop words, its stemmer) would make updates mix two tokenisings, so it must be deliberate."""
    text = "How had the banks raised their rates under the new minister?"
    assert tokenize([text]) == [["how", "had", "bank", "rais", "rate", "under", "new", "minist"]]
    # The sentence scorer's longer list drops question words and auxiliaries too.
    assert tokenize([text], stopwords=STOPWORDS_EN_PLUS) == [
        ["bank", "rais", "rate", "new", "minist"]
    ]


@pytest.mark.parametrize("parts", [1, 2, 4])
def test_parts_scored_with_the_corpus_statistics_score_as_one_index(parts: int) -> None:
    """Chunks split among indexes, each scored by ``global_scores`` under the summed
    statistics: every chunk's score is the one index's over all chunks (bit for bit), and the
    best k of the parts merged by score are the one index's best k."""
    texts = corpus(400, seed=5)
    whole = LexicalIndex.build(texts)
    rng = random.Random(6)
    owner = [rng.randrange(parts) for _ in texts]
    rows = [[i for i, o in enumerate(owner) if o == p] for p in range(parts)]
    indexes = [LexicalIndex.build([texts[i] for i in mine]) for mine in rows]
    for query in [*QUERIES, "oil oil price", "music chart chart album", "unknown words"]:
        terms = tokenize([query])[0]
        statistics = qa.lexical.TermStatistics.total(i.statistics(terms) for i in indexes)
        assert statistics == whole.statistics(terms)
        scores = np.zeros(len(texts), dtype=np.float32)
        for index, mine in zip(indexes, rows, strict=True):
            scores[mine] = index.global_scores(query, statistics)
        np.testing.assert_array_equal(scores, whole.scores(query))

        merged = sorted(
            (
                (mine[row], score)
                for index, mine in zip(indexes, rows, strict=True)
                for row, score in index.search_global(query, 10, statistics)
            ),
            key=lambda pair: (-pair[1], pair[0]),
        )[:10]
        expected = whole.search(query, 10)
        assert [s for _, s in merged] == [s for _, s in expected]
        # Equal scores may come in another order; the chunks above the last score are the same.
        cutoff = expected[-1][1] if expected else 0.0
        assert {r for r, s in merged if s > cutoff} == {r for r, s in expected if s > cutoff}


def test_global_search_keeps_to_the_allowed_chunks() -> None:
    texts = corpus(120, seed=7)
    index = LexicalIndex.build(texts)
    allowed = np.arange(len(texts)) % 3 == 0
    statistics = index.statistics(tokenize(["oil price"])[0])
    found = index.search_global("oil price", 8, statistics, allowed)
    assert found and all(allowed[row] and score > 0 for row, score in found)
    assert [s for _, s in found] == [s for _, s in index.search("oil price", 8, allowed)]


def test_a_part_with_masked_rows_counts_only_its_live_chunks_in_the_statistics() -> None:
    """A shard updated in place keeps masked rows: they are no chunks of the corpus statistics
    (else every idf and the mean length would drift), and score 0 under them."""
    first, second = corpus(150, seed=8), corpus(90, seed=9)
    masked = set(range(0, 150, 5))
    texts = [None if r in masked else t for r, t in enumerate(first)]
    updated = LexicalIndex.build(
        texts, LexicalIndex.build(first), [-1 if r in masked else r for r in range(150)]
    )
    live = [t for t in texts if t is not None]
    whole = LexicalIndex.build(live + second)
    other = LexicalIndex.build(second)
    for query in [*QUERIES, "oil oil price"]:
        terms = tokenize([query])[0]
        statistics = qa.lexical.TermStatistics.total(
            [updated.statistics(terms), other.statistics(terms)]
        )
        assert statistics == whole.statistics(terms)
        scores = updated.global_scores(query, statistics)
        assert not scores[sorted(masked)].any()
        live_rows = [r for r in range(150) if r not in masked]
        np.testing.assert_array_equal(scores[live_rows], whole.scores(query)[: len(live)])


def test_bm25s_is_imported_without_scipy_and_scores_the_same(tmp_path: Path) -> None:
    """A question needs no scipy (importing it took 0.2 s of a cold search), so bm25s is
    imported with scipy unseen: it then falls back to its numpy backend. In a fresh process the
    index stack imports no scipy, builds, saves, loads and answers with the same scores as
    here (where other tests have loaded scipy first), and scipy stays importable after."""
    texts = corpus(200, seed=9)
    code = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "import qa.lexical, qa.reading.sentences, qa.store\n"
        "loaded = 'scipy' in sys.modules\n"
        "texts = json.loads(sys.argv[1])\n"
        "index = qa.lexical.LexicalIndex.build(texts)\n"
        "index.save(Path(sys.argv[2]))\n"
        "again = qa.lexical.LexicalIndex.load(Path(sys.argv[2]), len(texts))\n"
        "hits = {q: again.search(q, 5) for q in json.loads(sys.argv[3])}\n"
        "import scipy.sparse\n"
        "print(json.dumps([loaded, qa.lexical.bm25s.SCIPY_AVAILABLE, hits]))\n"
    )
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            json.dumps(texts),
            str(tmp_path / "bm25"),
            json.dumps(QUERIES),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        encoding="utf-8",
    )
    scipy_loaded, bm25s_saw_scipy, hits = json.loads(out.stdout)
    assert scipy_loaded is False and bm25s_saw_scipy is False
    here = LexicalIndex.build(texts)
    for query in QUERIES:
        expected = here.search(query, 5)
        assert expected
        assert [r for r, _ in expected] == [r for r, _ in hits[query]]
        assert [s for _, s in expected] == pytest.approx([s for _, s in hits[query]], rel=1e-6)


def _grown(
    seed: int, bound: int
) -> tuple[LexicalIndex, LexicalIndex, list[str | None], list[int], list[str]]:
    """An index of 200 chunks, then that index grown by three updates in place (rows masked,
    chunks appended with words it never had) with a tail of at most ``bound`` rows."""
    texts: list[str | None] = list(corpus(200, seed=seed))
    first = index = LexicalIndex.build(texts)
    rng = random.Random(seed)
    for update in range(3):
        for row in rng.sample(range(len(texts)), 15):
            texts[row] = None
        added = [f"{t} zeppelin{update} quasar" for t in corpus(12, seed=seed + 10 + update)]
        rows = [r if t is not None else -1 for r, t in enumerate(texts)] + [-1] * len(added)
        texts += added
        index = LexicalIndex.build(texts, index, rows, tail_bound=lambda _rows: bound)
    live = [r for r, t in enumerate(texts) if t is not None]
    return first, index, texts, live, [t for t in texts if t is not None]


@pytest.mark.parametrize("bound", [0, 10, 1_000], ids=["merged-each-time", "merged", "tail"])
def test_an_index_grown_in_place_scores_as_a_fresh_build_of_its_live_chunks(
    tmp_path: Path, bound: int
) -> None:
    first, grown, texts, live, live_texts = _grown(11, bound)
    fresh = LexicalIndex.build(live_texts)
    assert grown.base_rows == (len(texts) if bound < 12 else 200)
    assert len(grown.masked) == len(texts) - len(live) and grown.rows.tolist() == live
    grown.save(tmp_path / "grown")
    loaded = LexicalIndex.load(tmp_path / "grown", len(texts))
    for index in (grown, loaded):
        for query in [*QUERIES, "zeppelin1 quasar", "quasar oil", "zeppelin2"]:
            scores = index.scores(query)
            assert not scores[index.masked].any()
            np.testing.assert_array_equal(scores[live], fresh.scores(query))
            found = index.search(query, 7)
            assert [(live[r], s) for r, s in fresh.search(query, 7)] == found
            terms = tokenize([query])[0]
            assert index.statistics(terms) == fresh.statistics(terms)
    # The first index's rows: untouched by its growth.
    np.testing.assert_array_equal(
        first.scores("oil market"), LexicalIndex.build(corpus(200, seed=11)).scores("oil market")
    )


def test_a_grown_index_appends_to_the_files_it_grew_from_which_still_read_as_they_were(
    tmp_path: Path,
) -> None:
    texts: list[str | None] = list(corpus(150, seed=12))
    live = LexicalIndex.build(texts)
    live.save(tmp_path / "live")
    live = LexicalIndex.load(tmp_path / "live", len(texts))
    before = {q: live.scores(q) for q in QUERIES}
    texts[3] = None
    grown_texts = [*texts, "zeppelin oil market", "zeppelin film award"]
    rows = [r if t is not None else -1 for r, t in enumerate(texts)] + [-1, -1]
    grown = LexicalIndex.build(grown_texts, live, rows, tail_bound=lambda _rows: 100)
    grown.save(tmp_path / "grown", shared_with=tmp_path / "live")

    for name in (qa.lexical.TOKENS_FILE, qa.lexical.TERMS_FILE, *qa.lexical.POSTINGS_FILES):
        assert (tmp_path / "grown" / name).stat().st_ino == (tmp_path / "live" / name).stat().st_ino
    again = LexicalIndex.load(tmp_path / "live", 150)  # reads its own share of the shared files
    for query in QUERIES:
        np.testing.assert_array_equal(again.scores(query), before[query])
        np.testing.assert_array_equal(live.scores(query), before[query])
    loaded = LexicalIndex.load(tmp_path / "grown", len(grown_texts))
    assert "zeppelin" in loaded.vocabulary and "zeppelin" not in again.vocabulary
    fresh = LexicalIndex.build([t for t in grown_texts if t is not None])
    keep = [r for r, t in enumerate(grown_texts) if t is not None]
    for query in [*QUERIES, "zeppelin"]:
        np.testing.assert_array_equal(loaded.scores(query)[keep], fresh.scores(query))

    # Past the tail's bound the postings are made anew and written, not linked.
    merged = LexicalIndex.build(grown_texts, live, rows, tail_bound=lambda _rows: 1)
    merged.save(tmp_path / "merged", shared_with=tmp_path / "live")
    postings = qa.lexical.POSTINGS_FILES[1]
    assert (tmp_path / "merged" / postings).stat().st_ino != (
        tmp_path / "live" / postings
    ).stat().st_ino
    for query in QUERIES:
        np.testing.assert_array_equal(
            LexicalIndex.load(tmp_path / "merged", len(grown_texts)).scores(query)[keep],
            fresh.scores(query),
        )


def test_an_index_saved_by_bm25s_before_format_5_is_read(tmp_path: Path) -> None:
    """Builds written before postings kept bm25s's index, its vocabulary file, the token ids
    as an .npy and the live rows: such a build still answers, with the same scores."""
    texts = corpus(90, seed=13)
    built = LexicalIndex.build(texts)
    old = tmp_path / "bm25"
    old.mkdir()
    (old / qa.lexical.LEGACY_VOCAB_FILE).write_text(json.dumps(built.vocabulary), encoding="utf-8")
    np.save(old / qa.lexical.LEGACY_TOKEN_IDS_FILE, built.token_ids)
    np.save(old / qa.lexical.TOKEN_OFFSETS_FILE, built.token_offsets)
    np.save(old / qa.lexical.LEGACY_ROWS_FILE, np.arange(1, 90))  # row 0 masked
    loaded = LexicalIndex.load(old, 90)
    masked = LexicalIndex.build([None, *texts[1:]])
    for query in QUERIES:
        np.testing.assert_array_equal(loaded.scores(query), masked.scores(query))
    # And it grows in place into files of the current format.
    grown = LexicalIndex.build(
        [None, *texts[1:], "zeppelin"], loaded, [-1, *range(1, 90), -1], tail_bound=lambda r: 9
    )
    grown.save(tmp_path / "grown", shared_with=old)
    assert LexicalIndex.load(tmp_path / "grown", 91).scores("zeppelin")[90] > 0


def test_term_ids_kept_in_parts_slice_as_one_array_and_keep_the_saved_part() -> None:
    saved = np.arange(10, dtype=np.int32)
    ids = qa.lexical._Ids([saved])
    joined = [saved]
    for update in range(qa.lexical._Ids.MAX_PARTS + 3):
        more = np.arange(update * 3 + 100, update * 3 + 103, dtype=np.int32)
        ids, joined = ids.plus(more), [*joined, more]
        whole = np.concatenate(joined)
        assert len(ids) == len(whole) and len(ids.parts) <= qa.lexical._Ids.MAX_PARTS
        for start, end in [(0, len(whole)), (8, 14), (10, 13), (len(whole) - 4, len(whole))]:
            np.testing.assert_array_equal(ids.slice(start, end), whole[start:end])
    assert ids.parts[0] is saved  # the saved (mapped) ids are never copied into a join
