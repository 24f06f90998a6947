"""Answer assembly: from retrieved passages to ranked, located, deduplicated answers.

:class:`AnswerFinder` reads the passages it is given in one of two modes:

* ``reader``: the transformer reader reads each retrieved passage whole, widened to whole
  sentences, with overlapping or adjacent passages of one document merged into one text, so the
  reader sees everything retrieval found (reading only windows around the best-scored
  sentences lost the answer whenever the sentence scorer missed it). Every span it proposes is
  described by the signals of :mod:`qa.reading.scoring` and scored by the answer model: the
  probability that the span is right. That one probability ranks spans across passages and
  decides abstention.
* ``sentence``: the fallback when ``reader_model`` is ``"none"`` or the reader cannot be loaded;
  the best-scored sentences are the answers (``text == context``), scored by the sentence
  extractor (cosine + term overlap).

Offsets. Texts read are slices of the document text (or of the passage text when the document
is unknown to the index), so a span maps back by one addition, and ``doc.text[a.start:a.end] ==
a.text`` holds by construction.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from qa.reading.scoring import AnswerModel, AnswerModelError, Signals, support
from qa.reading.sentences import Sentence, SentenceExtractor, cached_sentences
from qa.reading.spans import ReaderModelError, SpanReader
from qa.text import normalize_answer
from qa.timing import StageClock
from qa.types import Answer, Document, Passage, Result, SpanCandidate

if TYPE_CHECKING:
    from qa.protocols import Encoder, Reader
    from qa.sentence_vectors import SentenceVectors
    from qa.settings import Agreement, Settings

log = logging.getLogger(__name__)

ReadingKind = Literal["reader", "sentence"]

#: Recommended thresholds per reading kind, with how each was chosen.
THRESHOLDS_PATH = Path(__file__).with_name("thresholds.json")
#: Spans the reader proposes per question before scoring and deduplication.
READER_CANDIDATES = 20
#: Mode name of the packaged reader (fine-tuned from all-MiniLM-L6-v2 by ``qa train-reader``).
DEFAULT_READER_NAME = "qa-minilm-l6"


def recommended_threshold(kind: ReadingKind) -> float:
    """The threshold recorded in ``thresholds.json`` for ``kind`` (``reader`` or ``sentence``)."""
    table = json.loads(THRESHOLDS_PATH.read_text(encoding="utf-8"))
    return float(table[kind]["value"])


def reading_kind(mode: str) -> ReadingKind:
    """The thresholds-file entry of an answering mode (``sentence`` or ``reader:<name>``)."""
    return "sentence" if mode == "sentence" else "reader"


def threshold_in_use(settings: Settings, mode: str) -> tuple[float, str]:
    """The threshold ``ask`` applies in ``mode`` under ``settings``, and where it comes from:
    the settings' own value, else the one recorded for the mode's kind in ``thresholds.json``.

    The one place the threshold is resolved: answering, the eval report and the web page's
    slider all ask here.
    """
    if settings.threshold is not None:
        return settings.threshold, "settings (QA_THRESHOLD or an explicit override)"
    kind = reading_kind(mode)
    return recommended_threshold(kind), f"{THRESHOLDS_PATH.name}, entry {kind!r}"


def dedupe(answers: Sequence[Answer]) -> list[Answer]:
    """Group the answers that say the same thing; each group is its best-scored answer, with
    every article that gives it among its ``sources``.

    Two answers are the same when their normalised texts are equal (the same name found in two
    places) or when they overlap in the same document (the same span read through overlapping
    chunks, or "the Agreed Framework" inside "Agreed Framework ..."). An answer overlapping a
    span already kept, in any group, is dropped; one with the text of a kept answer joins that
    answer's sources when it comes from a document not among them yet (two spans of one
    article are one source, not two that agree).

    Returns:
        The kept answers, best score first (ties keep their input order), each with its sources
        best first, the answer's own span first.
    """
    kept: list[Answer] = []
    by_key: dict[str, Answer] = {}
    spans: dict[str, list[tuple[int, int]]] = {}  # doc_id -> every kept span in it
    for answer in sorted(answers, key=lambda a: -a.score):
        if any(a < answer.end and answer.start < b for a, b in spans.get(answer.doc_id, ())):
            continue
        key = answer_key(answer.text)
        group = by_key.get(key)
        if group is None:
            group = replace(answer, sources=[answer.own_source()])
            by_key[key] = group
            kept.append(group)
        elif any(s.doc_id == answer.doc_id for s in group.sources):
            continue
        else:
            group.sources.append(answer.own_source())
        spans.setdefault(answer.doc_id, []).append((answer.start, answer.end))
    return kept


def answer_key(text: str) -> str:
    """What two answers share when they say the same thing: the normalised text."""
    return normalize_answer(text, typographic_punctuation=True) or text


def agreement_score(scores: Sequence[float]) -> float:
    """The noisy-or of the agreeing sources' scores: the probability that at least one is
    right, were they independent (``1 - prod(1 - s)``)."""
    miss = 1.0
    for s in scores:
        miss *= 1.0 - min(max(s, 0.0), 1.0)
    return 1.0 - miss


def select(
    answers: Sequence[Answer], n: int, threshold: float, agreement: Agreement = "off"
) -> list[Answer]:
    """Deduplicate, drop answers scored below ``threshold``, keep the ``n`` best.

    With ``agreement`` ``noisy-or``, an answer given by several articles is scored by
    :func:`agreement_score` of its sources' scores (and the answers ranked again) before the
    threshold applies; ``off`` keeps the best source's score.
    """
    kept = dedupe(answers)
    if agreement == "noisy-or":
        kept = sorted(
            (replace(a, score=agreement_score([s.score for s in a.sources])) for a in kept),
            key=lambda a: -a.score,
        )
    return [a for a in kept if a.score >= threshold][:n]


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


@dataclass(frozen=True)
class _Range:
    """Where one retrieved passage lies in its text (text coordinates) and how it ranked."""

    text: int
    start: int
    end: int
    rank: int  # 1-based retrieval rank
    passage: Passage


def _texts_and_sentences(
    passages: Sequence[Passage], documents: Mapping[str, Document]
) -> tuple[list[_Text], list[tuple[int, int]], list[_Range]]:
    """The texts of ``passages`` and the sentences overlapping each passage, each listed once.

    Returns:
        ``(texts, picks, ranges)`` where each pick is ``(text index, sentence index)`` and
        each range locates one passage in its text, in passage order.
    """
    ranges: list[_Range] = []
    texts: list[_Text] = []
    text_index: dict[tuple[str, int, str], int] = {}
    picks: dict[tuple[int, int], None] = {}  # ordered set: overlapping chunks share sentences
    for p in passages:
        chunk = p.chunk
        doc = documents.get(chunk.doc_id)
        if doc is not None and doc.text[chunk.start : chunk.end] == chunk.text:
            indexed, text, offset = True, doc.text, 0
        else:
            # A passage from outside the index (e.g. an eval set's gold paragraph).
            indexed, text, offset = False, chunk.text, chunk.start
        key = (chunk.doc_id, offset, text)
        if key not in text_index:
            text_index[key] = len(texts)
            texts.append(_Text(chunk.doc_id, p.title, p.path, text, offset, indexed))
        t = text_index[key]
        lo, hi = chunk.start - offset, chunk.end - offset
        ranges.append(_Range(t, lo, hi, len(ranges) + 1, p))
        for i, s in enumerate(texts[t].sentences):
            if s.start < hi and lo < s.end:
                picks[(t, i)] = None
    return texts, list(picks), ranges


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


def _reading_spans(texts: Sequence[_Text], ranges: Sequence[_Range]) -> list[tuple[int, int, int]]:
    """The texts the reader reads: each passage widened to whole sentences, and passages of one
    text that overlap or touch merged, so no answer is cut at a passage boundary.

    Returns:
        ``(text index, start, end)`` in text coordinates, in text then position order.
    """
    widened = sorted((r.text, *texts[r.text].covering(r.start, r.end)) for r in ranges)
    merged: list[tuple[int, int, int]] = []
    for t, a, b in widened:
        if merged and merged[-1][0] == t and a <= merged[-1][2] + 1:
            merged[-1] = (t, merged[-1][1], max(b, merged[-1][2]))
        else:
            merged.append((t, a, b))
    trimmed = []
    for t, a, b in merged:
        text = texts[t].text
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if a < b:
            trimmed.append((t, a, b))
    return trimmed


_PAIRS = {"‘": "’", "“": "”", "(": ")", "[": "]", "«": "»"}
_SYMMETRIC = {'"', "'"}
_TRAILING = ",;:"
# Words whose full stop is part of them, so an answer ending on one keeps it.
_ABBREVIATIONS = frozenset(
    "jr sr inc co corp ltd bros st mr mrs ms dr prof gen col lt sgt rev no vs etc jan feb "
    "mar apr aug sept sep oct nov dec".split()
)


def _full_stop_ends_sentence(inner: str) -> bool:
    """Whether the ``.`` ending ``inner`` closes a sentence rather than an abbreviation.

    ``1994.`` and ``Pyongyang.`` lose it; ``U.S.``, ``Kim Jong-un Jr.``, ``J.`` and ``p.m.``
    keep it.
    """
    word = inner[:-1].rsplit(maxsplit=1)[-1] if inner[:-1].strip() else ""
    if not word or "." in word:
        return False
    if word[-1].isdigit():
        return True
    return len(word) > 1 and word.lower() not in _ABBREVIATIONS


def trim_span(text: str, start: int, end: int) -> tuple[int, int]:
    """Shrink ``text[start:end]`` past edge marks that do not belong to the answer.

    Word pieces split quotation marks and brackets from words, so a span can start or end on
    half a pair (``trivial’``, ``‘gift``) or on a trailing comma. A mark is dropped from an
    edge when its partner is not inside the span, and so is a full stop that ends the sentence
    rather than an abbreviation; the span never grows and never empties.
    """
    while end - start > 1:
        first, last = text[start], text[end - 1]
        inner = text[start:end]
        if first.isspace() or (first in _PAIRS and _PAIRS[first] not in inner[1:]):
            start += 1
        elif last.isspace() or last in _TRAILING:
            end -= 1
        elif last == "." and _full_stop_ends_sentence(inner):
            end -= 1
        elif last in _PAIRS.values() and not any(
            o in inner[:-1] for o, c in _PAIRS.items() if c == last
        ):
            end -= 1
        elif first in _SYMMETRIC and inner.count(first) == 1:
            start += 1
        elif last in _SYMMETRIC and inner.count(last) == 1:
            end -= 1
        else:
            break
    return start, end


@dataclass(frozen=True)
class Candidate:
    """One span the reader proposed, located and scored, with the signals behind its score."""

    answer: Answer
    signals: Signals


def make_reader(settings: Settings, *, runtime: str | None = None) -> SpanReader:
    """The reader ``settings`` name, not loaded yet.

    ``reader_runtime`` ``auto`` reads with the ONNX copy of the packaged reader (no torch at
    question time; precision ``qa.reading.onnx_reader.DEFAULT_PRECISION``), compiled by OpenVINO
    in bfloat16 where the CPU has AMX (``OpenVinoReader``), and with torch for any other reader
    or where ``reader_precision`` asks for bfloat16; ``onnx-int8``, ``onnx-fp32`` and
    ``openvino`` apply to the packaged reader only.

    Args:
        settings: ``reader_model``, ``reader_runtime``, ``reader_precision``,
            ``max_answer_tokens``.
        runtime: Overrides ``settings.reader_runtime``.
    """
    from qa.models.onnx_export import precision_of
    from qa.models.runtime import amx_bf16
    from qa.reading.onnx_reader import DEFAULT_PRECISION, OnnxReader, OpenVinoReader

    runtime = runtime or settings.reader_runtime
    if runtime == "auto":
        onnx = settings.reader_model == "default" and settings.reader_precision != "bf16"
        runtime = ("openvino" if amx_bf16() else f"onnx-{DEFAULT_PRECISION}") if onnx else "torch"
    if runtime == "openvino":
        return OpenVinoReader(max_answer_tokens=settings.max_answer_tokens)
    if runtime.startswith("onnx-"):
        return OnnxReader(precision_of(runtime), max_answer_tokens=settings.max_answer_tokens)
    from qa.reading.transformer import TransformerReader

    return TransformerReader(
        settings.reader_model,
        max_answer_tokens=settings.max_answer_tokens,
        bf16={"auto": None, "fp32": False, "bf16": True}[settings.reader_precision],
    )


class AnswerFinder:
    """Find answers in passages with the transformer reader, or with the sentence extractor.

    The reader loads on first use; if it cannot be loaded, one warning is logged and every
    question is answered by the sentence extractor instead.

    Args:
        embedder: The sentence embedder (scores sentences in both modes).
        settings: ``reader_model``, ``max_answer_tokens``, ``n_answers`` and ``threshold``.
        reader: A reader to use instead of the one ``settings.reader_model`` names (for
            example one already loaded, or being trained).
        answer_model: The model that scores reader spans; the packaged one by default.
    """

    def __init__(
        self,
        embedder: Encoder,
        settings: Settings,
        *,
        reader: Reader | None = None,
        answer_model: AnswerModel | None = None,
    ) -> None:
        self.settings = settings
        self.extractor = SentenceExtractor(embedder)
        self._reader: Reader | None = reader
        if reader is None and settings.reader_model != "none":
            self._reader = make_reader(settings)
        self.answer_model = answer_model or _packaged_answer_model()
        self._lock = threading.Lock()
        self._ready = False

    @property
    def reader(self) -> Reader | None:
        """The loaded reader, or ``None`` when answering with sentences."""
        with self._lock:
            if not self._ready:
                self._ready = True
                if self._reader is not None:
                    self._reader = self._warmed(self._reader)
            return self._reader

    def _warmed(self, reader: Reader) -> Reader | None:
        """``reader`` loaded; torch where the ONNX copy fails under ``auto``; else ``None``."""
        try:
            reader.warm_up()
            return reader
        except ReaderModelError as exc:
            from qa.models.reader_onnx import DEFAULT_PRECISION

            runtime = getattr(reader, "runtime", None)
            if runtime == "openvino" and self.settings.reader_runtime == "auto":
                log.warning("%s Reading with onnxruntime instead.", exc)
                return self._warmed(make_reader(self.settings, runtime=f"onnx-{DEFAULT_PRECISION}"))
            if runtime == "onnx" and self.settings.reader_runtime == "auto":
                log.warning("%s Reading with torch instead.", exc)
                return self._warmed(make_reader(self.settings, runtime="torch"))
            log.warning("%s Answering with the sentence extractor instead.", exc)
            return None

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

    def prepare_reader(self) -> None:
        """Build the ONNX reader into the cache now, where it will read and is not there yet.

        ``qa index`` calls this so that the first question does not wait for the build; a
        failure is only logged here (asking says it again and reads with torch).
        """
        from qa.models.cache import BuildError
        from qa.reading.onnx_reader import OnnxReader, reader_file

        reader = self._reader
        if isinstance(reader, OnnxReader) and reader.model_file is None:
            try:
                reader_file(reader.precision)
            except BuildError as exc:
                log.warning("%s", exc)

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
        kind, candidates = self.candidates(
            question, passages, documents, timings=timings, sentence_vectors=sentence_vectors
        )
        if threshold is None:
            threshold, _ = threshold_in_use(self.settings, kind)
        answers = select(
            [c.answer for c in candidates],
            n,
            threshold,
            # Sentence scores are no probabilities: only reader answers combine theirs.
            agreement=self.settings.agreement if kind == "reader" else "off",
        )
        return Result(
            question=question,
            answers=answers,
            abstained=not answers,
            passages=list(passages),
            mode=self.mode,
        )

    def candidates(
        self,
        question: str,
        passages: Sequence[Passage],
        documents: Mapping[str, Document],
        *,
        timings: dict[str, float] | None = None,
        sentence_vectors: SentenceVectors | None = None,
    ) -> tuple[ReadingKind, list[Candidate]]:
        """Every scored candidate for ``question`` in ``passages``, before deduplication.

        What :meth:`find` selects from, and what ``qa calibrate`` fits the answer model on.

        Returns:
            The reading kind used and the candidates, best score first. In ``sentence`` mode
            the signals hold only the sentence score.
        """
        reader = self.reader
        clock = StageClock(timings)
        texts, picks, ranges = _texts_and_sentences(passages, documents)
        sentences = [texts[t].sentences[i] for t, i in picks]
        scores = self.extractor.score(
            question,
            [s.text for s in sentences],
            vectors=_known_vectors(texts, picks, sentence_vectors),
        )
        clock.lap("sentences")
        sentence_score = dict(zip(picks, scores.tolist(), strict=True))
        if reader is None:
            found = [
                Candidate(
                    texts[t].answer(s.start, s.end, score, (s.start, s.end)),
                    _sentence_signals(score),
                )
                for (t, _), s, score in zip(picks, sentences, scores, strict=True)
            ]
            return "sentence", sorted(found, key=lambda c: -c.answer.score)
        found = self._read(reader, question, texts, ranges, sentence_score)
        clock.lap("reader")
        return "reader", found

    def _read(
        self,
        reader: Reader,
        question: str,
        texts: list[_Text],
        ranges: list[_Range],
        sentence_score: dict[tuple[int, int], float],
    ) -> list[Candidate]:
        """Read the passages and score every span found, best first.

        The text holding the best-ranked passage is read first; where its best answer scores
        at least ``settings.stop_reading_at``, the others are not read at all. Otherwise they
        are read too and the spans of both readings ranked together, which gives exactly the
        spans of one reading of everything (each window is scored on its own).
        """
        spans = _reading_spans(texts, ranges)
        if not spans:
            return []
        contexts = [texts[t].text[a:b] for t, a, b in spans]
        stop_at = self.settings.stop_reading_at
        first = _first_read(spans, ranges) if stop_at < 1 and len(spans) > 1 else None
        if first is None:
            found = reader.read(question, contexts, top_n=READER_CANDIDATES)
            return self._scored(found, spans, texts, ranges, sentence_score)
        found = _read_some(reader, question, contexts, [first])
        early = self._scored(found, spans, texts, ranges, sentence_score)
        if early and early[0].answer.score >= stop_at:
            return early
        rest = [i for i in range(len(spans)) if i != first]
        found = sorted(
            [*found, *_read_some(reader, question, contexts, rest)],
            key=lambda c: (-c.score, c.context_index, c.start),
        )[:READER_CANDIDATES]
        return self._scored(found, spans, texts, ranges, sentence_score)

    def _scored(
        self,
        found: Sequence[SpanCandidate],
        spans: Sequence[tuple[int, int, int]],
        texts: list[_Text],
        ranges: list[_Range],
        sentence_score: dict[tuple[int, int], float],
    ) -> list[Candidate]:
        """``found`` (spans of the reading ``spans``) located in their texts and scored by
        the answer model, best first."""
        if not found:
            return []
        best_lexical = max((r.passage.lexical_score or 0.0 for r in ranges), default=0.0)
        best_prob = max(c.score for c in found)
        best_sentence = max(sentence_score.values(), default=0.0)
        located = []
        for c in found:
            t, base, _ = spans[c.context_index]
            start, end = trim_span(texts[t].text, base + c.start, base + c.end)
            held = [r for r in ranges if r.text == t and r.start < end and start < r.end]
            # A span in the sentence-widened margin of a passage belongs to the nearest one.
            home = min(held or [r for r in ranges if r.text == t], key=lambda r: r.rank)
            located.append((c, t, start, end, home))
        support_of = support(
            [c.score for c, *_ in located],
            [answer_key(c.text) for c, *_ in located],
        )
        signals = [
            Signals(
                span_prob=c.score,
                null_prob=c.null_score,
                sentence_score=max(
                    (sentence_score.get((t, i), 0.0) for i in texts[t].overlapping(start, end)),
                    default=0.0,
                ),
                rank=home.rank,
                dense_score=home.passage.dense_score,
                lexical_share=(home.passage.lexical_score or 0.0) / best_lexical
                if best_lexical > 0
                else 0.0,
                support=extra,
                best_prob=best_prob,
                best_sentence_score=best_sentence,
                words=len(c.text.split()),
            )
            for (c, t, start, end, home), extra in zip(located, support_of, strict=True)
        ]
        probability = self.answer_model.probability(np.stack([s.features() for s in signals]))
        candidates = [
            Candidate(texts[t].answer(start, end, float(p), texts[t].covering(start, end)), signal)
            for (_, t, start, end, _), signal, p in zip(located, signals, probability, strict=True)
        ]
        return sorted(candidates, key=lambda c: -c.answer.score)


def _first_read(spans: Sequence[tuple[int, int, int]], ranges: Sequence[_Range]) -> int | None:
    """Index of the reading span that holds the best-ranked passage; None where none does (a
    passage of nothing but spaces leaves no text to read)."""
    best = min(ranges, key=lambda r: r.rank)
    holding = (
        i for i, (t, a, b) in enumerate(spans) if t == best.text and a < best.end and best.start < b
    )
    return next(holding, None)


def _read_some(
    reader: Reader, question: str, contexts: Sequence[str], which: Sequence[int]
) -> list[SpanCandidate]:
    """The reader's best spans in ``contexts[i]`` for ``i`` in ``which``, their
    ``context_index`` pointing into ``contexts``."""
    found = reader.read(question, [contexts[i] for i in which], top_n=READER_CANDIDATES)
    return [replace(c, context_index=which[c.context_index]) for c in found]


def _packaged_answer_model() -> AnswerModel:
    """The shipped answer model; if it is unusable, say so once and rank by span probability."""
    try:
        return AnswerModel.load()
    except AnswerModelError as exc:
        log.warning("%s; ranking answers by the reader's span probability instead.", exc)
        return AnswerModel.neutral()


def _sentence_signals(score: float) -> Signals:
    """Signals of a sentence answer: only its sentence score is known."""
    return Signals(
        span_prob=0.0,
        null_prob=1.0,
        sentence_score=score,
        rank=0,
        dense_score=None,
        lexical_share=0.0,
        support=0.0,
        best_prob=0.0,
        best_sentence_score=score,
        words=0,
    )
