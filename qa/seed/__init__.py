"""The seed articles and their evaluation set, shipped inside the package.

``corpus/`` holds the articles a new user starts from; ``seed.jsonl`` the questions asked of
them (format in ``eval/README.md``). A checkout's ``corpus/`` and ``eval/seed.jsonl`` link here,
so there is one copy. ``qa index`` and ``qa serve`` copy the articles into a corpus folder that
does not exist yet (``copy_seed_corpus``): the first command works in an empty folder.
"""

from __future__ import annotations

import shutil
from pathlib import Path

SEED_DIR = Path(__file__).resolve().parent
SEED_CORPUS = SEED_DIR / "corpus"
SEED_SET = SEED_DIR / "seed.jsonl"


def copy_seed_corpus(target: Path) -> list[Path]:
    """Create ``target`` holding copies of the seed articles, and return the copies.

    Raises:
        FileExistsError: ``target`` exists already (a user's corpus is never touched).
    """
    target.mkdir(parents=True)
    return [
        Path(shutil.copyfile(article, target / article.name))
        for article in sorted(SEED_CORPUS.iterdir())
        if article.is_file()
    ]
