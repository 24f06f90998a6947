"""Passages that several articles carry word for word: read once, cited from every article.

News corpora hold copies (a wire story run by two outlets, a page saved twice: the BBC set has
98 byte-identical pairs). Retrieval ranks copies side by side with equal scores, so without care
the reader would spend two of its few passages on the same words, and the second copy would
count as a second article agreeing with the first. Here the copies are set apart before reading
(:func:`set_apart`: the reader reads the next distinct passage instead) and, once the answers
are found, each copy's article is cited as a source of the answer read in its twin
(:func:`cite_copies`), at its own offsets, its words checked there. The answer's score is the
one reading gave: a copy adds a source, not confidence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from qa.types import Answer, Document, Passage, Source


def set_apart(passages: Sequence[Passage]) -> tuple[list[Passage], dict[str, list[Passage]]]:
    """The passages whose words no better-ranked passage has, in their order; and per kept
    passage (by chunk id) the later passages with exactly its words."""
    first: dict[str, Passage] = {}
    distinct: list[Passage] = []
    copies: dict[str, list[Passage]] = {}
    for passage in passages:
        kept = first.get(passage.chunk.text)
        if kept is None:
            first[passage.chunk.text] = passage
            distinct.append(passage)
        else:
            copies.setdefault(kept.chunk.chunk_id, []).append(passage)
    return distinct, copies


def cite_copies(
    answers: Sequence[Answer],
    read: Sequence[Passage],
    copies: Mapping[str, Sequence[Passage]],
    documents: Mapping[str, Document],
) -> None:
    """Add to each answer's sources the copies of the passages it was read in.

    A source lying within a read passage that has copies gains, right after it, the same span
    in each copy's article (shifted by where the copy's chunk starts), when that article is
    not among the sources yet, is in ``documents`` and holds the source's words there. Its
    context is the source's sentence where the copy holds that too, else the copy's chunk.
    """
    if not copies:
        return
    for answer in answers:
        cited = {s.doc_id for s in answer.sources}
        sources: list[Source] = []
        for source in answer.sources:
            sources.append(source)
            for passage in read:
                chunk = passage.chunk
                if chunk.doc_id != source.doc_id or not (
                    chunk.start <= source.start and source.end <= chunk.end
                ):
                    continue
                for copy in copies.get(chunk.chunk_id, ()):
                    cited_copy = _copied(source, copy, copy.chunk.start - chunk.start, documents)
                    if cited_copy is not None and cited_copy.doc_id not in cited:
                        cited.add(cited_copy.doc_id)
                        sources.append(cited_copy)
        answer.sources = sources


def _copied(
    source: Source, copy: Passage, shift: int, documents: Mapping[str, Document]
) -> Source | None:
    """``source`` found again in ``copy``'s article, ``shift`` characters on; None where that
    article is unknown or does not hold the source's words there."""
    doc = documents.get(copy.chunk.doc_id)
    start, end = source.start + shift, source.end + shift
    if doc is None or doc.text[start:end] != source.text:
        return None
    context, context_start = source.context, source.context_start + shift
    if doc.text[context_start : context_start + len(context)] != context:
        context, context_start = copy.chunk.text, copy.chunk.start
    return Source(
        doc_id=doc.doc_id,
        title=copy.title,
        path=copy.path,
        text=source.text,
        start=start,
        end=end,
        context=context,
        context_start=context_start,
        score=source.score,
    )
