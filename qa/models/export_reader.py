"""The recipe of the ONNX reader: the packaged span reader for onnxruntime, fp32 or int8.

The packaged ``BertForQuestionAnswering`` (``qa/models/reader``, fp16 safetensors loaded in
float32) is exported by ``torch.onnx`` with its start and end logits as outputs. The int8 copy
quantises its linear layers dynamically (``qa.models.onnx_export.quantize_int8``: int8 weights,
one scale per output channel, activations quantised on each call); attention products, embeddings
and layer norms stay float32. It reads about 1.45 times as fast as fp32 on two AVX2 cores but its
spans lose 1.6 F1 points on qa-val, so fp32 is what the product reads with
(``qa.models.reader_onnx.DEFAULT_PRECISION``). Reading with either needs no torch
(:mod:`qa.reading.onnx_reader`).

Being derived from the packaged weights, it is built on first use into the user's cache
(:mod:`qa.models.cache`) rather than shipped. Building it explicitly, into the cache (replacing
what is there) or into a folder of one's choosing::

    python -m qa.models.export_reader [--precision fp32|int8] [--out FOLDER]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path
from typing import Any

from qa.models.onnx_export import Precision

OnnxPrecision = Precision

OUTPUTS = ("start_logits", "end_logits")
#: Part of each precision's cache key: raise a precision's version whenever a change here
#: changes the file built for it.
RECIPE_VERSIONS: dict[OnnxPrecision, int] = {"fp32": 2, "int8": 3}


def export(target: Path, source: Path, precision: OnnxPrecision) -> dict[str, Any]:
    """Export the reader in ``source`` into the ONNX file ``target``.

    Args:
        target: The ONNX file to write (its folder must exist).
        source: A ``*ForQuestionAnswering`` folder (config, safetensors).
        precision: ``int8`` (quantised weight matrices) or ``fp32``.

    Returns:
        What made it, for a ``build.json`` beside the file.
    """
    import torch
    from transformers import AutoModelForQuestionAnswering

    from qa.models import onnx_export
    from qa.models.checksums import sha256
    from qa.models.loading import LOADING

    if precision not in ("int8", "fp32"):
        raise ValueError(f"precision must be int8 or fp32, not {precision!r}")
    with LOADING:
        model = AutoModelForQuestionAnswering.from_pretrained(
            str(source), attn_implementation="eager", dtype=torch.float32
        ).eval()

    class Logits(torch.nn.Module):
        """Positional inputs in ``INPUTS`` order and the two logit rows out, for the tracer."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):  # noqa: ANN001, ANN201
            out = self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return out.start_logits, out.end_logits

    build: dict[str, Any] = {
        "source": str(Path(source).name),
        "source_sha256": sha256(Path(source) / "model.safetensors"),
        "precision": precision,
        "recipe_version": RECIPE_VERSIONS[precision],
        "command": f"python -m qa.models.export_reader --precision {precision}",
    }
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        ids = [101, 2054, 102, 7592, 2088, 102]
        build["exporter"] = onnx_export.trace(Logits(), fp32, ids, OUTPUTS)
        if precision == "fp32":
            shutil.copyfile(fp32, target)
        else:
            build.update(onnx_export.quantize_int8(fp32, target))
    build["weights"] = onnx_export.weights_beside(target)
    return build


def main(argv: list[str] | None = None) -> None:
    """Build the ONNX reader into the cache (again) or into ``--out``, and say where."""
    from qa.models import reader_onnx

    parser = argparse.ArgumentParser(
        prog="python -m qa.models.export_reader",
        description="Build the ONNX reader into the cache (again) or into --out.",
    )
    parser.add_argument(
        "--precision", choices=["int8", "fp32"], default=reader_onnx.DEFAULT_PRECISION
    )
    parser.add_argument("--out", type=Path, help="folder to write it into (default: the cache)")
    args = parser.parse_args(argv)
    path = reader_onnx.reader_file(args.precision, rebuild=True, folder=args.out)
    print(f"written: {path}")


if __name__ == "__main__":
    main()
