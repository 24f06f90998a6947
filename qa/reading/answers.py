"""Answer assembly: from retrieved passages to ranked, located, deduplicated answers.

:class:`AnswerFinder` reads the passages it is given in one of two modes:

* ``reader``: every sentence of the passages is scored against the question (the sentence
  extractor's cosine + term overlap), the ``FOCUS_SENTENCES`` best become focus points, and a
  window of whole sentences around each (up to ``WINDOW_CHARS``) is read by the transformer
  reader in one batch. On eval/seed.jsonl, reading 3 windows of 300 characters instead of 5 of
  450 cut the padded word pieces read per question from ~500 to ~220 (reader CPU time roughly
  halved) with no loss of top-answer F1 (0.79 -> 0.81); one window lost 4 points.
* ``sentence``: the fallback when ``reader_model`` is ``"none"`` or the reader cannot be loaded;
  the best-scored sentences are the answers (``text == context``).

Scores. A sentence's score is its extractor score ``s`` in [0, 1] (cosine + term overlap; see
``qa.reading.sentences``). A reader span's score is the weighted geometric mean
``p ** READER_WEIGHT * s ** (1 - READER_WEIGHT)`` of ``p``, the reader's probability of the
span in its window (normalised over every valid span of the window and "no answer"; see
``qa.reading.transformer.decode_windows``), and ``s``, the score of the sentence holding the
span. Why both: ``p`` is conditional on the window, so a window without the answer can still put
most of its mass on a plausible span of the right type (the first reader gave "Washington, DC"
0.72 for "What is the capital of France?" in an article on Korea), while ``s`` says how much the
sentence is about the question at all. Neither factor depends on which other passages were
retrieved or on a passage's length, so the score, and one threshold, mean the same in every
passage and document. On eval/seed.jsonl (75 answerable questions), with the reader shipped at
the time, ranking candidates by ``p`` alone gave a top-answer F1 of 0.57, by ``p * s`` 0.74 and
by ``p ** 0.25 * s ** 0.75`` 0.79 (the weights were chosen there, on the project's own dev set,
never on xquad-dev).

Offsets. Windows are slices of the document text (or of the passage text when the document is
unknown to the index), so a span maps back by one addition, and ``doc.text[a.start:a.end] ==
a.text`` holds by construction.
"""

from __future__ import annotations

import json
import logging
import re
import string
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from qa.reading.sentences import Sentence, SentenceExtractor, cached_sentences
from qa.reading.transformer import ReaderModelError, TransformerReader
from qa.timing import StageClock
from qa.types import Answer, Document, Passage, Result

if TYPE_CHECKING:
    from qa.embedding import Embedder
    from qa.sentence_vectors import SentenceVectors
    from qa.settings import Settings

log = logging.getLogger(__name__)

ReadingKind = Literal["reader", "sentence"]

#: Recommended thresholds per reading kind, with how each was chosen.
THRESHOLDS_PATH = Path(__file__).with_name("thresholds.json")
#: Best-scored sentences of the passages around which the reader reads.
FOCUS_SENTENCES = 3
#: Characters of whole sentences read around each focus sentence (about 70 word pieces: a
#: window and the question fit one reader window with room to spare).
WINDOW_CHARS = 300
#: Weight of the reader's span probability against the sentence score in a span's score.
READER_WEIGHT = 0.25
#: Mode name of the packaged reader (fine-tuned from all-MiniLM-L6-v2 by ``qa train-reader``).
DEFAULT_READER_NAME = "qa-minilm-l6"

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation + "‘’“”–—…")


def recommended_threshold(kind: ReadingKind) -> float:
    """The threshold recorded in ``thresholds.json`` for ``kind`` (``reader`` or ``sentence``)."""
    table = json.loads(THRESHOLDS_PATH.read_text(encoding="utf-8"))
    return float(table[kind]["value"])


def normalize_answer(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces (SQuAD's answer normalisation)."""
    text = _ARTICLES.sub(" ", text.lower().translate(_PUNCTUATION))
    return " ".join(text.split())


def dedupe(answers: Sequence[Answer]) -> list[Answer]:
    """Keep the best-scored of each group of answers that say the same thing.

    Two answers are the same when they overlap in the same document (the same span read
    through overlapping chunks, or "the Agreed Framework" inside "Agreed Framework ...") or
    when their normalised texts are equal (the same name found in two places).

    Returns:
        The kept answers, best score first (ties keep their input order).
    """
    kept: list[Answer] = []
    seen_texts: set[str] = set()
    for answer in sorted(answers, key=lambda a: -a.score):
        key = normalize_answer(answer.text) or answer.text
        if key in seen_texts:
            continue
        if any(
            k.doc_id == answer.doc_id and k.start < answer.end and answer.start < k.end
            for k in kept
        ):
            continue
        kept.append(answer)
        seen_texts.add(key)
    return kept


def select(answers: Sequence[Answer], n: int, threshold: float) -> list[Answer]:
    """Deduplicate, drop answers scored below ``threshold``, keep the ``n`` best."""
    return [a for a in dedupe(answers) if a.score >= threshold][:n]


@dataclass(frozen=True)
class _Text:
    """A text the passages come from: the document, or the passage alone if it is unknown."""

    doc_id: str
    title: str
    path: str
    text: str
    offset: int  # where text[0] lies in Document.text
    indexed: bool = False  # text is the indexed document's text (its sentence vectors apply)

    @property
    def sentences(self) -> tuple[Sentence, ...]:
        return cached_sentences(self.text)

    def overlapping(self, start: int, end: int) -> list[int]:
        """Indices of the sentences overlapping ``[start, end)`` (text coordinates)."""
        return [i for i, s in enumerate(self.sentences) if s.start < end and start < s.end]

    def covering(self, start: int, end: int) -> tuple[int, int]:
        """The span of the whole sentences overlapping ``[start, end)`` (text coordinates)."""
        hits = self.overlapping(start, end)
        if not hits:
            return start, end
        first, last = self.sentences[hits[0]], self.sentences[hits[-1]]
        return min(start, first.start), max(end, last.end)

    def answer(self, start: int, end: int, score: float, context: tuple[int, int]) -> Answer:
        """An answer for ``text[start:end]``, located in document coordinates."""
        return Answer(
            text=self.text[start:end],
            score=float(score),
            start=self.offset + start,
            end=self.offset + end,
            doc_id=self.doc_id,
            title=self.title,
            path=self.path,
            context=self.text[context[0] : context[1]],
            context_start=self.offset + context[0],
        )


def _texts_and_sentences(
    passages: Sequence[Passage], documents: Mapping[str, Document]
) -> tuple[list[_Text], list[tuple[int, int]]]:
    """The texts of ``passages`` and the sentences overlapping each passage, each listed once.

    Returns:
        ``(texts, picks)`` where each pick is ``(text index, sentence index)``.
    """
    texts: list[_Text] = []
    text_index: dict[tuple[str, int, str], int] = {}
    picks: dict[tuple[int, int], None] = {}  # ordered set: overlapping chunks share sentences
    for p in passages:
        chunk = p.chunk
        doc = documents.get(chunk.doc_id)
        indexed = doc is not None and doc.text[chunk.start : chunk.end] == chunk.text
        if indexed:
            text, offset = doc.text, 0
        else:
            # A passage from outside the index (e.g. an eval set's gold paragraph).
            text, offset = chunk.text, chunk.start
        key = (chunk.doc_id, offset, text)
        if key not in text_index:
            text_index[key] = len(texts)
            texts.append(_Text(chunk.doc_id, p.title, p.path, text, offset, indexed))
        t = text_index[key]
        lo, hi = chunk.start - offset, chunk.end - offset
        for i, s in enumerate(texts[t].sentences):
            if s.start < hi and lo < s.end:
                picks[(t, i)] = None
    return texts, list(picks)


def _known_vectors(
    texts: Sequence[_Text],
    picks: Sequence[tuple[int, int]],
    sentence_vectors: SentenceVectors | None,
) -> list[np.ndarray | None]:
    """The index-time vector of each picked sentence, or None where the index has none."""
    out: list[np.ndarray | None] = [None] * len(picks)
    if sentence_vectors is None:
        return out
    by_text: dict[int, list[int]] = {}
    for k, (t, _) in enumerate(picks):
        if texts[t].indexed:
            by_text.setdefault(t, []).append(k)
    for t, ks in by_text.items():
        sentences = texts[t].sentences
        spans = [(sentences[picks[k][1]].start, sentences[picks[k][1]].end) for k in ks]
        for k, vector in zip(ks, sentence_vectors.lookup(texts[t].doc_id, spans), strict=True):
            out[k] = vector
    return out


def _window(sentences: Sequence[Sentence], focus: int, budget: int) -> tuple[int, int]:
    """Grow a window of whole sentences around ``focus``, alternating sides, within ``budget``.

    Returns:
        ``(first, last)`` sentence indices, inclusive.
    """
    first = last = focus
    grew = True
    while grew:
        grew = False
        if first > 0 and sentences[last].end - sentences[first - 1].start <= budget:
            first -= 1
            grew = True
        if last + 1 < len(sentences) and sentences[last + 1].end - sentences[first].start <= budget:
            last += 1
            grew = True
    return first, last


def _merge(windows: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """Merge overlapping ``(text, first, last)`` sentence windows of the same text."""
    merged: list[tuple[int, int, int]] = []
    for t, first, last in sorted(windows):
        if merged and merged[-1][0] == t and first <= merged[-1][2] + 1:
            merged[-1] = (t, merged[-1][1], max(last, merged[-1][2]))
        else:
            merged.append((t, first, last))
    return merged


class AnswerFinder:
    """Find answers in passages with the transformer reader, or with the sentence extractor.

    The reader loads on first use; if it cannot be loaded, one warning is logged and every
    question is answered by the sentence extractor instead.

    Args:
        embedder: The sentence embedder (scores sentences in both modes).
        settings: ``reader_model``, ``max_answer_tokens``, ``n_answers`` and ``threshold``.
        reader: A reader to use instead of the one ``settings.reader_model`` names (for
            example one already loaded, or being trained).
    """

    def __init__(
        self, embedder: Embedder, settings: Settings, *, reader: TransformerReader | None = None
    ) -> None:
        self.settings = settings
        self.extractor = SentenceExtractor(embedder)
        self._reader = reader
        if reader is None and settings.reader_model != "none":
            self._reader = TransformerReader(
                settings.reader_model, max_answer_tokens=settings.max_answer_tokens
            )
        self._lock = threading.Lock()
        self._ready = False

    @property
    def reader(self) -> TransformerReader | None:
        """The loaded reader, or ``None`` when answering with sentences."""
        with self._lock:
            if not self._ready:
                self._ready = True
                if self._reader is not None:
                    try:
                        self._reader.warm_up()
                    except ReaderModelError as exc:
                        log.warning("%s Answering with the sentence extractor instead.", exc)
                        self._reader = None
            return self._reader

    @property
    def mode(self) -> str:
        """What answers: ``reader:<name>`` or ``sentence`` (loads the reader to know)."""
        reader = self.reader
        if reader is None:
            return "sentence"
        name = str(reader.model_name)
        if name == "default":
            return f"reader:{DEFAULT_READER_NAME}"
        path = Path(name).expanduser()
        return f"reader:{path.name if path.is_dir() or path.is_absolute() else name}"

    def warm_up(self) -> None:
        """Load the embedder and the reader (or settle on the fallback) before any question."""
        self.extractor.embedder.encode_query("warm up")
        _ = self.reader

    def find(
        self,
        question: str,
        passages: Sequence[Passage],
        documents: Mapping[str, Document],
        *,
        n_answers: int | None = None,
        threshold: float | None = None,
        timings: dict[str, float] | None = None,
        sentence_vectors: SentenceVectors | None = None,
    ) -> Result:
        """Answer ``question`` from ``passages``.

        Args:
            question: The question.
            passages: The passages to read (all of them), best first.
            documents: Documents by id, for whole sentences and document offsets; a passage
                whose document is absent is read on its own text.
            n_answers: How many answers at most (default ``settings.n_answers``).
            threshold: Score below which answers are dropped; ``None`` takes
                ``settings.threshold``, then the mode's recommended value. ``0.0`` keeps every
                candidate, which is how an evaluation sweeps thresholds from one pass.
            timings: If given, receives seconds spent in ``sentences`` and ``reader``.
            sentence_vectors: The index's sentence vectors; sentences of indexed documents
                found there are not embedded again.

        Returns:
            The answers (deduplicated, best first) or an abstention (``answers == []``) with
            ``passages`` kept as leads.
        """
        n = n_answers or self.settings.n_answers
        reader = self.reader
        kind: ReadingKind = "sentence" if reader is None else "reader"
        if threshold is None:
            threshold = self.settings.threshold
        if threshold is None:
            threshold = recommended_threshold(kind)
        clock = StageClock(timings)
        texts, picks = _texts_and_sentences(passages, documents)
        sentences = [texts[t].sentences[i] for t, i in picks]
        scores = self.extractor.score(
            question,
            [s.text for s in sentences],
            vectors=_known_vectors(texts, picks, sentence_vectors),
        )
        clock.lap("sentences")
        if reader is None:
            candidates = [
                texts[t].answer(s.start, s.end, score, (s.start, s.end))
                for (t, _), s, score in zip(picks, sentences, scores, strict=True)
            ]
        else:
            candidates = self._read(reader, question, texts, picks, scores, n, sentence_vectors)
            clock.lap("reader")
        answers = select(candidates, n, threshold)
        return Result(
            question=question,
            answers=answers,
            abstained=not answers,
            passages=list(passages),
            mode=self.mode,
        )

    def _read(
        self,
        reader: TransformerReader,
        question: str,
        texts: list[_Text],
        picks: list[tuple[int, int]],
        scores: np.ndarray,
        n: int,
        sentence_vectors: SentenceVectors | None,
    ) -> list[Answer]:
        order = np.argsort(-scores, kind="stable")[:FOCUS_SENTENCES]
        windows = _merge(
            [
                (picks[j][0], *_window(texts[picks[j][0]].sentences, picks[j][1], WINDOW_CHARS))
                for j in order
            ]
        )
        spans = [
            (t, texts[t].sentences[first].start, texts[t].sentences[last].end)
            for t, first, last in windows
        ]
        contexts = [texts[t].text[a:b] for t, a, b in spans]
        if not contexts:
            return []
        # Neighbours pulled into a window need a sentence score too (cached vectors: cheap).
        sentence_score = dict(zip(picks, scores.tolist(), strict=True))
        extra = [
            (t, i)
            for t, first, last in windows
            for i in range(first, last + 1)
            if (t, i) not in sentence_score
        ]
        if extra:
            extra_scores = self.extractor.score(
                question,
                [texts[t].sentences[i].text for t, i in extra],
                vectors=_known_vectors(texts, extra, sentence_vectors),
            )
            sentence_score.update(zip(extra, extra_scores.tolist(), strict=True))
        # Extra candidates: re-ranking by sentence score and deduplication both thin the list.
        found = reader.read(question, contexts, top_n=5 * n + 5)
        answers = []
        for c in found:
            t, base, _ = spans[c.context_index]
            start, end = base + c.start, base + c.end
            held = texts[t].overlapping(start, end)
            s = max((sentence_score.get((t, i), 0.0) for i in held), default=0.0)
            score = c.score**READER_WEIGHT * s ** (1.0 - READER_WEIGHT)
            answers.append(texts[t].answer(start, end, score, texts[t].covering(start, end)))
        return answers
