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


def add_turn(turns: Sequence[Turn], question: str, result: Result) -> list[Turn]:
    """The conversation once ``question`` got ``result``: its last ``MAX_TURNS`` turns."""
    return [*turns, Turn.of(question, result)][-MAX_TURNS:]


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
        question: The question to read with: the rewritten one for a follow-up, else the
            question as asked.
        used_context: Whether the conversation changed how it is read or searched for.
        prefer: Documents to prefer in retrieval (the previous answer's), when used_context.
        topic: Words of the previous question that retrieval searches with beside the
            question, when no rule could rewrite a question that leans back ("When is the
            hearing?"): the reader reads the question as asked, in the articles they find.
    """

    question: str
    used_context: bool = False
    prefer: frozenset[str] = field(default_factory=frozenset)
    topic: str = ""

    @property
    def search(self) -> str:
        """What retrieval searches with: the question, and the topic carried over if any."""
        return f"{self.question} {self.topic}" if self.topic else self.question

    @property
    def shown(self) -> str:
        """How the reply says the question was understood."""
        return f"{self.question} (about: {self.topic})" if self.topic else self.question


def understand(question: str, turns: Sequence[Turn] = ()) -> Understanding:
    """Read ``question`` after ``turns`` (oldest first): rewritten if it leans on them.

    The rewritten question holds only the question's own words and words of earlier turns.
    """
    return _understand(question.strip(), list(turns)[-MAX_TURNS:])


def _understand(question: str, turns: list[Turn]) -> Understanding:
    if not turns or not question:
        return Understanding(question)
    last = turns[-1]
    words = _words(question)
    lowered = [w.lower() for w in words]
    wh = _wh_phrase(words)
    rewritten: str | None = None
    swap = _SWAP_OPENER.match(question)
    if swap and (_content(_words(swap.group("rest"))) or _ordinal(swap.group("rest"))):
        rewritten = _swap(last.understood, swap.group("rest").strip(" ?!.").strip())
    elif (
        wh is not None
        and not _content(words[: _phrase_start(words, wh)] + words[wh[1] :])
        and not any(w in _ENTITIES for w in lowered[wh[1] :])
    ):
        # Only a question phrase ("And when?", "In which speech?", "Which year was that?").
        rewritten = _ellipsis(last, " ".join(words[_phrase_start(words, wh) : wh[1]]))
    elif wh is None and _opens(lowered) and not any(w in _AUXILIARIES for w in lowered):
        # A bare phrase: "And the officers?" asks the previous question about them, "And his
        # salary?" what it is.
        rest = _OPENER.sub("", question).strip(" ?!.")
        if any(w in _REFERENCES for w in lowered):
            resolved = _resolve_references(rest, last)
            rewritten = f"what is {resolved}" if resolved else None
        elif rest:
            rewritten = _swap(last.understood, rest)
    elif any(w in _REFERENCES for w in lowered):
        rewritten = _resolve_references(question, last)
    prefer = frozenset({last.doc_id}) if last.doc_id else frozenset()
    if rewritten is None and _leans_back(words, lowered):
        topic = _topic(last)
        if topic:
            return Understanding(question, used_context=True, prefer=prefer, topic=topic)
    if rewritten is None or _same(rewritten, question):
        return Understanding(question)
    return Understanding(_sentence_case(rewritten), used_context=True, prefer=prefer)


def _leans_back(words: Sequence[str], lowered: Sequence[str]) -> bool:
    """Whether a question no rule rewrote still needs the conversation: it refers back ("that",
    "those", "also"...), or it is short and names nothing ("What was the score?")."""
    content = len(_content(words))
    # A leading "then" joins the question to the talk ("Then what happened to the plan?").
    referring = lowered[1:] if lowered[:1] == ["then"] else lowered
    if any(w in _REFERENCES or w in _LEANING for w in referring):
        return True
    if content <= 3 and any(w in _DEMONSTRATIVES for w in lowered):
        return True
    names = [w for w in words[1:] if w[:1].isupper()]
    return not names and content <= 2


def _topic(last: Turn) -> str:
    """What the previous question asked about, for retrieval: "Who did Tottenham beat in the
    cup?" -> "Tottenham beat in the cup" (the question it was read as, without its question
    phrase and auxiliary)."""
    old = _words(last.understood)
    wh = _wh_phrase(old)
    rest = old[wh[1] :] if wh else old
    if rest and rest[0].lower() in _AUXILIARIES:
        rest = rest[1:]
    return " ".join(rest) if _content(rest) else ""


# Words and their kinds.

_WORD_RE = re.compile(r"\w(?:[\w'’.-]*\w)?")
_WH = frozenset("what when where who whom whose why which how".split())
#: Words that follow "how" in one question phrase ("how many", "how long").
_HOW_WORDS = frozenset("many much long old far often big large soon high".split())
_AUXILIARIES = frozenset(
    "is are was were be been being am do does did done have has had having will would shall "
    "should can could may might must".split()
)
_OPENERS = frozenset("and but also so ok okay".split())
_FILLERS = frozenset(
    "exactly else again then that this it so about precisely roughly really not too either "
    "instead though please".split()
)
#: Referring words and what follows the antecedent put in their place ("his" -> "Kim's");
#: "?" marks "her", possessive before a noun and an object otherwise.
_PERSON = {"he": "", "she": "", "him": "", "his": "'s", "hers": "'s", "her": "?"}
_PLURAL = {"they": "", "them": "", "their": "'s", "theirs": "'s"}
_THING = {"it": "", "its": "'s"}
_PLACE = {"there": ""}
_TIME = {"then": ""}
#: Words standing for a person or thing ("he", "they", "it"); "there" and "then" aside.
_ENTITIES = frozenset({*_PERSON, *_PLURAL, *_THING})
_REFERENCES = frozenset({*_ENTITIES, *_PLACE, *_TIME})
_BE = frozenset("is are was were".split())
#: Words that say a question continues the conversation ("Who else...", "...as well?").
_LEANING = frozenset("also too instead else either".split())
_DEMONSTRATIVES = frozenset("that this those these".split())
_STOP = frozenset(
    {*_WH, *_AUXILIARIES, *_OPENERS, *_FILLERS, *_REFERENCES}
    | set(
        "a an the of in on at to for from by with as into over under after before during "
        "between against than or nor no yes i you we me us my your our one ones these those "
        "what's who's where's when's".split()
    )
)
_ORDINALS = frozenset(
    "first second third fourth fifth sixth seventh eighth ninth tenth last next previous "
    "other latter former".split()
)
_NUMBER_WORDS = frozenset(
    "two three four five six seven eight nine ten eleven twelve twenty thirty forty fifty "
    "hundred thousand million billion".split()
)
_PREPOSITIONS = frozenset("in on at for from by with during after before since until".split())
_SWAP_OPENER = re.compile(
    r"^\s*(?:(?:and|but|so)\s+)?(?:what|how)\s+about\s+(?P<rest>.+)$", re.IGNORECASE
)
_OPENER = re.compile(r"^\s*(?:and|but|also|so|ok|okay)\b[\s,]*", re.IGNORECASE)
_YEAR = re.compile(r"^(?:1[5-9]|20)\d\d$")


def _words(text: str) -> list[str]:
    return _WORD_RE.findall(text)


def _content(words: Sequence[str]) -> list[str]:
    """The words that carry a question's subject (not question words, pronouns, fillers)."""
    return [w for w in words if w.lower() not in _STOP]


def _ordinal(text: str) -> bool:
    return any(_kind(w) == "ordinal" for w in _words(text))


def _opens(lowered: Sequence[str]) -> bool:
    return bool(lowered) and lowered[0] in _OPENERS


def _same(a: str, b: str) -> bool:
    return [w.lower() for w in _words(a)] == [w.lower() for w in _words(b)]


def _sentence_case(text: str) -> str:
    text = " ".join(text.split()).rstrip(" ?.!") + "?"
    return text[:1].upper() + text[1:]


def _kind(word: str) -> str:
    low = word.lower()
    if _YEAR.match(word):
        return "year"
    if low in _ORDINALS or re.fullmatch(r"\d+(?:st|nd|rd|th)", low):
        return "ordinal"
    if low in _NUMBER_WORDS or re.fullmatch(r"\d[\d.,]*", word):
        return "number"
    if word[:1].isupper():
        return "name"
    return "word"


# Ellipsis: "And when?", "Why?", "Where exactly?"


def _wh_phrase(words: Sequence[str]) -> tuple[int, int] | None:
    """Word range of the first question phrase ("when", "how many", "what year")."""
    for i, word in enumerate(words):
        low = word.lower()
        if low not in _WH:
            continue
        end = i + 1
        nxt = words[end].lower() if end < len(words) else ""
        if low == "how" and nxt in _HOW_WORDS:
            end += 1
        elif low in ("what", "which", "whose") and _noun_after(words, end):
            end += 1  # "what year", "which country"
        return i, end
    return None


def _noun_after(words: Sequence[str], i: int) -> bool:
    """Whether ``words[i]`` is the noun of a question phrase ("what year did...", "which
    speech?"), not a verb ("what happened then?"): a word, not a function word, that ends the
    question or stands before an auxiliary."""
    if i >= len(words) or words[i].lower() in _STOP or words[i].lower().endswith("ed"):
        return False
    return i + 1 == len(words) or words[i + 1].lower() in _AUXILIARIES


def _phrase_start(words: Sequence[str], phrase: tuple[int, int]) -> int:
    """Where a question phrase starts, with the preposition before it ("in which speech")."""
    start = phrase[0]
    return start - 1 if start > 0 and words[start - 1].lower() in _PREPOSITIONS else start


def _ellipsis(last: Turn, new_wh: str) -> str:
    """The previous question asked with ``new_wh`` ("when", "in which speech") instead of its
    own question phrase."""
    previous = last.understood.strip().rstrip("?!. ")
    old = _words(previous)
    old_range = _wh_phrase(old)
    if old_range is None:  # a yes/no question: "Did they meet?" -> "When did they meet?"
        return f"{new_wh} {previous[:1].lower()}{previous[1:]}"
    before = old[: _phrase_start(old, old_range)]
    rest = old[old_range[1] :]
    if rest and rest[0].lower() not in _AUXILIARIES and last.answer:
        # The question word was the subject ("Who wrote the commentary?"): its answer becomes
        # the subject of the new question ("when Mark Fitzpatrick wrote the commentary").
        answer = last.answer.strip().rstrip(".")
        if len(_words(answer)) <= 6:
            rest = [answer, *rest]
    return " ".join([*before, new_wh, *rest])


# "What about X?": X takes the place of what it matches in the previous question.


def _swap(previous: str, replacement: str) -> str | None:
    previous = previous.strip().rstrip("?!. ")
    core = _words(replacement)
    if not core:
        return None
    if core[0].lower() in _PREPOSITIONS and len(core) > 1:
        core = core[1:]
    article = core[0].lower() == "the" and len(core) > 1
    if article:
        core = core[1:]
    old = _words(previous)
    span = _match(old, core)
    if span is None:
        # Nothing of its kind to replace: the previous question, about this too.
        return f"{previous} {replacement}"
    start, end = span
    # "What about the second one?" after "...the first summit...": "the second summit".
    new = [w for w in core if w.lower() not in ("one", "ones")] or core
    after_the = start > 0 and old[start - 1].lower() == "the"
    if after_the and old[start].isupper() and not new[0].isupper():
        start -= 1  # "the US" -> "North Korea"
        after_the = False
    if article and not after_the and _kind(new[0]) != "ordinal":
        new = ["the", *new]  # "Dan Coats" -> "the top US commander"
    return " ".join([*old[:start], *new, *old[end:]])


def _match(old: Sequence[str], core: Sequence[str]) -> tuple[int, int] | None:
    """The word range of ``old`` that ``core`` should replace, or None."""
    kinds = [_kind(w) for w in core]
    lowered_old = [w.lower() for w in old]
    # A year for a year, an ordinal for an ordinal, a number for a number.
    for wanted in ("year", "ordinal", "number"):
        if wanted in kinds:
            for i, word in enumerate(old):
                if _kind(word) == wanted:
                    return i, i + 1
    names = _name_spans(old)
    core_lower = {w.lower() for w in core}
    # A name sharing a word ("North Korea" -> "South Korea"), then any shared content word.
    for start, end in names:
        if core_lower & set(lowered_old[start:end]):
            return start, end
    for i, word in enumerate(lowered_old):
        if word in core_lower and word not in _STOP:
            return i, i + 1
    if "name" in kinds and names:
        return names[0]
    return None


def _name_spans(words: Sequence[str]) -> list[tuple[int, int]]:
    """Runs of capitalised words (names; "of" inside one), question words aside."""
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(words):
        if _is_name_word(words[i]):
            start = i
            i += 1
            while i < len(words) and (
                _is_name_word(words[i])
                or (words[i] == "of" and i + 1 < len(words) and words[i + 1][:1].isupper())
            ):
                i += 1
            spans.append((start, i))
        else:
            i += 1
    return spans


def _is_name_word(word: str) -> bool:
    """A capitalised word that is not a question or function word, or an acronym ("US")."""
    if not word[:1].isupper():
        return False
    return word.lower() not in _STOP or (len(word) > 1 and word.isupper())


def _joined_names(words: Sequence[str], names: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Names joined by "and" ("Trump and Kim"), as one span."""
    return [
        (a_start, b_end)
        for (a_start, a_end), (b_start, b_end) in zip(names, names[1:], strict=False)
        if b_start == a_end + 1 and words[a_end].lower() == "and"
    ]


def _looks_like_name(text: str) -> bool:
    words = _words(text)
    particles = ("of", "de", "van", "von", "al", "bin", "la", "le", "du")
    return (
        0 < len(words) <= 4
        and all(w[:1].isupper() or w.lower() in particles for w in words)
        and not any(ch.isdigit() for ch in text)
    )


# References: "he", "they", "it", "there", "then".


def _resolve_references(question: str, last: Turn) -> str | None:
    """``question`` with its referring words replaced by what they refer to, or None."""
    previous = last.understood.strip().rstrip("?!. ")
    old = _words(previous)
    names = _name_spans(old)
    answer = (last.answer or "").strip().rstrip(".")
    wh = _wh_phrase(old)
    asked = old[wh[0]].lower() if wh else ""
    with_preposition = (
        answer if answer and answer.split()[0].lower() in _PREPOSITIONS else f"in {answer}"
    )

    short_answer = answer if answer and len(_words(answer)) <= 8 else ""
    used: set[str] = set()

    def spans() -> list[str]:
        return [" ".join(old[a:b]) for a, b in names]

    def person() -> str | None:
        # The answer to "who ...?" (a name or "a senior official"), else a name asked about.
        if short_answer and (asked in ("who", "whom") or _looks_like_name(short_answer)):
            return short_answer
        return next(iter(spans()), None)

    def group() -> str | None:
        candidates = [" ".join(old[a:b]) for a, b in _joined_names(old, names)]
        if short_answer and (asked in ("what", "which", "who") or " and " in short_answer):
            candidates.append(short_answer)
        return next((c for c in [*candidates, *spans()] if c not in used), None)

    def thing() -> str | None:
        if short_answer and asked in ("what", "which"):
            return short_answer
        # "When was the failed summit in Hanoi?": "it" is what the question was about.
        if wh and len(old) > wh[1] + 1 and old[wh[1]].lower() in _BE:
            subject = old[wh[1] + 1 :]
            if len(subject) <= 8 and _content(subject):
                return " ".join(subject)
        return next((name for name in spans() if name not in used), None)

    def place() -> str | None:
        return with_preposition if answer and asked == "where" else None

    def time() -> str | None:
        dated = answer and any(ch.isdigit() for ch in answer)
        return with_preposition if answer and (asked == "when" or dated) else None

    finders = ((_PERSON, person), (_PLURAL, group), (_THING, thing), (_PLACE, place), (_TIME, time))
    out: list[str] = []
    changed = False
    for match in re.finditer(r"\S+", question):
        token = match.group(0)
        core = token.strip("?!.,;:")
        low = core.lower()
        replacement = None
        for table, finder in finders:
            if low not in table or (low == "then" and not out):
                continue
            found = finder()
            if found is not None and found not in used:  # "he told them": two different ones
                used.add(found)
                suffix = table[low]
                if suffix == "?":
                    following = question[match.end() :].split()
                    nxt = following[0].strip("?!.,").lower() if following else ""
                    suffix = "'s" if nxt and nxt not in _STOP else ""
                replacement = found + suffix
            break
        if replacement is None:
            out.append(token)
        else:
            out.append(token.replace(core, replacement))
            changed = True
    return " ".join(out) if changed else None


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
