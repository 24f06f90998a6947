"""Reading: extract answer spans from retrieved passages.

- ``sentences``: exact-offset sentence splitting and the sentence extractor (the fallback that
  answers with the best-matching sentence, and the scorer that picks what the reader reads).
- ``answers``: ``AnswerFinder``, which turns passages into ranked, deduplicated, located answers
  or an abstention; the recommended thresholds live in ``thresholds.json``.
- ``spans``: the reading loop every runtime shares (windows from ``windows``, the span search);
  ``onnx_reader`` (the default, no torch) and ``transformer`` (torch) compute the logits.
- ``scoring``: the answer model that turns a span's signals into the probability it is right.

Training the reader lives in ``qa.training``. Submodules are not imported here, so ``import
qa`` stays cheap.
"""
