"""Where a sharded index lives, which shard holds a document, and the manifest naming them.

A sharded index is ``index_dir/shards.json`` naming S shard folders. Each folder is an index
exactly as ``qa.indexing`` writes one (builds, the ``current`` link, its own manifest), holding
the documents whose id hashes to it; with S = 1 the one folder is ``index_dir`` itself, the
single-machine index. A document never moves between shards while S stays the same, so a
reader that sees one shard updated and another not yet still sees every document whole.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

SHARDS_FILE = "shards.json"
FORMAT_VERSION = 1
PARTITION = "blake2b-64 of the document id, modulo the shard count"


def shard_of(doc_id: str, shards: int) -> int:
    """The shard that holds ``doc_id``: stable across runs, machines and Python versions
    (``hash()`` is salted per process, so it would move documents between builds)."""
    digest = hashlib.blake2b(doc_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shards


def shard_folder(shard: int, shards: int) -> str:
    """The folder of one shard, relative to ``index_dir`` (``.`` for a single shard)."""
    return "." if shards == 1 else f"shards/{shard:03d}-of-{shards:03d}"


@dataclass(frozen=True)
class ShardedLayout:
    """The shards of one index, as ``shards.json`` names them.

    Attributes:
        index_dir: The index folder.
        folders: Per shard, its folder relative to ``index_dir``.
        embedding_model: The model every shard was embedded with.
        dimension: Its vector size.
    """

    index_dir: Path
    folders: tuple[str, ...]
    embedding_model: str
    dimension: int

    @property
    def shards(self) -> int:
        return len(self.folders)

    def path(self, shard: int) -> Path:
        return self.index_dir / self.folders[shard]

    @classmethod
    def of(
        cls, index_dir: Path, shards: int, embedding_model: str, dimension: int
    ) -> ShardedLayout:
        folders = tuple(shard_folder(i, shards) for i in range(shards))
        return cls(Path(index_dir), folders, embedding_model, dimension)

    def save(self, documents: list[int]) -> None:
        """Write ``shards.json`` atomically (``documents``: how many each shard holds)."""
        data = {
            "format_version": FORMAT_VERSION,
            "partition": PARTITION,
            "shards": self.shards,
            "folders": list(self.folders),
            "documents": documents,
            "embedding_model": self.embedding_model,
            "dimension": self.dimension,
            "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        tmp = self.index_dir / f".{SHARDS_FILE}-{os.getpid()}"
        tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
        os.replace(tmp, self.index_dir / SHARDS_FILE)

    @classmethod
    def load(cls, index_dir: Path) -> ShardedLayout:
        """The layout ``index_dir/shards.json`` records; ``FileNotFoundError`` saying how to
        build one where there is none."""
        path = Path(index_dir) / SHARDS_FILE
        if not path.exists():
            raise FileNotFoundError(
                f"no sharded index at {index_dir}: build one with `qa index --engine ray`"
            )
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format_version") != FORMAT_VERSION:
            raise FileNotFoundError(
                f"{path} was written by another version of qa: rebuild with "
                "`qa index --engine ray --rebuild`"
            )
        return cls(
            Path(index_dir), tuple(data["folders"]), data["embedding_model"], data["dimension"]
        )
