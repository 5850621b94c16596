"""Stage timing: the seconds each pipeline stage spends, summed by the thread that runs it.

The ground floor: sources time their own decoding and the pipeline times the rest, so both
import it from here.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator


@dataclass
class StageTimer:
    """Total and count of one stage's work, in seconds."""

    total: float = 0.0
    count: int = 0

    def add(self, seconds: float) -> None:
        self.total += seconds
        self.count += 1

    @property
    def mean_ms(self) -> float:
        return 1000 * self.total / self.count if self.count else 0.0

    @contextmanager
    def time(self) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(time.perf_counter() - start)
