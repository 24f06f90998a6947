"""Conversation sets: follow-up questions asked after their earlier turns, and scored apart.

A set in the project's JSON Lines format is a conversation set when its records also carry
``conversation`` (the conversation's id) and ``turn`` (1, 2, ... in the order asked), and every
turn after the first ``full_question``: the same question written out in full, standing alone,
as a person would write it ("And when?" -> "When will Trump and Kim hold their second
summit?"). ``qa eval`` asks each conversation's turns in order, every turn after the earlier
ones (``QA.ask(conversation=...)``), and asks each follow-up's ``full_question`` alone as well,
so the report can say what reading a follow-up in its conversation costs: follow-up F1 against
the F1 of the same questions written out in full.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from qa.evaluation.datasets import EvalQuestion
from qa.evaluation.metrics import Metrics, Observation, compute_metrics


@dataclass(frozen=True)
class TurnInfo:
    """Where a question stands in its conversation.

    Attributes:
        conversation: The conversation's id.
        turn: 1 for the first question, 2 for the next, ...
        full_question: For a follow-up (turn > 1), the question written out in full.
    """

    conversation: str
    turn: int
    full_question: str | None = None

    @property
    def follow_up(self) -> bool:
        return self.turn > 1


def load_turns(path: Path) -> dict[str, TurnInfo]:
    """The conversation fields of a JSON Lines set, by question id (empty for a plain set).

    Raises:
        ValueError: naming the line, when ``conversation`` and ``turn`` do not go together, a
            conversation's turns are not 1, 2, ... in file order, or a follow-up lacks its
            ``full_question`` (or a first turn has one).
    """
    turns: dict[str, TurnInfo] = {}
    last: dict[str, int] = {}
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        record = json.loads(line)
        if not isinstance(record, dict) or ("conversation" not in record and "turn" not in record):
            continue
        problem, info = _turn_problem(record, last)
        if problem or info is None:
            raise ValueError(f"{path}:{number}: {problem}")
        last[info.conversation] = info.turn
        turns[str(record.get("id"))] = info
    return turns


def _turn_problem(record: dict, last: dict[str, int]) -> tuple[str | None, TurnInfo | None]:
    conversation, turn = record.get("conversation"), record.get("turn")
    if not isinstance(conversation, str) or not conversation:
        return "a conversation turn needs its conversation id (text)", None
    if not isinstance(turn, int) or isinstance(turn, bool) or turn < 1:
        return "a conversation turn needs its turn number (1, 2, ...)", None
    expected = last.get(conversation, 0) + 1
    if turn != expected:
        return f"turn {turn} of {conversation!r} where turn {expected} comes next", None
    full = record.get("full_question")
    if turn > 1 and (not isinstance(full, str) or not full.strip()):
        return "a follow-up (turn 2 and later) needs its full_question", None
    if turn == 1 and full is not None:
        return "a first turn stands alone: it has no full_question", None
    return None, TurnInfo(conversation, turn, full)


def conversations(
    questions: Sequence[EvalQuestion], turns: Mapping[str, TurnInfo]
) -> list[list[EvalQuestion]]:
    """The questions grouped by conversation (in order of first appearance), turns in order.

    A question outside any conversation is a conversation of its own.
    """
    groups: dict[str, list[EvalQuestion]] = {}
    for q in questions:
        key = turns[q.id].conversation if q.id in turns else f"\0{q.id}"
        groups.setdefault(key, []).append(q)
    return list(groups.values())


def sample_conversations(
    groups: Sequence[list[EvalQuestion]], limit: int | None, seed: int = 0
) -> list[list[EvalQuestion]]:
    """A deterministic sample of ``limit`` whole conversations, kept in their order."""
    if limit is None or limit >= len(groups):
        return list(groups)
    keep = sorted(random.Random(seed).sample(range(len(groups)), limit))
    return [groups[i] for i in keep]


def full_question(question: EvalQuestion, info: TurnInfo) -> EvalQuestion:
    """The follow-up ``question`` written out in full (its references unchanged)."""
    return EvalQuestion(
        id=question.id,
        question=info.full_question or question.question,
        answers=question.answers,
        doc_id=question.doc_id,
        type=question.type,
        answerable=question.answerable,
    )


@dataclass(frozen=True)
class ConversationMetrics:
    """First turns, follow-ups, and the same follow-ups written out in full, at one threshold.

    Attributes:
        first_turns: Metrics of every conversation's first question.
        follow_ups: Metrics of the later turns, asked in their conversation.
        full_questions: Metrics of the same later turns asked as their ``full_question``,
            alone.
    """

    first_turns: Metrics
    follow_ups: Metrics
    full_questions: Metrics

    @property
    def f1_gap(self) -> float | None:
        """Full-question F1 minus follow-up F1: what reading the conversation loses."""
        full, follow = self.full_questions.f1, self.follow_ups.f1
        return None if full is None or follow is None else full - follow

    @property
    def em_gap(self) -> float | None:
        full, follow = self.full_questions.em, self.follow_ups.em
        return None if full is None or follow is None else full - follow

    def summary(self) -> dict[str, float | None]:
        """The flat figures ``qa eval --json`` adds for a conversation set."""
        return {
            "first_turn_em": self.first_turns.em,
            "first_turn_f1": self.first_turns.f1,
            "follow_up_em": self.follow_ups.em,
            "follow_up_f1": self.follow_ups.f1,
            "full_question_em": self.full_questions.em,
            "full_question_f1": self.full_questions.f1,
            "follow_up_f1_gap": self.f1_gap,
            "n_first_turns": float(self.first_turns.n),
            "n_follow_ups": float(self.follow_ups.n),
        }


def conversation_metrics(
    observations: Sequence[Observation],
    full: Mapping[str, Observation],
    turns: Mapping[str, TurnInfo],
    threshold: float,
) -> ConversationMetrics:
    """Score first turns, follow-ups and the follow-ups' full questions apart.

    Args:
        observations: Every turn as asked in its conversation.
        full: The follow-ups asked as their ``full_question``, by question id.
        turns: The conversation fields by question id.
        threshold: The abstention threshold to score at.
    """
    follow = [o for o in observations if o.question.id in turns and turns[o.question.id].follow_up]
    first = [o for o in observations if o.question.id in turns and turns[o.question.id].turn == 1]
    return ConversationMetrics(
        first_turns=compute_metrics(first, threshold),
        follow_ups=compute_metrics(follow, threshold),
        full_questions=compute_metrics([full[o.question.id] for o in follow], threshold),
    )
