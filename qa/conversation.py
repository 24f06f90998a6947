"""Follow-up questions: read a question in the light of the conversation before it.

People ask a chatbot the way they ask a person: "Where did Trump and Kim meet?", then
"And when?". An extractive system cannot generate an answer, and it does not need to generate
a question either: :func:`understand` rewrites a follow-up only with words the conversation
already holds (the earlier questions as they were read, and their answers), so the reader reads
a whole question, retrieval searches for it, and the answer is still an exact span of an
article with its source. The reply shows the rewritten question ("read as: ...") so the user can
see and correct how it was understood.

A question is read as a follow-up when it leans on what came before, and only then:

- **ellipsis**: it is only a question word ("When?", "And why?", "Where exactly?"): the new
  question word replaces the one of the previous question ("when did Trump and Kim meet?");
- **"what about X?" / "and X?"**: X replaces the part of the previous question it matches (a
  number by a number, a name by a name sharing a word, ...), else X is added to it;
- **references**: "he", "she", "they", "it", "there", "then", "the second one"... are replaced by
  what they refer to, the previous answer when it is of the right kind (a person's name for
  "he", a place for "there", a date for "then"), else the name or phrase of the previous
  question.

A question with enough words of its own and nothing that leans back ("What is the capital of
France?") is read as it is: a change of subject is never dragged back. Retrieval then prefers
the previous answer's article (:attr:`Understanding.prefer`) without being limited to it.

Everything here is plain string work over words (no model), so it is fast, deterministic and
easy to test; its limits are those of rules: it resolves the common follow-ups above, not every
anaphora of English.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from qa.types import Passage

if TYPE_CHECKING:
    from qa.types import Result

P = TypeVar("P", bound=Passage)

#: Turns of a conversation kept as context; older ones no longer shape a question.
MAX_TURNS = 4
#: Retrieved passages searched for one of the preferred article's, when a follow-up has one.
PREFER_DEPTH = 20


@dataclass(frozen=True)
class Turn:
    """One question and what it got, as a later question may lean on it.

    Attributes:
        question: The question as the user wrote it.
        understood: The question as it was read (equal to ``question`` when it stood alone).
        answer: The best answer's text, or None when the system abstained.
        doc_id: The document of the best answer, or None.
    """

    question: str
    understood: str
    answer: str | None = None
    doc_id: str | None = None

    @classmethod
    def of(cls, question: str, result: Result) -> Turn:
        """The turn of ``question`` answered by ``result`` (what ``QA.ask`` returned)."""
        best = result.answers[0] if result.answers and not result.abstained else None
        return cls(
            question=question,
            understood=result.understood_as or question,
            answer=best.text if best else None,
            doc_id=best.doc_id if best else None,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Turn:
        """A turn from :meth:`to_dict`'s JSON; ``ValueError`` saying what is wrong."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a turn must be an object, got {type(data).__name__}")
        question = data.get("question")
        if not isinstance(question, str) or not question.strip():
            raise ValueError("a turn needs its question (non-empty text)")
        understood = data.get("understood") or question
        answer = data.get("answer")
        doc_id = data.get("doc_id")
        for name, value in (("understood", understood), ("answer", answer), ("doc_id", doc_id)):
            if value is not None and not isinstance(value, str):
                raise ValueError(f"a turn's {name} must be text or null")
        return cls(question, understood, answer, doc_id)


def turns_from_json(data: object, *, limit: int = MAX_TURNS) -> list[Turn]:
    """The last ``limit`` turns of a JSON list of turn objects (the web API's ``history``).

    Raises:
        ValueError: If ``data`` is not a list of turn objects.
    """
    if data is None:
        return []
    if not isinstance(data, list):
        raise ValueError(f"the conversation must be a list of turns, got {type(data).__name__}")
    return [Turn.from_dict(item) for item in data[-limit:]] if limit else []


@dataclass(frozen=True)
class Understanding:
    """How a question is read in its conversation.

    Attributes:
        question: The question to read and retrieve with: the rewritten one for a follow-up,
            else the question as asked.
        used_context: Whether the conversation changed it.
        prefer: Documents to prefer in retrieval (the previous answer's), when used_context.
    """

    question: str
    used_context: bool = False
    prefer: frozenset[str] = field(default_factory=frozenset)


def understand(question: str, turns: Sequence[Turn] = ()) -> Understanding:
    """Read ``question`` after ``turns`` (oldest first): rewritten if it leans on them.

    The rewritten question holds only the question's own words and words of earlier turns.
    """
    return _understand(question.strip(), list(turns)[-MAX_TURNS:])


def _understand(question: str, turns: list[Turn]) -> Understanding:
    return Understanding(question)


def prefer_documents(passages: Sequence[P], prefer: frozenset[str], n: int) -> list[P]:
    """The ``n`` passages to read: the best ``n``, with the best passage of a preferred
    document (the previous answer's article) in the last place if none made the cut.

    Retrieval order is kept otherwise, so a follow-up that the previous article cannot answer
    is still read from the others.
    """
    chosen = list(passages[:n])
    if not prefer or not chosen or any(p.chunk.doc_id in prefer for p in chosen):
        return chosen
    for passage in passages[n:]:
        if passage.chunk.doc_id in prefer:
            return chosen[: n - 1] + [passage] if n > 1 else [passage]
    return chosen


_WORD = re.compile(r"\S+")
