"""``qa serve`` and ``python ui.py`` build the missing index, then serve the page locally."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO, SEED_CORPUS
from tests.web.conftest import free_port

pytestmark = pytest.mark.slow

START_TIMEOUT_S = 300


@pytest.mark.parametrize("how", ["qa serve", "python ui.py"])
def test_command_builds_the_index_and_serves(how: str, tmp_path: Path) -> None:
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    shutil.copytree(SEED_CORPUS, corpus)
    port = free_port()
    env = {**os.environ, "QA_READER_MODEL": "none", "GRADIO_ANALYTICS_ENABLED": "False"}
    bin_dir = Path(sys.executable).parent
    if how == "qa serve":
        command = [str(bin_dir / "qa"), "serve", "--port", str(port)]
        command += ["--corpus", str(corpus), "--index", str(index)]
    else:
        command = [sys.executable, str(REPO / "ui.py")]
        env.update(QA_CORPUS_DIR=str(corpus), QA_INDEX_DIR=str(index), GRADIO_SERVER_PORT=str(port))
    log = tmp_path / "server.log"
    with log.open("w", encoding="utf-8") as out:
        server = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=out, stderr=out)
    try:
        url = f"http://127.0.0.1:{port}/"
        _wait_for_page(url, server, log)
        assert httpx.get(url + "config", timeout=30).json()["title"] == "News QA"
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    output = log.read_text(encoding="utf-8")
    assert f"There is no index yet; building it from {corpus}." in output
    assert "Embedding chunks" in output  # the terminal progress bar of the first build
    assert "Index rebuilt" in output and "2 documents" in output
    assert (index / "current" / "manifest.json").exists()


def _wait_for_page(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(
                f"the server exited with {server.returncode}:\n{log.read_text(encoding='utf-8')}"
            )
        try:
            response = httpx.get(url, timeout=10)
            if response.status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(1)
    pytest.fail(f"no page at {url} after {START_TIMEOUT_S} s:\n{log.read_text(encoding='utf-8')}")
