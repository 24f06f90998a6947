"""The reader's onnxruntime session over windows of many shapes: memory with and without a
memory pattern kept per shape.

onnxruntime plans a memory pattern for each input shape it meets and keeps it (its default,
``enable_mem_pattern``); the reader's batches vary in both size and width, so the patterns pile
up. Each variant runs in a fresh process: the packaged reader's float32 ONNX file, ``--runs``
forward passes over batches of 1 to 6 windows of 24 to 192 word pieces (one seeded sequence,
the same for every variant), resident memory (``VmRSS``) sampled every ``--runs / 6`` passes.
``--bucket N`` rounds widths up to a multiple of N (fewer shapes, more padding).

    python benchmarks/onnx_shapes.py [--runs 1200]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import quiet_environment  # noqa: E402
from benchmarks.onnx_arena import rss_mib  # noqa: E402

VARIANTS = {
    "pattern kept per shape (onnxruntime's default)": ["--pattern"],
    "no pattern (the product)": [],
    "pattern, widths rounded up to 32": ["--pattern", "--bucket", "32"],
}


def one_variant(runs: int, pattern: bool, bucket: int) -> dict[str, object]:
    import numpy as np
    import onnxruntime as ort

    from qa.models.reader_onnx import reader_file

    options = ort.SessionOptions()
    options.inter_op_num_threads = 1
    options.enable_mem_pattern = pattern
    session = ort.InferenceSession(
        str(reader_file("fp32")), options, providers=["CPUExecutionProvider"]
    )
    rng = random.Random(0)
    samples, started = [], time.perf_counter()
    for run in range(1, runs + 1):
        batch, width = rng.randint(1, 6), rng.randint(24, 192)
        width = -(-width // bucket) * bucket
        ids = np.full((batch, width), 1000, np.int64)
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        session.run(None, {**feed, "token_type_ids": np.zeros_like(ids)})
        if run % max(1, runs // 6) == 0:
            samples.append(round(rss_mib(), 1))
    return {
        "rss_mib": samples,
        "growth_mib": round(samples[-1] - samples[0], 1),
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1200)
    parser.add_argument("--pattern", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--bucket", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    quiet_environment()
    if args.one:
        print(json.dumps(one_variant(args.runs, args.pattern, args.bucket)))
        return
    for name, flags in VARIANTS.items():
        command = [sys.executable, __file__, "--one", "--runs", str(args.runs), *flags]
        out = subprocess.run(command, capture_output=True, text=True, check=True, encoding="utf-8")
        figures = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"{name}: RSS {figures['rss_mib'][0]} -> {figures['rss_mib'][-1]} MiB "
            f"(+{figures['growth_mib']}), samples {figures['rss_mib']}, {figures['seconds']} s"
        )


if __name__ == "__main__":
    main()
