"""Model loads in several threads at once: they take turns, and leave torch as they found it.

transformers swaps ``torch.nn.init``'s functions for guarded copies while it builds a model and
puts them back afterwards; two overlapping loads used to leave the copies in place for good
(``qa.models.loading``), after which ``torch.nn.init.normal_`` no longer changed a loaded
weight anywhere in the process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from transformers import PreTrainedModel

from qa.embedding import load_sentence_transformer, resolve_model
from qa.models import export_reader
from qa.reading.transformer import load_reader

INIT_FUNCTIONS = ("normal_", "uniform_", "zeros_", "ones_", "trunc_normal_", "xavier_uniform_")


def test_loads_in_three_threads_take_turns_and_leave_torch_init_alone(
    tiny_reader_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = {name: getattr(torch.nn.init, name) for name in INIT_FUNCTIONS}
    dtype = torch.get_default_dtype()
    inside, most = 0, 0
    count = threading.Lock()
    initialize = PreTrainedModel._initialize_weights

    def slow_initialize(self: PreTrainedModel, module: torch.nn.Module, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        """The real step, after a pause on the model itself (the last module visited), which
        transformers makes while torch's init functions are swapped: overlapping loads meet."""
        nonlocal inside, most
        if module is not self:
            return initialize(self, module, *args, **kwargs)
        with count:
            inside += 1
            most = max(most, inside)
        try:
            time.sleep(0.3)
            return initialize(self, module, *args, **kwargs)
        finally:
            with count:
                inside -= 1

    monkeypatch.setattr(PreTrainedModel, "_initialize_weights", slow_initialize)
    path, _ = resolve_model("default")
    loads: list[Callable[[], object]] = [
        lambda: load_reader(tiny_reader_dir),
        lambda: export_reader.export(tmp_path / "reader.onnx", tiny_reader_dir, "fp32"),
        lambda: load_sentence_transformer("default", path, "cpu"),
    ]
    start = threading.Barrier(len(loads))
    errors: list[BaseException] = []

    def run(load: Callable[[], object]) -> None:
        start.wait()
        try:
            load()
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(load,)) for load in loads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    leaked = {n for n, f in before.items() if getattr(torch.nn.init, n) is not f}
    for name in leaked:  # put torch back for the tests that follow, then fail
        monkeypatch.setattr(torch.nn.init, name, before[name])
    assert errors == []
    assert most == 1, "two model loads overlapped"
    assert leaked == set(), "a model load left torch.nn.init's functions replaced"
    assert torch.get_default_dtype() == dtype
    weight = torch.zeros(3, 3)
    torch.nn.init.normal_(weight)
    assert weight.abs().sum() > 0
