"""One transformers model load at a time in a process.

``from_pretrained`` swaps process-wide state while it builds a model: torch's default dtype,
and the functions of ``torch.nn.init`` (and of a few ``torch.nn.modules``), which it replaces by
guarded copies that skip loaded weights and puts back afterwards. Two loads in two threads
interleave those swaps, and the later one can "restore" the other's replacements: from then on
``torch.nn.init.normal_`` and its kind leave every loaded weight untouched, in the whole
process. The web server builds the reader and the question encoder on first use, by whichever
threads need them, so its loads can overlap; every load of the project holds ``LOADING``.
"""

from __future__ import annotations

import threading

#: Held around every ``from_pretrained`` and ``SentenceTransformer(...)`` of the project.
#: Re-entrant, so that a load made inside another (a tokenizer inside a model's) is allowed.
LOADING = threading.RLock()
