"""A running web app per test module, over a private corpus copy and a temporary index."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator

import pytest

from qa.pipeline import QA
from qa.settings import Settings
from qa.web.app import create_app, launch_options
from tests.conftest import SEED_CORPUS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: What the module's app reads with: a module may override this fixture (the browser tests
#: read with the packaged reader, as a user's page does).
@pytest.fixture(scope="module")
def reader_model() -> str:
    return "none"


@pytest.fixture(scope="module")
def server(served: tuple[str, QA]) -> str:
    """The URL of the app over a copy of the seed corpus, reading with ``reader_model``."""
    return served[0]


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, embedder: object, reader_model: str
) -> Iterator[tuple[str, QA]]:
    """The URL of the app over a copy of the seed corpus, and the ``QA`` it answers with.

    The index is built by the app's own start-up path (there is none yet), with the session's
    loaded embedding model.
    """
    root = tmp_path_factory.mktemp("web")
    shutil.copytree(SEED_CORPUS, root / "corpus")
    qa = QA(
        Settings(corpus_dir=root / "corpus", index_dir=root / "index", reader_model=reader_model),
        embedder=embedder,  # the session's loaded model
    )
    page = create_app(qa)
    port = free_port()
    page.launch(
        server_name="127.0.0.1",
        server_port=port,
        prevent_thread_lock=True,
        quiet=True,
        **launch_options(qa.settings),
    )
    try:
        yield f"http://127.0.0.1:{port}/", qa
    finally:
        page.close()
