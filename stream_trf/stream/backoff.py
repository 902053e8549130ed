"""Exponential backoff with jitter: the one retry schedule of the worker and its clients.

Jitter spreads the retries of many workers that lost the broker at the same moment, so they do
not all come back in the same instant ("equal jitter": each delay lies between half and all of
the exponential step, so it still grows)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """``delay()`` gives the next wait in seconds: ``first``, then ×``factor`` up to ``cap``."""

    first: float = 0.25
    cap: float = 30.0
    factor: float = 2.0
    jitter: bool = True
    attempts: int = 0
    _rng: random.Random = field(default_factory=random.Random, repr=False)

    def delay(self) -> float:
        step = min(self.cap, self.first * self.factor**self.attempts)
        self.attempts += 1
        return self._rng.uniform(step / 2, step) if self.jitter else step

    def reset(self) -> None:
        self.attempts = 0
