"""The ONNX question encoders, built on first use into the user's cache and checked on each load.

The ONNX copies of all-MiniLM-L6-v2, fp32 (the default) and int8 (the recipes:
``qa.models.export_query_encoder``), are converted copies of a third-party model, so they do not
ship in the package: the first process that needs one builds it from the packaged model, once, into
``<cache>/minilm-<precision>/<key>/model.onnx`` (see :mod:`qa.models.cache` for the cache folder,
the locking and the digest checked on every load). ``<key>`` names the SHA-256 of the source weights
and the recipe's version. A build checks the source model against ``SHA256SUMS`` first.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from qa.models import cache, checksums
from qa.models.cache import cache_dir
from qa.models.export_query_encoder import PRECISIONS, QueryPrecision

__all__ = ["QueryEncoderBuildError", "cache_dir", "cache_key", "folder_name", "query_encoder_file"]

MODEL_FILE = "model.onnx"
SOURCE_MODEL = "all-MiniLM-L6-v2"
#: About how long a build takes on two cores, for the notice shown while it runs.
BUILD_SECONDS = 10


class QueryEncoderBuildError(cache.BuildError):
    """A question encoder could not be built (the export's tools are missing or failed)."""


def cache_key(precision: QueryPrecision = "fp32") -> str:
    """The folder name of the ``precision`` encoder's current build: source weights' SHA-256
    and the precision's recipe version."""
    from qa.models.export_query_encoder import RECIPE_VERSIONS

    weights = checksums.recorded()[f"{SOURCE_MODEL}/model.safetensors"]
    return f"{weights[:16]}-recipe{RECIPE_VERSIONS[precision]}"


def folder_name(precision: QueryPrecision) -> str:
    """The cache folder of the ``precision`` encoder's builds."""
    return f"minilm-{precision}"


def _export(precision: QueryPrecision, target: Path) -> dict[str, Any]:
    from qa.models import embedding_model_dir, export_query_encoder

    source = embedding_model_dir()
    checksums.verify(SOURCE_MODEL, source)
    return export_query_encoder.export(target, source, precision)


ARTEFACTS = {
    precision: cache.Artefact(
        what=f"the {precision} question encoder",
        folder=folder_name(precision),
        file=MODEL_FILE,
        key=partial(cache_key, precision),
        build=partial(_export, precision),
        seconds=BUILD_SECONDS,
        remedy="pip install onnx onnx-ir (see pyproject.toml for the versions)",
        error=QueryEncoderBuildError,
    )
    for precision in PRECISIONS
}


def query_encoder_file(
    precision: QueryPrecision = "fp32", *, folder: Path | None = None, rebuild: bool = False
) -> Path:
    """The encoder's ONNX file, built first where it is missing or differs from its digest.

    Args:
        precision: ``fp32`` (the default) or ``int8``.
        folder: Where it is kept (default: ``<cache>/minilm-<precision>/<key>``).
        rebuild: Build it again even where a sound copy is there.

    Returns:
        The path of ``model.onnx``, whose content matches the digest recorded beside it.

    Raises:
        QueryEncoderBuildError: It had to be built and could not be (the message says why).
        qa.models.checksums.ModelFileError: The packaged source model is damaged.
    """
    return cache.built_file(ARTEFACTS[precision], folder=folder, rebuild=rebuild)
