"""Evaluation: how far to trust the answers, measured on questions with known answers.

- ``datasets``: the project's JSON Lines sets (``eval/seed.jsonl``) and SQuAD v1.1/v2.0 files.
- ``conversations``: conversation sets (``eval/conversations.jsonl``): turns, and follow-ups
  scored apart from the same questions written out in full.
- ``metrics``: SQuAD EM/F1, sentence hits, retrieval recall and MRR, abstention, latency, and
  the threshold sweep that recommends an abstention threshold.
- ``runner``: asks a set through ``QA`` once at threshold 0 (``qa eval``).
- ``report``: the run folder: predictions, summary, Markdown report, chart.

Submodules are not imported here, so ``import qa`` stays cheap.
"""
