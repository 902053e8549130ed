"""Long-lived objects leave the collector's walk (stream/collector.py)."""

from __future__ import annotations

import gc

from stream_trf.stream.collector import freeze_survivors


def test_survivors_are_frozen_and_later_garbage_is_still_collected() -> None:
    class Node:
        def __init__(self) -> None:
            self.me = self  # a cycle: only the collector frees it

    kept = [Node() for _ in range(100)]
    try:
        frozen = freeze_survivors("test")
        # (objects frozen may die by reference counting any time after, in any thread: the
        # count is the one at the freeze, not an invariant)
        assert frozen >= 100
        walked = {id(o) for o in gc.get_objects()}  # the permanent generation is not walked
        assert not walked & {id(n) for n in kept}
        collected = []
        gc.callbacks.append(lambda phase, info: collected.append(info.get("collected", 0)))
        try:
            for _ in range(50):
                Node()  # garbage cycles made after the freeze
            gc.collect()
        finally:
            gc.callbacks.pop()
        assert sum(collected) >= 50
        assert all(n.me is n for n in kept)
    finally:
        gc.unfreeze()
