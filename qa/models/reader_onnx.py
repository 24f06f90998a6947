"""The ONNX copy of the packaged reader, built on first use into the user's cache.

``<cache>/reader-onnx/<key>/model.onnx`` (see :mod:`qa.models.cache` for the cache folder, the
locking and the digest checked on every load); ``<key>`` names the reader's weights, the
precision and the recipe (:mod:`qa.models.export_reader`). A build checks the packaged reader
against ``SHA256SUMS`` first. :mod:`qa.reading.onnx_reader` reads with it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qa.models import READER_DIR, cache, checksums
from qa.models.export_reader import OnnxPrecision

FOLDER = "reader-onnx"
MODEL_FILE = "model.onnx"
#: The precision ``reader_runtime=auto`` reads with. fp32 gives the torch reader's spans
#: exactly. int8 (dynamic, :func:`qa.models.onnx_export.quantize_int8`) reads about 1.45 times
#: as fast on two AVX2 cores but loses 1.6 F1 points on qa-val given each question's paragraph
#: (71.97 -> 70.37; benchmarks/RESULTS.md, "Dynamic int8"), more than the 0.5 the reader may
#: lose to its runtime, so it is a setting only.
DEFAULT_PRECISION: OnnxPrecision = "fp32"
#: About how long a build takes on two cores, for the notice shown while it runs.
BUILD_SECONDS = 20


class ReaderBuildError(cache.BuildError):
    """The ONNX reader could not be built (the export's tools are missing or failed)."""


def _artefact(precision: OnnxPrecision) -> cache.Artefact:
    def key() -> str:
        from qa.models.export_reader import RECIPE_VERSIONS

        weights = checksums.recorded()["reader/model.safetensors"]
        return f"{weights[:16]}-{precision}-recipe{RECIPE_VERSIONS[precision]}"

    def build(target: Path) -> dict[str, Any]:
        from qa.models import export_reader

        checksums.verify("reader", READER_DIR)
        return export_reader.export(target, READER_DIR, precision)

    return cache.Artefact(
        what=f"the {precision} ONNX reader",
        folder=FOLDER,
        file=MODEL_FILE,
        key=key,
        build=build,
        seconds=BUILD_SECONDS,
        remedy="pip install onnx onnx-ir torch (see pyproject.toml for the versions)",
        error=ReaderBuildError,
    )


def reader_file(
    precision: OnnxPrecision = "int8", *, folder: Path | None = None, rebuild: bool = False
) -> Path:
    """The ONNX reader's file, built first where it is missing or differs from its digest.

    Raises:
        ReaderBuildError: It had to be built and could not be (the message says why).
        qa.models.checksums.ModelFileError: The packaged reader is damaged.
    """
    return cache.built_file(_artefact(precision), folder=folder, rebuild=rebuild)
