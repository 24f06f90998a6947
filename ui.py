"""The web chat: ``python ui.py`` serves it on http://127.0.0.1:7860 (the same as ``qa serve``).

Settings come from ``QA_*`` environment variables (``QA_CORPUS_DIR``, ``QA_READER_MODEL``...);
the port from ``GRADIO_SERVER_PORT``. The page itself lives in ``qa.web``.
"""

from __future__ import annotations

import logging

from qa.cli import quiet_libraries
from qa.web.app import serve

if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    quiet_libraries()
    serve()
