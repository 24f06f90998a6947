"""The package's top-level names load on first use, so reader training needs no index stack."""

from __future__ import annotations

import subprocess
import sys

import pytest

import qa


def test_top_level_names_load_on_first_use() -> None:
    from qa.pipeline import QA
    from qa.settings import Settings

    assert qa.QA is QA and qa.Settings is Settings
    assert set(qa.__all__) <= set(dir(qa))
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = qa.Nope  # type: ignore[attr-defined]


def run_python(code: str) -> str:
    """What ``code`` prints, run by a fresh interpreter."""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, check=True, timeout=120, encoding="utf-8"
    )
    return out.stdout.strip()


def test_importing_the_trainer_loads_no_index_or_web_library() -> None:
    # Reader training runs where only torch and transformers are installed (a GPU machine).
    code = (
        "import sys, qa.training.reader, qa.cli\n"
        "print(sorted(m for m in ('faiss', 'bm25s', 'gradio', 'Stemmer') if m in sys.modules))"
    )
    assert run_python(code) == "[]"


def test_the_command_guard_loads_no_index_stack_before_the_command() -> None:
    # A cold `qa search` embeds its question on a second thread while the command imports
    # faiss and bm25s: the guard around every command must not import them first.
    code = (
        "import sys\n"
        "from qa.cli import _guard\n"
        "loaded = _guard(lambda: [m for m in ('faiss', 'bm25s', 'scipy') if m in sys.modules])\n"
        "print(sorted(loaded()))"
    )
    assert run_python(code) == "[]"
