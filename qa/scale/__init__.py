"""Past one machine: the index built and searched on a Ray cluster (the ``scale`` extra).

The documents are partitioned into S shards by a stable hash of their id (``layout``); each
shard is an index as the single-machine road writes it (``qa.indexing``), so S = 1 is that
index itself. ``build`` embeds the documents with Ray Data on every node and writes the shards
that changed; ``serving`` runs them as Ray Serve deployments behind a router that embeds the
question once, asks every shard at once and fuses their lists as ``qa.retrieval`` does; ``client``
is the retriever that ``QA`` uses when ``Settings.engine`` is ``ray``. Only this package imports
ray, and only inside the functions that need it, so ``qa`` without the extra is unaffected.
"""

from __future__ import annotations


class ScaleExtraMissing(RuntimeError):
    """The ray engine was asked for where ray (the ``scale`` extra) is not installed."""


def require_ray() -> None:
    """Fail with what to install when ray is missing (the ``scale`` extra)."""
    try:
        import ray  # noqa: F401
    except ImportError as exc:
        raise ScaleExtraMissing(
            "the ray engine needs the scale extra: pip install 'qa[scale]' "
            f"(ray[data,serve]==2.60.0); importing ray failed: {exc}"
        ) from exc
