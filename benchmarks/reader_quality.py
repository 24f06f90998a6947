"""Closed-setting reader quality: EM/F1 of a reader's best span given each question's paragraph.

Readers are measured side by side in one run on the same files, with the windows the product
reads (192 tokens, stride 64), and their speed in questions per second::

    python benchmarks/reader_quality.py --reader qa/models/reader --reader OTHER_FOLDER \\
        ../shared/data/qa-val/tydiqa-en-dev.json ../shared/data/xquad-dev/xquad.en.dev.json

``--onnx int8`` / ``--onnx fp32`` adds the packaged reader run by onnxruntime (built into the
cache on first use; ``--onnx int8=FILE`` names a built file), ``--precision`` sets the torch
readers' arithmetic (``auto``: bfloat16 where the CPU computes it natively).

xquad-dev is a measuring set only: nothing is chosen on it.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch

from qa.reading.onnx_reader import OnnxReader
from qa.reading.spans import SpanReader
from qa.reading.transformer import TransformerReader, load_reader
from qa.training.reader import evaluate_closed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path, help="SQuAD-format files")
    parser.add_argument("--reader", action="append", default=[], help="reader folder (torch)")
    parser.add_argument(
        "--onnx", action="append", default=[], help="int8 or fp32[=FILE]: the ONNX reader"
    )
    parser.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="fp32")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if not args.reader and not args.onnx:
        parser.error("give at least one --reader or --onnx")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(args.threads)
    readers: list[tuple[str, SpanReader]] = []
    for folder in args.reader:
        tokenizer, model = load_reader(folder)
        bf16 = {"auto": None, "fp32": False, "bf16": True}[args.precision]
        reader = TransformerReader.from_loaded(tokenizer, model, bf16=bf16)
        readers.append((f"{folder} (torch, {'bf16' if reader.bf16 else 'fp32'})", reader))
    for spec in args.onnx:
        precision, _, file = spec.partition("=")
        onnx = OnnxReader(precision, threads=args.threads, model_file=Path(file) if file else None)
        readers.append((f"packaged reader (onnx {precision})", onnx))
    results = {}
    for name, reader in readers:
        for file in args.files:
            figures = evaluate_closed(reader, file)
            figures["questions_per_second"] = round(figures["questions"] / figures["seconds"], 1)
            results[f"{name} on {file.name}"] = figures
            print(f"{name} on {file.name}: {json.dumps(figures)}", flush=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
