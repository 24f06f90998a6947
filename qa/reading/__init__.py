"""Reading: extract answer spans from retrieved passages.

- ``sentences``: exact-offset sentence splitting and the sentence extractor (the fallback that
  answers with the best-matching sentence, and the scorer that picks what the reader reads).
- ``answers``: ``AnswerFinder``, which turns passages into ranked, deduplicated, located answers
  or an abstention; the recommended thresholds live in ``thresholds.json``.
- ``transformer``: the ``*ForQuestionAnswering`` span reader; ``windows``: its tokenised windows;
  ``train``: fine-tuning the packaged reader.

Submodules are not imported here, so ``import qa`` stays cheap (torch loads with the reader).
"""
