"""Run an evaluation set through the product and collect what it did for each question.

Each question is asked once through ``QA.ask`` with the threshold at 0, so the best answer and
its score are recorded whatever the threshold in use; ``qa.evaluation.metrics`` then scores the
run at any threshold. Retrieval is measured on the top ``RETRIEVAL_DEPTH`` passages, and the
reader is also given the gold passage alone, to tell retrieval errors from reading errors.
A conversation set (``qa.evaluation.conversations``) is asked conversation by conversation, each
turn after the earlier ones, and each follow-up also written out in full.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from tqdm import tqdm

from qa.conversation import Turn
from qa.evaluation.conversations import (
    ConversationMetrics,
    TurnInfo,
    conversation_metrics,
    conversations,
    full_question,
    load_turns,
    sample_conversations,
)
from qa.evaluation.datasets import EvalQuestion, load_jsonl, load_squad, sample
from qa.evaluation.metrics import (
    RETRIEVAL_DEPTH,
    Metrics,
    Observation,
    SweepPoint,
    best_threshold,
    compute_metrics,
    sweep,
)
from qa.indexing.build import build_index
from qa.pipeline import QA
from qa.reading.answers import threshold_in_use
from qa.settings import Settings
from qa.types import Chunk, Document, Passage, Result

logger = logging.getLogger(__name__)

#: Where runs are written unless ``--out`` says otherwise: under the current folder (in a
#: checkout, git-ignored), never inside the installed package.
RUNS_DIR = Path("eval") / "runs"
#: The checkout the running code comes from, if it runs from one (not from an installed wheel).
SOURCE_DIR = Path(__file__).resolve().parents[2]
#: Asked once, untimed, before a run: loads the models and the index.
WARM_UP_QUESTION = "What is this article about?"


@dataclass
class EvalRun:
    """A finished run: what was asked, with which settings, and what came back.

    Attributes:
        name: Short name of the set (its file stem).
        source: The set's file.
        kind: ``"jsonl"`` (the project's format, against the current index) or ``"squad"``
            (an open corpus of the file's paragraphs in a temporary index).
        settings: The settings the questions were asked with.
        mode: The reading mode the answers came from (``Result.mode``).
        threshold: The abstention threshold in use for these settings and mode.
        threshold_source: Where that threshold comes from.
        observations: One per question, in the set's order.
        index_info: Documents, chunks, embedding model and chunking of the index asked.
        started_at: When the run began (UTC).
        seconds: Wall time of the whole run, indexing included.
        index_seconds: Wall time of building the temporary index (SQuAD runs only).
        limit: The ``--limit`` sample size, if any (whole conversations, for a conversation
            set).
        total_questions: Questions in the set before sampling.
        turns: For a conversation set, each question's place in its conversation, by id.
        full_observations: For a conversation set, each follow-up asked as its
            ``full_question`` alone, by id.
        notes: What the run left out and why (conversations whose articles the index lacks).
    """

    name: str
    source: Path
    kind: str
    settings: Settings
    mode: str
    threshold: float
    threshold_source: str
    observations: list[Observation]
    index_info: dict[str, object]
    started_at: datetime
    seconds: float
    index_seconds: float | None = None
    limit: int | None = None
    total_questions: int = 0
    turns: dict[str, TurnInfo] = field(default_factory=dict)
    full_observations: dict[str, Observation] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    sweep: list[SweepPoint] = field(init=False)
    recommended: SweepPoint = field(init=False)

    def __post_init__(self) -> None:
        self.sweep = sweep(self.observations)
        self.recommended = best_threshold(self.sweep)

    @property
    def has_unanswerable(self) -> bool:
        return any(not o.question.answerable for o in self.observations)

    def metrics(self, threshold: float | None = None) -> Metrics:
        """Metrics at ``threshold`` (default: the threshold in use)."""
        return compute_metrics(
            self.observations, self.threshold if threshold is None else threshold
        )

    def conversation_metrics(self, threshold: float | None = None) -> ConversationMetrics | None:
        """First turns, follow-ups and their full questions apart; None for a plain set."""
        if not self.turns:
            return None
        return conversation_metrics(
            self.observations,
            self.full_observations,
            self.turns,
            self.threshold if threshold is None else threshold,
        )


def measuring(settings: Settings) -> Settings:
    """``settings`` with at least ``RETRIEVAL_DEPTH`` passages returned per question.

    Answers do not change: ``top_k`` only sets how many passages ``ask`` returns as leads, and
    the reader reads ``read_passages`` of the same ranking.
    """
    return settings.replace(top_k=max(settings.top_k, RETRIEVAL_DEPTH))


def run_jsonl(
    path: Path,
    settings: Settings,
    *,
    limit: int | None = None,
    progress: bool = True,
    corpora: Sequence[Path] | None = None,
) -> EvalRun:
    """Ask a JSON Lines evaluation set against the index named by ``settings``, or, given
    ``corpora``, against a temporary index of the seed articles and those folders.

    A conversation set is asked conversation by conversation (:func:`ask_conversations`);
    ``limit`` then samples whole conversations, and a conversation whose articles the index
    lacks is skipped with a warning (the BBC ones, say, when the BBC folder is absent) while
    the others run. In a plain set a question whose article is missing is an error.

    Args:
        path: The set.
        settings: Settings to ask with.
        limit: Ask a deterministic sample of this many questions (conversations).
        progress: Show progress bars.
        corpora: Corpus folders indexed beside the seed articles in a temporary index
            (deleted afterwards; the index of ``settings`` is never touched). Document ids
            are paths relative to each folder, as ``qa index`` makes them; a folder that does
            not exist is left out with a warning.
    """
    started_at, began = datetime.now(UTC), time.perf_counter()
    questions = load_jsonl(path)
    turns = load_turns(path)
    notes: list[str] = []
    with ExitStack() as stack:
        index_seconds = None
        if corpora is None:
            qa = QA(measuring(settings))
        else:
            documents = corpus_documents(corpora, notes)
            qa, index_seconds = stack.enter_context(
                temporary_index(settings, documents, progress=progress)
            )
        full: dict[str, Observation] = {}
        if turns:
            groups = sample_conversations(conversations(questions, turns), limit)
            chosen = [q for group in _indexed(groups, qa.index.documents, notes) for q in group]
            mode, observations, full = ask_conversations(qa, chosen, turns, progress=progress)
        else:
            chosen = sample(questions, limit)
            missing = {q.doc_id for q in chosen if q.doc_id is not None} - set(qa.index.documents)
            if missing:
                raise KeyError(
                    f"the index at {qa.settings.index_dir} lacks the set's documents "
                    f"{sorted(missing)}: index the corpus they come from"
                )
            mode, observations = ask_all(qa, chosen, progress=progress)
        run = _finish(
            qa,
            path,
            "jsonl",
            mode,
            observations,
            started_at=started_at,
            began=began,
            limit=limit,
            total_questions=len(questions),
            index_seconds=index_seconds,
        )
    run.turns, run.full_observations, run.notes = dict(turns), full, notes
    return run


def corpus_documents(folders: Sequence[Path], notes: list[str]) -> list[Document]:
    """The seed articles and every document of ``folders`` (ids relative to each folder).

    A folder that does not exist is noted (``notes`` and a warning) and left out; a document
    whose id an earlier folder already holds is left out.
    """
    from qa.ingest import load_corpus
    from qa.seed import SEED_CORPUS

    documents = {d.doc_id: d for d in load_corpus(SEED_CORPUS)}
    for folder in folders:
        if not Path(folder).is_dir():
            _note(notes, f"corpus folder {folder} does not exist: it is not indexed")
            continue
        for document in load_corpus(Path(folder)):
            documents.setdefault(document.doc_id, document)
    return list(documents.values())


@contextmanager
def temporary_index(
    settings: Settings, documents: list[Document], *, progress: bool = True
) -> Iterator[tuple[QA, float]]:
    """A ``QA`` over a temporary index of ``documents``, and the seconds it took to build.

    The index lives in a temporary folder deleted on exit; the index of ``settings`` is never
    touched.
    """
    with tempfile.TemporaryDirectory(prefix="qa-eval-") as tmp:
        scratch = measuring(settings).replace(
            index_dir=Path(tmp) / "index", corpus_dir=Path(tmp) / "corpus"
        )
        qa = QA(scratch)
        began = time.perf_counter()
        build_index(scratch, documents, qa.embedder, show_progress=progress)
        yield qa, time.perf_counter() - began


def _note(notes: list[str], message: str) -> None:
    notes.append(message)
    logger.warning("%s", message)


def _indexed(
    groups: Sequence[list[EvalQuestion]], documents: Mapping[str, Document], notes: list[str]
) -> list[list[EvalQuestion]]:
    """The conversations whose every article is in ``documents``; the others are noted."""
    kept, absent = [], set()
    for group in groups:
        missing = {q.doc_id for q in group if q.doc_id is not None} - set(documents)
        absent |= missing
        if not missing:
            kept.append(group)
    if len(kept) < len(groups):
        shown = ", ".join(sorted(absent)[:5]) + (", ..." if len(absent) > 5 else "")
        _note(
            notes,
            f"skipped {len(groups) - len(kept)} of {len(groups)} conversations: the index "
            f"lacks {len(absent)} of their articles ({shown}); index the corpus they come "
            "from, or name its folder with --corpus",
        )
    return kept


def without_gold(questions: Sequence[EvalQuestion], share: float, seed: int = 1) -> set[str]:
    """Ids of a deterministic ``share`` of the answerable questions, to ask without their gold.

    Such a question is asked with its own paragraph left out of retrieval, so the corpus no
    longer holds its answer and abstaining is the right reply: unanswerable questions that are
    on-topic, the kind users really ask, not questions about nothing in the corpus.
    """
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"the share asked without the gold must be in [0, 1], got {share}")
    answerable = [q.id for q in questions if q.answerable]
    count = round(share * len(answerable))
    return set(random.Random(seed).sample(answerable, count))


def as_unanswerable(question: EvalQuestion) -> EvalQuestion:
    """``question`` as scored when asked without its gold document: unanswerable."""
    return dataclasses.replace(
        question, answers=(), doc_id=None, type="unanswerable", answerable=False
    )


def run_squad(
    path: Path,
    settings: Settings,
    *,
    limit: int | None = None,
    progress: bool = True,
    unanswerable_share: float = 0.0,
    distractors: Path | None = None,
) -> EvalRun:
    """Ask a SQuAD file's questions against an open corpus of all its paragraphs.

    Every paragraph is indexed, whatever ``limit`` samples, so a sample faces the same corpus
    as the full run. The index lives in a temporary folder and is deleted afterwards; the
    index of ``settings`` is never touched.

    Args:
        path: The SQuAD file.
        settings: Settings to ask with (the index folders are replaced by temporary ones).
        limit: Ask a deterministic sample of this many questions.
        progress: Show progress bars.
        unanswerable_share: Share of the answerable questions asked with their own paragraph
            left out of retrieval (:func:`without_gold`); they count as unanswerable.
        distractors: A corpus folder (for example the BBC articles) indexed beside the
            paragraphs, to measure answers in a larger, mostly irrelevant corpus.
    """
    started_at, began = datetime.now(UTC), time.perf_counter()
    questions, documents = load_squad(path)
    chosen = sample(questions, limit)
    hidden = without_gold(chosen, unanswerable_share)
    if distractors is not None:
        from qa.ingest import load_corpus

        extra = load_corpus(distractors)
        if not extra:
            raise ValueError(f"no readable documents in the distractor folder {distractors}")
        taken = {d.doc_id for d in documents}
        documents = documents + [d for d in extra if d.doc_id not in taken]
    with temporary_index(settings, documents, progress=progress) as (qa, index_seconds):
        mode, observations = ask_all(qa, chosen, progress=progress, hidden=hidden)
        return _finish(
            qa,
            path,
            "squad",
            mode,
            observations,
            started_at=started_at,
            began=began,
            limit=limit,
            total_questions=len(questions),
            index_seconds=index_seconds,
        )


def ask_all(
    qa: QA,
    questions: Sequence[EvalQuestion],
    *,
    progress: bool = True,
    hidden: set[str] | frozenset[str] = frozenset(),
) -> tuple[str, list[Observation]]:
    """Ask every question once (threshold 0) and record what came back.

    ``qa`` must return at least ``RETRIEVAL_DEPTH`` passages per question (``top_k``), so one
    retrieval serves both the answer and the recall measurement. A fixed question is asked
    first, untimed, so that loading the models and the index is not counted as the latency of
    whichever question comes first. Questions whose id is in ``hidden`` are asked with their
    gold document left out of retrieval and recorded as unanswerable.

    Returns:
        The reading mode of the answers and one observation per question.
    """
    mode = _warm_up(qa, questions)
    chunks_by_doc = _chunks_by_doc(qa.index.chunks)
    observations = []
    for question in tqdm(questions, desc="Evaluating", unit="question", disable=not progress):
        exclude: frozenset[str] = frozenset()
        if question.id in hidden and question.doc_id is not None:
            exclude = frozenset({question.doc_id})
            question = as_unanswerable(question)
        observations.append(_observe(qa, question, chunks_by_doc, exclude=exclude)[0])
    return mode, observations


def ask_conversations(
    qa: QA,
    questions: Sequence[EvalQuestion],
    turns: Mapping[str, TurnInfo],
    *,
    progress: bool = True,
) -> tuple[str, list[Observation], dict[str, Observation]]:
    """Ask every question once (threshold 0) after the earlier turns of its conversation, and
    every follow-up's ``full_question`` alone too.

    ``questions`` hold each conversation's turns in order (:func:`conversations`). Each is
    asked with the turns before it (``Turn.of``) as ``conversation=``, as the user saw them:
    an answer scoring below the threshold in use was an abstention and is passed as one,
    though every question is still recorded at threshold 0 and scored at any threshold. The
    gold passage is read with the question as the system read it (``Result.understood_as``).

    Returns:
        The reading mode, one observation per question, and the follow-ups asked as their
        full questions, by question id.
    """
    mode = _warm_up(qa, questions)
    threshold, _ = threshold_in_use(qa.settings, mode)
    chunks_by_doc = _chunks_by_doc(qa.index.chunks)
    said: dict[str, list[Turn]] = {}
    observations, full = [], {}
    for question in tqdm(questions, desc="Evaluating", unit="question", disable=not progress):
        info = turns.get(question.id)
        earlier = said.setdefault(info.conversation, []) if info else []
        observation, result = _observe(qa, question, chunks_by_doc, conversation=tuple(earlier))
        observations.append(observation)
        if info is None:
            continue
        seen = Turn.of(question.question, result)
        if observation.best_score < threshold:
            seen = dataclasses.replace(seen, answer=None, doc_id=None)
        earlier.append(seen)
        if info.follow_up:
            full[question.id] = _observe(qa, full_question(question, info), chunks_by_doc)[0]
    return mode, observations, full


def _warm_up(qa: QA, questions: Sequence[EvalQuestion]) -> str:
    """Ask the untimed warm-up question; the reading mode of its answer."""
    if not questions:
        raise ValueError("the evaluation set has no questions")
    return qa.ask(WARM_UP_QUESTION, threshold=0.0).mode


def _observe(
    qa: QA,
    question: EvalQuestion,
    chunks_by_doc: dict[str, list[Chunk]],
    *,
    exclude: frozenset[str] = frozenset(),
    conversation: Sequence[Turn] = (),
) -> tuple[Observation, Result]:
    """Ask ``question`` once at threshold 0, read its gold passage, and record both."""
    began = time.perf_counter()
    result = qa.ask(question.question, threshold=0.0, exclude=exclude, conversation=conversation)
    latency_ms = (time.perf_counter() - began) * 1000
    best = result.answers[0] if result.answers and not result.abstained else None
    read_as = result.understood_as or question.question
    observation = Observation(
        question=question,
        text=best.text if best else None,
        score=best.score if best else None,
        context=best.context if best else None,
        doc_id=best.doc_id if best else None,
        ranked_doc_ids=tuple(p.chunk.doc_id for p in result.passages[:RETRIEVAL_DEPTH]),
        latency_ms=latency_ms,
        gold_passage_text=_read_gold(qa, question, chunks_by_doc, read_as),
        understood_as=result.understood_as,
    )
    return observation, result


def gold_passages(
    question: EvalQuestion, chunks: Sequence[Chunk], document: Document
) -> list[Passage]:
    """The gold document's chunks that hold a reference whole, or all of its chunks if none does.

    Args:
        question: An answerable question.
        chunks: The chunks of its gold document.
        document: The gold document (for the passages' title and path).
    """
    holding = [c for c in chunks if any(a in c.text for a in question.answers)]
    return [
        Passage(chunk=c, title=document.title, path=document.path, score=1.0)
        for c in holding or chunks
    ]


def _read_gold(
    qa: QA, question: EvalQuestion, chunks_by_doc: dict[str, list[Chunk]], read_as: str
) -> str | None:
    if not question.answerable or question.doc_id is None:
        return None
    passages = gold_passages(
        question, chunks_by_doc[question.doc_id], qa.index.documents[question.doc_id]
    )
    result = qa.read(read_as, passages, threshold=0.0)
    return result.answers[0].text if result.answers and not result.abstained else None


def _chunks_by_doc(chunks: Sequence[Chunk]) -> dict[str, list[Chunk]]:
    grouped: dict[str, list[Chunk]] = {}
    for chunk in chunks:
        grouped.setdefault(chunk.doc_id, []).append(chunk)
    return grouped


def _finish(
    qa: QA,
    path: Path,
    kind: str,
    mode: str,
    observations: list[Observation],
    *,
    started_at: datetime,
    began: float,
    limit: int | None,
    total_questions: int,
    index_seconds: float | None = None,
) -> EvalRun:
    manifest = qa.index.manifest
    threshold, source = threshold_in_use(qa.settings, mode)
    return EvalRun(
        name=Path(path).stem,
        source=Path(path),
        kind=kind,
        settings=qa.settings,
        mode=mode,
        threshold=threshold,
        threshold_source=source,
        observations=observations,
        index_info={
            "documents": len(qa.index.documents),
            "chunks": len(qa.index.chunks) - qa.index.masked,
            "embedding_model": manifest["embedding_model"],
            "chunking": manifest["chunking"],
            "faiss_index": manifest["faiss_index"],
        },
        started_at=started_at,
        seconds=time.perf_counter() - began,
        index_seconds=index_seconds,
        limit=limit,
        total_questions=total_questions,
    )


def default_out_dir(run: EvalRun) -> Path:
    """``eval/runs/<set name>-<UTC timestamp>/``."""
    return RUNS_DIR / f"{run.name}-{run.started_at.strftime('%Y%m%dT%H%M%SZ')}"


def git_revision() -> str | None:
    """The checkout's commit, with ``-dirty`` when it has uncommitted changes.

    None when the code does not run from a git checkout (an installed wheel), so that a git
    repository that merely holds the virtual environment is not taken for the code's.
    """
    if not (SOURCE_DIR / ".git").exists():
        return None
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=SOURCE_DIR,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
            encoding="utf-8",
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=SOURCE_DIR,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
            encoding="utf-8",
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}-dirty" if dirty else commit
