"""The web chat: ``python ui.py`` serves it on http://127.0.0.1:7860 (the same as ``qa serve``).

Settings come from ``QA_*`` environment variables (``QA_CORPUS_DIR``, ``QA_READER_MODEL``...);
the port from ``GRADIO_SERVER_PORT``. The page itself lives in ``qa.web``.
"""

from __future__ import annotations

from qa.logs import setup_logging
from qa.web.app import serve

if __name__ == "__main__":
    setup_logging()
    serve()
