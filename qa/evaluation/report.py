"""Write a run's outputs: per-question predictions, a summary, a Markdown report and a chart."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from qa.evaluation.datasets import QUESTION_TYPES
from qa.evaluation.metrics import (
    RETRIEVAL_DEPTH,
    Metrics,
    Scored,
    metrics_by_type,
    recall_at,
    score,
)
from qa.evaluation.runner import EvalRun, git_revision

#: The keys ``qa eval --json`` prints, in order.
SUMMARY_KEYS = (
    "em",
    "f1",
    "sentence_hit",
    "recall_at_1",
    "recall_at_5",
    "recall_at_10",
    "mrr",
    "abstain_precision",
    "abstain_recall",
    "p50_ms",
    "p95_ms",
    "n",
)
#: Rows of the threshold table besides the threshold in use and the recommended one.
SWEEP_ROWS = 10
WORST_MISSES = 15
#: Longest answer shown in the worst-misses table (sentence answers can run long).
ANSWER_CHARS = 160


def summary(run: EvalRun) -> dict[str, float | None]:
    """The headline metrics at the threshold in use, as ``qa eval --json`` prints them; for a
    conversation set also first-turn, follow-up and full-question EM/F1 and the F1 gap."""
    metrics = asdict(run.metrics())
    head = {key: None if metrics[key] is None else float(metrics[key]) for key in SUMMARY_KEYS}
    apart = run.conversation_metrics()
    return head if apart is None else head | apart.summary()


def write_run(run: EvalRun, out_dir: Path, command: str) -> dict[str, Path]:
    """Write ``predictions.jsonl``, ``summary.json``, ``report.md`` and ``chart.png``.

    Args:
        run: The finished run.
        out_dir: The run folder (created if needed).
        command: The command line that produced the run, recorded to make it repeatable.

    Returns:
        The written files by name.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        name: out_dir / name
        for name in ("predictions.jsonl", "summary.json", "report.md", "chart.png")
    }
    scored = [score(o, run.threshold) for o in run.observations]
    by_type = metrics_by_type(run.observations, run.threshold)
    with files["predictions.jsonl"].open("w", encoding="utf-8") as fh:
        for row in prediction_rows(scored, run):
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    details = _details(run, command, by_type)
    files["summary.json"].write_text(
        json.dumps(details, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    files["report.md"].write_text(render_markdown(run, details, scored, by_type), encoding="utf-8")
    draw_chart(run, files["chart.png"])
    return files


def prediction_rows(scored: Sequence[Scored], run: EvalRun | None = None) -> list[dict[str, Any]]:
    """One record per question at the threshold the outcomes were scored with.

    With the ``run`` of a conversation set, each follow-up's record also holds its
    ``full_question`` and what that got asked alone (``full_answer``, ``full_em``,
    ``full_f1``), scored at the run's threshold.
    """
    rows = []
    for s in scored:
        o, q = s.observation, s.observation.question
        info = run.turns.get(q.id) if run is not None else None
        full = run.full_observations.get(q.id) if run is not None else None
        full_scored = score(full, run.threshold) if run is not None and full else None
        rows.append(
            {
                "id": q.id,
                "question": q.question,
                "type": q.type,
                "references": list(q.answers),
                "answerable": q.answerable,
                "gold_doc_id": q.doc_id,
                "answer": None if s.abstained else o.text,
                "best_answer": o.text,
                "score": o.score,
                "abstained": s.abstained,
                "doc_id": o.doc_id,
                "context": o.context,
                "em": s.em,
                "f1": s.f1,
                "sentence_hit": s.sentence_hit,
                "gold_rank": o.rank,
                "gold_passage_answer": o.gold_passage_text,
                "latency_ms": round(o.latency_ms, 2),
                "understood_as": o.understood_as,
                "conversation": info.conversation if info else None,
                "turn": info.turn if info else None,
                "full_question": info.full_question if info else None,
                "full_answer": None
                if full_scored is None or full_scored.abstained
                else full_scored.observation.text,
                "full_em": full_scored.em if full_scored else None,
                "full_f1": full_scored.f1 if full_scored else None,
            }
        )
    return rows


def _details(run: EvalRun, command: str, by_type: dict[str, Metrics]) -> dict[str, Any]:
    s = run.settings
    apart = run.conversation_metrics()
    return {
        "set": str(run.source),
        "kind": run.kind,
        "questions": len(run.observations),
        "questions_in_set": run.total_questions,
        "limit": run.limit,
        "date": run.started_at.isoformat(timespec="seconds"),
        "command": command,
        "git": git_revision(),
        "mode": run.mode,
        "settings": {
            "reader_model": s.reader_model,
            "retrieval_mode": s.retrieval_mode,
            "retrieved_for_recall": RETRIEVAL_DEPTH,
            "read_passages": s.read_passages,
            "n_answers": s.n_answers,
            "max_answer_tokens": s.max_answer_tokens,
            "embedding_model": run.index_info["embedding_model"],
            "chunking": run.index_info["chunking"],
            "faiss_index": run.index_info["faiss_index"],
        },
        "index": {
            "documents": run.index_info["documents"],
            "chunks": run.index_info["chunks"],
            "seconds": None if run.index_seconds is None else round(run.index_seconds, 2),
        },
        "seconds": round(run.seconds, 2),
        "threshold": {
            "in_use": run.threshold,
            "source": run.threshold_source,
            "recommended": run.recommended.threshold,
            "how": "highest overall F1 over every threshold that changes a decision "
            "(midpoints between adjacent observed scores); ties go to the lower threshold",
        },
        "metrics": asdict(run.metrics()),
        "metrics_at_recommended": asdict(run.metrics(run.recommended.threshold)),
        "by_type": {kind: asdict(m) for kind, m in by_type.items()},
        "sweep": [asdict(p) for p in run.sweep],
        "conversations": None
        if apart is None
        else {
            "first_turns": asdict(apart.first_turns),
            "follow_ups": asdict(apart.follow_ups),
            "full_questions": asdict(apart.full_questions),
            "f1_gap": apart.f1_gap,
            "em_gap": apart.em_gap,
            "conversations": len({t.conversation for t in run.turns.values()}),
        },
        "notes": run.notes,
    }


def _fmt(value: object, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _cell(text: str) -> str:
    """Text safe inside a Markdown table row: pipes escaped, line breaks as <br>."""
    return text.replace("|", "\\|").replace("\n", "<br>")


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for row in rows:
        cells = (_fmt(c) if not isinstance(c, str) else _cell(c) for c in row)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


_OVERALL = (
    ("n", "questions"),
    ("em", "exact match"),
    ("f1", "F1"),
    ("f1_answerable", "F1, answerable questions only"),
    ("sentence_hit", "sentence hit (answered, answerable)"),
    ("abstain_rate", "abstention rate"),
    ("abstain_precision", "abstention precision"),
    ("abstain_recall", "abstention recall"),
    ("recall_at_1", "retrieval recall@1"),
    ("recall_at_5", "retrieval recall@5"),
    ("recall_at_10", "retrieval recall@10"),
    ("mrr", "retrieval MRR@10"),
    ("f1_open_best", "F1 of the best open-corpus answer, never abstaining (answerable)"),
    ("f1_gold_passage", "F1 given the gold passage, never abstaining (answerable)"),
    ("p50_ms", "latency p50 (ms)"),
    ("p95_ms", "latency p95 (ms)"),
)


def render_markdown(
    run: EvalRun,
    details: dict[str, Any],
    scored: Sequence[Scored],
    by_type: dict[str, Metrics],
) -> str:
    """The human-readable report of a run."""
    in_use, best = run.metrics(), run.metrics(run.recommended.threshold)
    t, t_best = run.threshold, run.recommended.threshold
    settings = details["settings"]
    sample_note = (
        f" (a deterministic sample of {run.limit} from {run.total_questions})"
        if run.limit is not None and run.limit < run.total_questions
        else ""
    )
    parts = [
        f"# Evaluation: {run.name}",
        "",
        f"`{details['command']}`, {details['date']}, commit {details['git'] or 'unknown'}, "
        f"{run.seconds:.1f} s in all.",
        *(f"\n**Note:** {note}." for note in run.notes),
        "",
        "## Settings",
        "",
        markdown_table(
            ["setting", "value"],
            [
                (
                    "set",
                    f"{run.source} ({run.kind}), {len(run.observations)} questions{sample_note}",
                ),
                ("reading mode", run.mode),
                ("reader model", settings["reader_model"]),
                (
                    "retrieval",
                    f"{settings['retrieval_mode']}; the reader reads the best "
                    f"{settings['read_passages']} passages; recall is measured on the top "
                    f"{RETRIEVAL_DEPTH}",
                ),
                ("embedding model", settings["embedding_model"]),
                ("chunking", json.dumps(settings["chunking"])),
                (
                    "index",
                    f"{run.index_info['documents']} documents, {run.index_info['chunks']} chunks"
                    + (
                        "" if run.index_seconds is None else f", built in {run.index_seconds:.1f} s"
                    ),
                ),
                ("threshold in use", f"{t:.4f} ({run.threshold_source})"),
                ("recommended threshold", f"{t_best:.4f} ({_recommendation_note(run)})"),
            ],
        ),
        "",
        "## Overall",
        "",
        markdown_table(
            ["metric", f"at threshold in use ({t:.4f})", f"at recommended ({t_best:.4f})"],
            [(label, getattr(in_use, key), getattr(best, key)) for key, label in _OVERALL],
        ),
        "",
        "Unanswerable questions score EM = F1 = 1 when the system abstains and 0 when it answers;"
        " answerable ones score 0 when it abstains. Retrieval counts the gold document's first"
        f" passage among the top {RETRIEVAL_DEPTH}. The gap between the last two F1 rows is what"
        " retrieval costs; the gap from the gold-passage F1 to 1 is what reading costs.",
        *_conversation_section(run),
        "",
        f"## By question type (threshold {t:.4f})",
        "",
        markdown_table(
            [
                "type",
                "n",
                "EM",
                "F1",
                "sentence hit",
                "recall@1",
                "recall@5",
                "MRR",
                "abstained",
                "F1 gold passage",
            ],
            [
                (
                    kind,
                    m.n,
                    m.em,
                    m.f1,
                    m.sentence_hit,
                    m.recall_at_1,
                    m.recall_at_5,
                    m.mrr,
                    m.abstain_rate,
                    m.f1_gold_passage,
                )
                for kind, m in sorted(by_type.items(), key=lambda kv: _type_order(kv[0]))
            ],
        ),
        "",
        "## Threshold sweep",
        "",
        "Every question was asked once with the threshold at 0; a threshold t answers when the"
        " best answer's score is at least t. Rows: evenly spaced thresholds up to the highest"
        " observed score, plus the threshold in use and the recommended one.",
        "",
        markdown_table(
            [
                "threshold",
                "EM",
                "F1",
                "F1 answerable",
                "abstained",
                "abstain precision",
                "abstain recall",
                "sentence hit",
            ],
            [
                (
                    _threshold_label(x, t, t_best),
                    m.em,
                    m.f1,
                    m.f1_answerable,
                    m.abstain_rate,
                    m.abstain_precision,
                    m.abstain_recall,
                    m.sentence_hit,
                )
                for x, m in ((x, run.metrics(x)) for x in _sweep_rows(run))
            ],
        ),
        "",
        f"## Worst misses (threshold {t:.4f})",
        "",
        "Wrong answers first, the most confident first, then wrong abstentions.",
        "",
        markdown_table(
            ["id", "type", "question", "references", "answer", "score", "gold rank", "F1"],
            [
                (
                    s.observation.question.id,
                    s.observation.question.type,
                    s.observation.question.question,
                    " / ".join(s.observation.question.answers) or "(unanswerable)",
                    "(abstained)" if s.abstained else _clip(s.observation.text or ""),
                    s.observation.score,
                    s.observation.rank,
                    s.f1,
                )
                for s in worst_misses(scored)
            ],
        ),
        "",
        "![F1 and abstention against the threshold; recall against k](chart.png)",
        "",
    ]
    return "\n".join(parts)


def _conversation_section(run: EvalRun) -> list[str]:
    """The report's lines on first turns, follow-ups and full questions (conversation sets)."""
    apart = run.conversation_metrics()
    if apart is None:
        return []
    rows = [
        ("first turns", apart.first_turns),
        ("follow-ups, asked in their conversation", apart.follow_ups),
        ("the same follow-ups written out in full, asked alone", apart.full_questions),
    ]
    return [
        "",
        f"## Conversations (threshold {run.threshold:.4f})",
        "",
        markdown_table(
            ["turns", "n", "EM", "F1", "abstained", "recall@5"],
            [(label, m.n, m.em, m.f1, m.abstain_rate, m.recall_at_5) for label, m in rows]
            + [("full minus follow-up", "", apart.em_gap, apart.f1_gap, "", "")],
        ),
        "",
        "Every turn after the first is asked with the earlier turns of its conversation and is"
        " scored as any question; it is also asked once more as its `full_question`, alone."
        " The gap is what reading a follow-up in its conversation costs (the target: under 0.1"
        " F1). Each follow-up's rewritten question is `understood_as` in `predictions.jsonl`.",
    ]


def _recommendation_note(run: EvalRun) -> str:
    if run.has_unanswerable:
        return (
            "highest overall F1 on this set, for information: the threshold in use is chosen "
            "by `qa calibrate` on the validation set"
        )
    return (
        "this set has no unanswerable questions, so abstaining never pays here and the sweep "
        "only shows what each threshold costs; the threshold in use is chosen by "
        "`qa calibrate` on the validation set"
    )


def _type_order(kind: str) -> tuple[int, str]:
    known = QUESTION_TYPES.index(kind) if kind in QUESTION_TYPES else len(QUESTION_TYPES)
    return known, kind


def _clip(text: str, limit: int = ANSWER_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _threshold_label(x: float, in_use: float, recommended: float) -> str:
    marks = [
        name for name, value in (("in use", in_use), ("recommended", recommended)) if x == value
    ]
    return f"{x:.4f}" + (f" ({', '.join(marks)})" if marks else "")


def _sweep_rows(run: EvalRun) -> list[float]:
    top = max((p.threshold for p in run.sweep), default=0.0)
    grid = np.linspace(0.0, top, SWEEP_ROWS).tolist() if top > 0 else [0.0]
    return sorted({*grid, run.threshold, run.recommended.threshold})


def worst_misses(scored: Sequence[Scored], limit: int = WORST_MISSES) -> list[Scored]:
    """Questions scored below 1, wrong answers before abstentions, confident ones first."""
    misses = [s for s in scored if s.f1 < 1.0]
    return sorted(misses, key=lambda s: (s.abstained, s.f1, -(s.observation.score or 0.0)))[:limit]


def draw_chart(run: EvalRun, path: Path) -> None:
    """Two panels: F1 and abstention rate against the threshold; recall@k against k.

    A bare ``Figure`` renders PNG with the Agg backend and never touches pyplot's global state
    or a display.
    """
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    left, right = fig.subplots(1, 2)
    thresholds = [p.threshold for p in run.sweep]
    left.step(thresholds, [p.f1 for p in run.sweep], where="post", label="F1 (all questions)")
    left.step(
        thresholds,
        [p.abstain_rate for p in run.sweep],
        where="post",
        label="abstention rate",
        linestyle="--",
    )
    left.axvline(run.threshold, color="grey", linewidth=1, label=f"in use ({run.threshold:.3f})")
    if run.has_unanswerable:  # without unanswerable questions the sweep recommends nothing
        left.axvline(
            run.recommended.threshold,
            color="black",
            linestyle=":",
            linewidth=1.2,
            label=f"recommended ({run.recommended.threshold:.3f})",
        )
    left.set(
        xlabel="answer score threshold",
        ylabel="share of questions",
        ylim=(0, 1.02),
        title=f"{run.name}: F1 and abstention against the threshold",
    )
    left.legend(loc="best", fontsize="small")
    left.grid(alpha=0.3)

    ranks = [o.rank for o in run.observations if o.question.answerable]
    ks = list(range(1, RETRIEVAL_DEPTH + 1))
    right.plot(ks, [recall_at(ranks, k) or 0.0 for k in ks], marker="o")
    right.set(
        xlabel="k (passages retrieved)",
        ylabel="recall@k",
        ylim=(0, 1.02),
        xticks=ks,
        title=f"Gold document within the top k ({len(ranks)} answerable questions)",
    )
    right.grid(alpha=0.3)
    fig.savefig(path, dpi=110)
