"""Seconds per stage, for the ``timings`` dictionaries of search, ask and build."""

from __future__ import annotations

import time


class StageClock:
    """Adds the seconds between laps to ``sink[stage]`` (does nothing when ``sink`` is None).

    Args:
        sink: The caller's ``timings`` dictionary, or None.
    """

    def __init__(self, sink: dict[str, float] | None) -> None:
        self.sink = sink
        self.last = time.perf_counter()

    def lap(self, stage: str) -> None:
        """Charge the time since the last lap (or construction) to ``stage``."""
        now = time.perf_counter()
        self.add(stage, now - self.last)
        self.last = now

    def add(self, stage: str, seconds: float) -> None:
        """Charge ``seconds`` measured elsewhere to ``stage``."""
        if self.sink is not None:
            self.sink[stage] = self.sink.get(stage, 0.0) + seconds
