"""The txtai side of the benchmarks: it ranks our chunks by their documents, and its ratios
feed the targets the right way round."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.run import check_targets
from benchmarks.txtai_side import MODES, TxtaiIndex, ratios
from qa.types import Chunk

TEXTS = {
    "markets/1.txt": "Shares fell sharply in Tokyo as investors sold bank stocks and the yen rose.",
    "sport/2.txt": "The striker scored twice as the home side won the cup final in extra time.",
    "tech/3.txt": "The new phone has a faster chip, a larger battery and a folding screen.",
}


def _chunks() -> list[Chunk]:
    return [
        Chunk(chunk_id=f"{doc}#0", doc_id=doc, index=0, start=0, end=len(text), text=text)
        for doc, text in TEXTS.items()
    ]


@pytest.mark.slow
@pytest.mark.parametrize("hybrid", [True, False], ids=["hybrid", "dense"])
def test_txtai_ranks_the_right_document_first_and_saves(hybrid: bool, tmp_path: Path) -> None:
    pytest.importorskip("txtai", reason="txtai is not installed (it comes with the bench extra)")
    from qa.embedding import resolve_model

    model_dir, _ = resolve_model("default")
    tx = TxtaiIndex(model_dir, hybrid=hybrid, top_k=2)
    tx.warm_up()
    # The packaged folder, not txtai's default hub model.
    assert tx.embeddings.config["path"] == str(model_dir)
    assert tx.index(_chunks())["total_s"] > 0
    assert tx.search("Which team won the final?")[0] == "sport/2.txt"
    assert tx.search("Why did bank shares drop in Japan?")[0] == "markets/1.txt"
    assert tx.search("a phone with a bigger battery")[0] == "tech/3.txt"
    saved = tx.save(tmp_path / "txtai")
    assert saved["bytes"] > 0 and saved["faiss"] == "IDMap,Flat"
    # Hybrid keeps txtai's own keyword (BM25) index on disk beside the dense one.
    assert ("scoring" in saved["parts_bytes"]) is hybrid


def _results(ours_ms: float, txtai_ms: float, ours_recall: float, txtai_recall: float) -> dict:
    total = {"p50_ms": 0.0, "p95_ms": 0.0}
    bbc = {}
    for mode in MODES:
        ours = "ours_search" if mode == "hybrid" else f"ours_search_{mode}"
        bbc[ours] = {"total": {**total, "p50_ms": ours_ms, "p95_ms": 2 * ours_ms}}
        bbc[f"{ours}_torch_query"] = {"total": {**total, "p50_ms": 2 * ours_ms}}
        bbc[f"txtai_{mode}"] = {"total": {"p50_ms": txtai_ms, "p95_ms": 4 * txtai_ms}}
    xquad = {f"{who}_{m}_recall@5": r for m in MODES for who, r in [("ours", ours_recall)]}
    xquad.update({f"txtai_{m}_recall@5": txtai_recall for m in MODES})
    build = {m: {"build_s": 20.0, "bytes": 1000} for m in MODES}
    txtai = {"ours_bbc_build_s": 10.0, "ours_bbc_index_bytes": 3000, "bbc_build": build}
    return {"latency": {"bbc": bbc}, "xquad": xquad, "txtai": txtai}


def test_ratios_are_ours_over_txtai_and_meet_the_targets_only_when_both_hold() -> None:
    results = _results(ours_ms=10.0, txtai_ms=40.0, ours_recall=0.98, txtai_recall=0.97)
    results["txtai"]["ratios"] = ratios(results)
    hybrid = results["txtai"]["ratios"]["hybrid"]
    assert hybrid["search_p50_ratio"] == 0.25
    assert hybrid["search_p95_ratio"] == 0.125
    assert hybrid["search_p50_ratio_torch_query"] == 0.5
    assert hybrid["xquad_recall_diff"] == 0.01
    assert hybrid["build_ratio"] == 0.5 and hybrid["size_ratio"] == 3.0
    verdicts = check_targets(results)
    for mode in MODES:
        assert verdicts[f"retrieval latency ours/txtai, {mode}"]["met"] is True
        assert verdicts[f"xquad recall@5 ours - txtai, {mode}"]["met"] is True

    slower = _results(ours_ms=30.0, txtai_ms=40.0, ours_recall=0.96, txtai_recall=0.97)
    slower["txtai"]["ratios"] = ratios(slower)
    verdicts = check_targets(slower)
    assert verdicts["retrieval latency ours/txtai, dense"]["met"] is False
    assert verdicts["xquad recall@5 ours - txtai, dense"]["miss"] == -0.01
