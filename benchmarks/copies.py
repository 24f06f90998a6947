"""Copies in the BBC set: how often an ask's passages hold the same words twice, and whether
the reply cites every article that carries them (``qa.reading.copies``).

The BBC articles hold byte-identical pairs. For mechanical questions over the whole set, and
for one question per copied article, this prints how often the best ``read_passages`` passages
of retrieval held a text twice (what the reader read before copies were set apart: a slot
spent on words it had already read), and, asking the copied articles' questions with the
product, how often the best answer was read in a copied passage and then cites both
articles::

    qa index --corpus ../shared/data/bbc-news --index BBC_INDEX
    python -m benchmarks.copies --index BBC_INDEX [--questions 300]
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import time
from pathlib import Path

from benchmarks.common import BBC_DIR, bbc_files, bbc_questions, load, quiet_environment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", type=Path, required=True, help="index of the BBC folder")
    parser.add_argument("--questions", type=int, default=300, help="questions over the whole set")
    args = parser.parse_args()
    quiet_environment()
    from qa.pipeline import QA
    from qa.settings import Settings

    files = bbc_files()
    by_hash: dict[str, list[Path]] = {}
    for path in files:
        by_hash.setdefault(hashlib.sha256(path.read_bytes()).hexdigest(), []).append(path)
    groups = [g for g in by_hash.values() if len(g) > 1]
    copied = [g[0] for g in groups]
    twin = {
        f"{g[0].parent.name}/{g[0].name}": {f"{p.parent.name}/{p.name}" for p in g[1:]}
        for g in groups
    }
    print(f"articles {len(files)}, groups of byte-identical articles {len(groups)}")

    qa = QA(Settings(corpus_dir=BBC_DIR, index_dir=args.index))
    n_read = qa.settings.read_passages
    depth = max(qa.settings.top_k, n_read)

    def doubled(question: str) -> bool:
        top = qa.search(question, k=depth)[:n_read]
        return len({p.chunk.text for p in top}) < len(top)

    spread = bbc_questions(files, args.questions)
    share = sum(doubled(q["question"]) for q in spread) / len(spread)
    print(
        f"questions over the whole set {len(spread)}: best {n_read} passages held a text "
        f"twice for {share:.1%}"
    )
    own = bbc_questions(copied, len(copied))
    share = sum(doubled(q["question"]) for q in own) / len(own)
    print(f"one question per copied article {len(own)}: held a text twice for {share:.1%}")

    read_in_copy = both = 0
    seconds = []
    for q in own:
        started = time.perf_counter()
        result = qa.ask(q["question"])
        seconds.append(time.perf_counter() - started)
        if result.abstained:
            continue
        cited = {s.doc_id for s in result.answers[0].sources}
        if q["doc_id"] in cited or cited & twin[q["doc_id"]]:
            read_in_copy += 1
            both += {q["doc_id"], *twin[q["doc_id"]]} <= cited
    print(
        f"asked: best answer from the copied article or its twin {read_in_copy}, citing both "
        f"{both}; ask p50 {1000 * statistics.median(seconds):.0f} ms (load {load()})"
    )


if __name__ == "__main__":
    main()
