"""Render a run's JSON as the Markdown tables of RESULTS.md.

python benchmarks/report.py benchmarks/out/results-full.json > /tmp/figures.md
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _ms(fig: dict[str, Any] | None) -> str:
    return "–" if not fig else f"{fig['p50_ms']:.1f} / {fig['p95_ms']:.1f}"


def render(results: dict[str, Any]) -> str:
    """The figures of ``results`` as Markdown sections."""
    m = results["machine"]
    lines = [
        f"Run `{results.get('mode')}`, {results['started']} to {results.get('finished')}.",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, Python {m['python']}, "
        f"torch {m['torch']} ({m['torch_threads']} threads), faiss {m['faiss']}. "
        f"Load at start {m['load']}, at end {results.get('load_at_end')}.",
        "",
        "## Targets",
        "",
        "| target | measured | bound | met |",
        "|---|---|---|---|",
    ]
    for name, v in results.get("targets", {}).items():
        met = {True: "yes", False: f"no (by {v.get('miss')})", None: "not measured"}[v["met"]]
        lines.append(f"| {name} | {v['value']} | {v['target']} | {met} |")

    for corpus, fig in results.get("latency", {}).items():
        lines += ["", f"## Latency, {corpus} ({fig.get('questions')} questions), p50 / p95 ms", ""]
        systems = [k for k, v in fig.items() if isinstance(v, dict) and "total" in v]
        stages = sorted({s for k in systems for s in fig[k]["stages"]})
        lines.append("| system | total | " + " | ".join(stages) + " |")
        lines.append("|---" * (len(stages) + 2) + "|")
        for k in systems:
            cells = [_ms(fig[k]["stages"].get(s)) for s in stages]
            lines.append(f"| {k} | {_ms(fig[k]['total'])} | " + " | ".join(cells) + " |")
        for key in (k for k in fig if k.endswith("hit@5")):
            lines.append(f"\n{key} (source article in the top 5): {fig[key]}")

    sections = {
        "Build and update": results.get("build"),
        "Haystack": results.get("haystack"),
        "txtai": results.get("txtai"),
        "xquad-dev retrieval": results.get("xquad"),
        "int8 ONNX embedding": results.get("onnx"),
        "Cold start": results.get("cold_start"),
    }
    for title, fig in sections.items():
        if fig:
            lines += ["", f"## {title}", "", "| figure | value |", "|---|---|"]
            lines += [f"| {k} | `{json.dumps(v)}` |" for k, v in fig.items()]

    scale = results.get("scale")
    if scale:
        lines += [
            "",
            "## Scale (single query, depth 50; recall@10 vs exact)",
            "",
            "| n | index | build s | p50 / p95 ms | recall@10 |",
            "|---|---|---|---|---|",
        ]
        rows = [("real BBC", scale["real_bbc"])] + list(scale["sizes"].items())
        for n, fig in rows:
            lines.append(f"| {n} | flat | {fig.get('flat_build_s')} | {_ms(fig['flat'])} | 1.0 |")
            for ef, f in fig.get("hnsw", {}).items():
                lines.append(
                    f"| {n} | hnsw {ef} | {fig['hnsw_build_s']} | {_ms(f)} | {f['recall@10']} |"
                )
            for probe, f in fig.get("ivf", {}).items():
                lines.append(
                    f"| {n} | ivf{fig['ivf_nlist']} {probe} | {fig['ivf_build_s']} | {_ms(f)} "
                    f"| {f['recall@10']} |"
                )
        lines.append(f"\nSuggested hnsw_threshold: {scale.get('suggested_hnsw_threshold')}")
    return "\n".join(lines) + "\n"


def main() -> None:
    print(render(json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))))


if __name__ == "__main__":
    main()
