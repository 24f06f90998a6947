"""The index road, ``corpus/`` documents to ``index/``, one stage a module.

``build.build_index`` runs the stages in order:

- ``plan``: what changed since the live index (added, changed, removed, reused documents);
- ``chunking``, then ``embed``: chunk and sentence vectors in one encoding pass
  (the model: ``qa.embedding``; the pooling: ``qa.sentence_vectors``);
- ``dense``: the FAISS index, exact or HNSW;
- lexical: BM25 over the chunks (``qa.lexical``, whose tokeniser asking uses too);
- ``persist``: the build folder written, swapped in, old builds pruned; loading it back.

What an index is (``Index``, ``BuildReport``, the problems loading one meets) is ``qa.store``,
which the asking road reads without importing this package.
"""
