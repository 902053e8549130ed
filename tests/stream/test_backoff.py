from __future__ import annotations

import random

from stream_trf.stream.backoff import Backoff


def test_delays_grow_to_the_cap_without_jitter() -> None:
    b = Backoff(first=0.5, cap=4.0, jitter=False)
    assert [b.delay() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    b.reset()
    assert b.delay() == 0.5


def test_jitter_stays_between_half_and_the_whole_step() -> None:
    b = Backoff(first=1.0, cap=8.0, _rng=random.Random(7))
    steps = [1.0, 2.0, 4.0, 8.0, 8.0]
    delays = [b.delay() for _ in steps]
    assert all(s / 2 <= d <= s for d, s in zip(delays, steps))
    assert len(set(delays)) == len(delays)  # spread, not the same instant for everyone
