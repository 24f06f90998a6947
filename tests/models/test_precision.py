"""The ONNX settings name their precision one way for the reader and the question encoder."""

from __future__ import annotations

import pytest

from qa.models.onnx_export import precision_of


@pytest.mark.parametrize(("kind", "precision"), [("onnx-fp32", "fp32"), ("onnx-int8", "int8")])
def test_an_onnx_setting_names_its_precision(kind: str, precision: str) -> None:
    assert precision_of(kind) == precision


@pytest.mark.parametrize("kind", ["torch", "auto", "onnx-bf16", "onnx-", ""])
def test_other_settings_name_none_and_say_so(kind: str) -> None:
    with pytest.raises(ValueError, match="names no ONNX precision"):
        precision_of(kind)
