"""The prefetch thread: order, errors at their position, bounded run-ahead, early close."""

from __future__ import annotations

import threading
import time

import pytest

from stream_trf.pipeline.prefetch import iter_ahead


def test_same_items_in_the_same_order() -> None:
    assert list(iter_ahead(iter(range(1000)), 7)) == list(range(1000))
    assert list(iter_ahead(iter(range(5)), 0)) == list(range(5))


def test_an_error_is_raised_where_it_happened() -> None:
    def items():
        yield 1
        yield 2
        raise ValueError("bad doc")

    got = []
    with pytest.raises(ValueError, match="bad doc"):
        for x in iter_ahead(items(), 4):
            got.append(x)
    assert got == [1, 2]


def test_runs_ahead_by_at_most_the_bound() -> None:
    produced = []

    def items():
        for i in range(100):
            produced.append(i)
            yield i

    it = iter_ahead(items(), 3)
    assert next(it) == 0
    time.sleep(0.3)
    # One taken, three queued, one more waiting to be put: never the whole stream.
    assert 4 <= len(produced) <= 5
    it.close()


def test_closing_early_stops_the_thread() -> None:
    def endless():
        i = 0
        while True:
            yield i
            i += 1

    before = threading.active_count()
    it = iter_ahead(endless(), 2)
    assert [next(it) for _ in range(3)] == [0, 1, 2]
    it.close()
    assert threading.active_count() == before
