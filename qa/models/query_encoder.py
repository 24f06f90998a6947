"""The int8 question encoder, built on first use into the user's cache and checked on each load.

The int8 copy of all-MiniLM-L6-v2 (the recipe: ``qa.models.export_query_encoder``) is a
converted copy of a third-party model, so it does not ship in the package: the first process
that needs it builds it from the packaged fp32 model, once, into
``<cache>/minilm-int8/<key>/model.onnx`` (see :mod:`qa.models.cache` for the cache folder, the
locking and the digest checked on every load). ``<key>`` names the SHA-256 of the source weights
and the recipe's version. A build checks the source model against ``SHA256SUMS`` first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qa.models import cache, checksums
from qa.models.cache import cache_dir

__all__ = ["QueryEncoderBuildError", "cache_dir", "cache_key", "query_encoder_file"]

FOLDER = "minilm-int8"
MODEL_FILE = "model.onnx"
SOURCE_MODEL = "all-MiniLM-L6-v2"
#: About how long a build takes on two cores, for the notice shown while it runs.
BUILD_SECONDS = 10


class QueryEncoderBuildError(cache.BuildError):
    """The int8 question encoder could not be built (the export's tools are missing or failed)."""


def cache_key() -> str:
    """The folder name of the current build: source weights' SHA-256 and recipe version."""
    from qa.models.export_query_encoder import RECIPE_VERSION

    weights = checksums.recorded()[f"{SOURCE_MODEL}/model.safetensors"]
    return f"{weights[:16]}-recipe{RECIPE_VERSION}"


def _export(target: Path) -> dict[str, Any]:
    from qa.models import embedding_model_dir, export_query_encoder

    source = embedding_model_dir()
    checksums.verify(SOURCE_MODEL, source)
    return export_query_encoder.export(target, source)


ARTEFACT = cache.Artefact(
    what="the int8 question encoder",
    folder=FOLDER,
    file=MODEL_FILE,
    key=cache_key,
    build=_export,
    seconds=BUILD_SECONDS,
    remedy="pip install onnx onnx-ir (see pyproject.toml for the versions)",
    error=QueryEncoderBuildError,
)


def query_encoder_file(*, folder: Path | None = None, rebuild: bool = False) -> Path:
    """The int8 encoder's ONNX file, built first where it is missing or differs from its digest.

    Args:
        folder: Where it is kept (default: ``<cache>/minilm-int8/<key>``).
        rebuild: Build it again even where a sound copy is there.

    Returns:
        The path of ``model.onnx``, whose content matches the digest recorded beside it.

    Raises:
        QueryEncoderBuildError: It had to be built and could not be (the message says why).
        qa.models.checksums.ModelFileError: The packaged source model is damaged.
    """
    return cache.built_file(ARTEFACT, folder=folder, rebuild=rebuild)
