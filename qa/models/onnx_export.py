"""The steps every ONNX recipe of the project shares: trace to ONNX, quantise to int8, store
the weights beside the graph.

Tracing uses the TorchScript exporter (``dynamo=False``), which needs neither onnxscript nor a
dynamic-shape specification and traces BERT's eager attention into plain ONNX operators; batch
and token axes stay dynamic. Quantising uses onnxruntime's dynamic quantiser
(``quantize_dynamic``): the weight matrices of the linear layers become int8, one scale per
output channel (symmetric), and each call quantises their input activations on the fly
(``DynamicQuantizeLinear``, uint8), so the products run as integer ``MatMulInteger``; the
attention's own products, the embeddings and layer norms stay float32. On two AVX2 cores that
reads a 192-word-piece window in about two thirds of float32's time and embeds a question in
about 0.75 of it (benchmarks/RESULTS.md, "Dynamic int8"). One scale per whole matrix instead of
per channel cost the question vectors up to 0.045 of cosine: unusable. Either way the graph's
weights are then stored beside it (``weights_beside``), in a file that onnxruntime maps from
disk instead of parsing the weights out of the graph's protobuf.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, cast, get_args

#: How an exported graph computes: as traced (``fp32``), or with int8 linear layers (``int8``).
Precision = Literal["fp32", "int8"]
#: The BERT inputs every exported graph takes, in this order.
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OPSET = 17
#: torch's TorchScript exporter keeps its state in module globals, so two exports at once (the
#: reader and the question encoder, built on first use by two threads) break each other.
_EXPORTING = threading.Lock()


def precision_of(kind: str) -> Precision:
    """The precision an ONNX setting names: ``onnx-fp32`` (or ``fp32``) is ``fp32``.

    Raises:
        ValueError: ``kind`` names no ONNX precision (``torch``, ``auto``, a typo).
    """
    return cast(Precision, named_precision(kind, get_args(Precision), "ONNX precision"))


def named_precision(kind: str, choices: Sequence[str], what: str) -> str:
    """The one of ``choices`` an ONNX setting names (``onnx-<choice>`` or ``<choice>``).

    Raises:
        ValueError: ``kind`` names none of them; the message lists the settings that do.
    """
    name = kind.removeprefix("onnx-")
    if name not in choices:
        listed = ", ".join(f"onnx-{c}" for c in choices)
        raise ValueError(f"{kind!r} names no {what}: {listed}")
    return name


def trace(module: Any, target: Path, example_ids: Sequence[int], outputs: Sequence[str]) -> str:
    """Export ``module`` (called with ``INPUTS`` positionally) to the ONNX file ``target``.

    One export at a time in a process (``_EXPORTING``); builds in other processes are kept apart
    by the cache's own lock.

    Returns:
        What exported it, for ``build.json``.
    """
    import torch

    example = torch.tensor([list(example_ids)])
    axes = {name: {0: "batch", 1: "tokens"} for name in (*INPUTS, *outputs)}
    with _EXPORTING:
        torch.onnx.export(
            module.eval(),
            (example, torch.ones_like(example), torch.zeros_like(example)),
            str(target),
            dynamo=False,
            input_names=list(INPUTS),
            output_names=list(outputs),
            dynamic_axes=axes,
            opset_version=OPSET,
        )
    return f"torch.onnx (TorchScript) {torch.__version__}, opset {OPSET}"


class _Without(logging.Filter):
    """Drops the log records whose message holds ``words``."""

    def __init__(self, words: str) -> None:
        super().__init__()
        self.words = words

    def filter(self, record: logging.LogRecord) -> bool:
        return self.words not in record.getMessage()


def quantize_int8(source: Path, target: Path) -> dict[str, Any]:
    """Write ``source``'s graph into ``target`` with int8 linear layers (see the module).

    Returns:
        How it was quantised, for ``build.json``.
    """
    import onnxruntime
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quiet = _Without("pre-processing before quantization")  # advice for other model kinds
    logging.getLogger().addFilter(quiet)
    try:
        quantize_dynamic(
            str(source),
            str(target),
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul"],
            per_channel=True,
            extra_options={"MatMulConstBOnly": True},
        )
    finally:
        logging.getLogger().removeFilter(quiet)
    return {
        "quantiser": f"onnxruntime {onnxruntime.__version__} quantize_dynamic",
        "weights": "int8, symmetric, one scale per output channel (MatMul weights only)",
        "activations": "uint8, quantised on each call (DynamicQuantizeLinear)",
    }


#: Input rows of a weight matrix's column that share one int8 scale in ``quantize_int8_blocks``.
BLOCK_SIZE = 128


def quantize_int8_blocks(
    source: Path, target: Path, block_size: int = BLOCK_SIZE
) -> dict[str, Any]:
    """Write ``source``'s graph into ``target`` with its linear layers as ``MatMulNBits``.

    Each weight matrix becomes int8 with one scale for every ``block_size`` input rows of each
    output column (symmetric), and each call quantises the layer's input to int8 in blocks of
    the same size, row by row (onnxruntime's ``accuracy_level`` 4), so the products run on int8
    dot-product instructions (AVX512-VNNI where the CPU has it). Its question vectors stay
    closer to float32's than ``quantize_int8``'s, which takes one activation scale for a whole
    call (cosine 0.9992 on average, 0.9986 at least, on the 440 qa-val questions, against 0.9951
    and 0.9914; benchmarks/RESULTS.md, "Block-wise int8 question encoder").

    Returns:
        How it was quantised, for ``build.json``.
    """
    import onnx
    import onnxruntime

    root = logging.getLogger()
    handlers, root_level = root.handlers[:], root.level
    # Importing it calls ``logging.basicConfig(level=INFO)``, which would print every INFO
    # record of the process from then on: the root logger is put back as it was.
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    root.handlers[:] = handlers
    root.setLevel(root_level)
    quantizer = MatMulNBitsQuantizer(
        onnx.load(str(source)),
        bits=8,
        block_size=block_size,
        is_symmetric=True,
        accuracy_level=4,
    )
    # It logs each node it leaves alone at INFO; nothing to tell a user.
    quiet = logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer")
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    try:
        quantizer.process()
    finally:
        quiet.setLevel(level)
    quantizer.model.save_model_to_file(str(target), False)
    return {
        "quantiser": f"onnxruntime {onnxruntime.__version__} MatMulNBitsQuantizer",
        "weights": f"int8, symmetric, one scale per {block_size} input rows of each output "
        "column (MatMul weights only, as MatMulNBits)",
        "activations": f"int8 in blocks of {block_size}, quantised on each call row by row "
        "(accuracy_level 4)",
    }


def weights_beside(target: Path) -> str:
    """Store the weights of the ONNX graph ``target`` in ``<target>.data`` beside it.

    onnxruntime then maps them from that file instead of parsing them out of the graph's
    protobuf: the fp32 question encoder's session loads in 0.09 s instead of 0.27 s on two
    cores (benchmarks/RESULTS.md, "Cold search"), with the same outputs.

    Returns:
        The weights file's name (``target`` refers to it by that name, so the two stay in one
        folder).
    """
    import onnx

    data = f"{target.name}.data"
    model = onnx.load(str(target))
    target.with_name(data).unlink(missing_ok=True)  # onnx appends to an existing file
    onnx.save_model(
        model,
        str(target),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=data,
        size_threshold=1024,
    )
    # onnx writes the weights private to their owner; give them the graph's own permissions.
    target.with_name(data).chmod(target.stat().st_mode & 0o777)
    return data
