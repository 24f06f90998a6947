"""Logging for the product's faces (the CLI, the web chat): our lines shown, library chatter not."""

from __future__ import annotations

import logging
import os
import sys


def quiet_libraries(verbose: bool = False) -> None:
    """Keep library chatter (weight-loading bars, debug lines) out of the user's terminal.

    The hub is not switched off here: the packaged models load from their folders without it,
    and a hub id a user names is fetched where a hub can be reached.
    """
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    level = logging.INFO if verbose else logging.WARNING
    for name in ("sentence_transformers", "httpx", "urllib3"):
        logging.getLogger(name).setLevel(level)
    # transformers reads these when it is imported; asking a question never imports it (that
    # alone takes over a second), so it is not imported here just to quiet it.
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()


def setup_logging(verbose: bool = False) -> None:
    """Log our warnings (``--verbose``: information too) to stderr, one line each; quiet the
    libraries (:func:`quiet_libraries`)."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    quiet_libraries(verbose)
