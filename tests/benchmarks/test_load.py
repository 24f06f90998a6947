"""The load benchmark's question mix and offset check (no server: the run itself is manual)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from benchmarks.load import EXPECTED_REFUSAL, Documents, question_mix
from qa.pipeline import MAX_QUESTION_CHARS, check_request


def test_question_mix_has_every_kind_and_each_gets_what_it_expects() -> None:
    mix = question_mix(200)
    kinds = Counter(kind for kind, _ in mix)
    assert len(mix) == 200 and set(kinds) == set(EXPECTED_REFUSAL)
    assert kinds["normal"] == 120
    for kind, question in mix:
        if EXPECTED_REFUSAL[kind] is None:
            check_request(question)  # accepted: within the limits
            assert kind != "long" or len(question) > MAX_QUESTION_CHARS * 0.9
        else:
            try:
                check_request(question)
            except ValueError as exc:
                assert EXPECTED_REFUSAL[kind] in str(exc)
            else:
                raise AssertionError(f"{kind} question accepted")


def test_documents_accept_any_version_and_catch_wrong_offsets(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    article = corpus / "a.txt"
    article.write_text("Title\n\nThe ferry sails at dawn.\n", encoding="utf-8")
    documents = Documents(corpus)
    old = documents.versions["a.txt"][0]
    article.write_text("Title\n\nUpdate: late.\n\nThe ferry sails at dawn.\n", encoding="utf-8")
    documents.record()
    new = documents.versions["a.txt"][1]

    def reply(text: str, word: str) -> dict[str, list[dict[str, object]]]:
        start = text.index(word)
        answer = {"doc_id": "a.txt", "text": word, "start": start, "end": start + len(word)}
        answer |= {"context": text[start:], "context_start": start}
        passage = {"doc_id": "a.txt", "start": 0, "end": len(text), "text": text}
        return {"answers": [answer], "passages": [passage]}

    assert documents.problems(reply(old, "dawn")) == []
    assert documents.problems(reply(new, "dawn")) == []
    mixed = reply(new, "dawn")
    mixed["passages"] = reply(old, "dawn")["passages"]
    mixed["answers"][0]["start"] -= 1  # type: ignore[operator]
    assert len(documents.problems(mixed)) == 1  # the answer; the old passage is a real version
    unknown = {"doc_id": "b.txt", "start": 0, "end": 4, "text": "Titl"}
    assert documents.problems({"answers": [], "passages": [unknown]}) != []
