"""Closed-setting reader quality: EM/F1 of a reader's best span given each question's paragraph.

Readers are measured side by side in one run on the same files, with the windows the product
reads (192 tokens, stride 64), and their speed in questions per second::

    python benchmarks/reader_quality.py --reader qa/models/reader --reader OTHER_FOLDER \\
        ../shared/data/qa-val/tydiqa-en-dev.json ../shared/data/xquad-dev/xquad.en.dev.json

xquad-dev is a measuring set only: nothing is chosen on it.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch

from qa.reading.train import evaluate_closed
from qa.reading.transformer import TransformerReader, load_reader


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path, help="SQuAD-format files")
    parser.add_argument("--reader", action="append", required=True, help="reader folder")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(args.threads)
    results = {}
    for folder in args.reader:
        tokenizer, model = load_reader(folder)
        reader = TransformerReader.from_loaded(tokenizer, model)
        for file in args.files:
            figures = evaluate_closed(reader, file)
            figures["questions_per_second"] = round(figures["questions"] / figures["seconds"], 1)
            results[f"{folder} on {file.name}"] = figures
            print(f"{folder} on {file.name}: {json.dumps(figures)}", flush=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
