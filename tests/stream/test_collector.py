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


def test_young_objects_are_collected_less_often_and_cycles_still_freed() -> None:
    from stream_trf.stream.collector import YOUNG_THRESHOLD, collect_young_objects_less_often

    class Node:
        def __init__(self) -> None:
            self.me = self

    before = gc.get_threshold()
    collections: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "stop":
            collections.append(info.get("collected", 0))

    try:
        assert collect_young_objects_less_often() == (YOUNG_THRESHOLD, *before[1:])
        gc.collect()
        gc.callbacks.append(count)
        # a buffer's worth of short-lived containers: no collection runs for them
        for _ in range(20):
            batch = [{"i": i, "v": [i]} for i in range(1_000)]
            del batch
        assert collections == []
        # cyclic garbage piling up still triggers one, and it is freed
        for _ in range(YOUNG_THRESHOLD):
            Node()
        assert sum(collections) > 0
    finally:
        if count in gc.callbacks:
            gc.callbacks.remove(count)
        gc.set_threshold(*before)
