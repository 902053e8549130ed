"""The feeder merges what arrives while the model computes, delivers in order, and pushes back.

Pure asyncio: ``compute`` and ``deliver`` are gated by events the test opens. The real worker
runs it through the embedded broker in tests/integration/test_worker_e2e.py."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from stream_trf.stream.feeder import Feeder


class Gates:
    """compute/deliver that wait until the test opens their batch's gate."""

    def __init__(self) -> None:
        self.computed: list[list[int]] = []
        self.delivered: list[list[int]] = []
        self.compute_gates: list[asyncio.Event] = []
        self.deliver_gates: list[asyncio.Event] = []
        self.fail_on: int | None = None

    async def compute(self, batch: list[int]) -> int:
        gate = asyncio.Event()
        self.compute_gates.append(gate)
        await gate.wait()
        if self.fail_on is not None and self.fail_on in batch:
            raise RuntimeError(f"model failed on {self.fail_on}")
        self.computed.append(batch)
        return sum(batch)

    async def deliver(self, batch: list[int], result: int) -> None:
        assert result == sum(batch)
        gate = asyncio.Event()
        self.deliver_gates.append(gate)
        await gate.wait()
        self.delivered.append(batch)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), timeout=10))


def feeder(g: Gates, max_batch: int = 8, in_flight: int = 2) -> Feeder[int, int]:
    return Feeder(g.compute, g.deliver, max_batch=max_batch, in_flight=in_flight)


def test_what_arrives_while_the_model_computes_becomes_one_batch() -> None:
    async def test() -> None:
        g = Gates()
        f = feeder(g)
        await f.add([1, 2])  # the model is free: computes at once
        await settle()
        await f.add([3])
        await f.add([4, 5])  # both wait while [1, 2] computes
        await settle()
        assert list(f.sizes) == [2] and f.waiting == [3, 4, 5]
        g.compute_gates[0].set()
        await settle()
        assert list(f.sizes) == [2, 3]  # dispatched the moment the model was free
        g.compute_gates[1].set()
        for gate in g.deliver_gates:
            gate.set()
        await settle()
        g.deliver_gates[-1].set()
        await f.stop()
        assert g.computed == [[1, 2], [3, 4, 5]]
        assert g.delivered == [[1, 2], [3, 4, 5]]

    run(test)


def test_a_batch_is_delivered_only_after_the_one_before_it() -> None:
    async def test() -> None:
        g = Gates()
        f = feeder(g)
        await f.add([1])
        await settle()
        await f.add([2])
        g.compute_gates[0].set()
        await settle()  # [1] is being delivered (its gate shut); [2] computes
        g.compute_gates[1].set()
        await settle()
        assert g.computed == [[1], [2]] and g.delivered == []
        assert len(g.deliver_gates) == 1  # [2] waits for [1] before it starts delivering
        g.deliver_gates[0].set()
        await settle()
        g.deliver_gates[1].set()
        await f.stop()
        assert g.delivered == [[1], [2]]

    run(test)


def test_no_more_than_in_flight_batches_are_undelivered() -> None:
    async def test() -> None:
        g = Gates()
        f = feeder(g, in_flight=2)
        for item in (1, 2, 3):
            await f.add([item])
            await settle()
            g.compute_gates[-1].set()
            await settle()
        # [1] and [2] computed, neither delivered: [3] waits although the model is free
        assert g.computed == [[1], [2]] and f.waiting == [3] and not f.computing
        g.deliver_gates[0].set()
        await settle()
        assert list(f.sizes) == [1, 1, 1]  # a delivery made room: [3] went in
        g.compute_gates[-1].set()
        for _ in range(3):
            await settle()
            for gate in g.deliver_gates:
                gate.set()
        await f.stop()
        assert g.delivered == [[1], [2], [3]]

    run(test)


def test_add_waits_while_a_full_batch_waits_and_batches_hold_at_most_max_batch() -> None:
    async def test() -> None:
        g = Gates()
        f = feeder(g, max_batch=4)
        await f.add([0])
        await settle()
        blocked = asyncio.ensure_future(f.add(list(range(1, 11))))  # 10 wait: more than 4
        await settle()
        assert not blocked.done()
        g.compute_gates[0].set()
        await settle()
        assert list(f.sizes) == [1, 4] and f.waiting == [5, 6, 7, 8, 9, 10]
        assert not blocked.done()  # still a full batch waiting
        g.deliver_gates[0].set()
        g.compute_gates[1].set()
        await settle()
        assert list(f.sizes) == [1, 4, 4] and f.waiting == [9, 10]
        await blocked  # room again
        for _ in range(4):
            for gate in g.compute_gates + g.deliver_gates:
                gate.set()
            await settle()
        await f.stop()
        assert [x for b in g.delivered for x in b] == list(range(11))
        assert max(len(b) for b in g.computed) == 4

    run(test)


def test_a_failed_batch_stops_dispatching_and_is_raised_in_order() -> None:
    async def test() -> None:
        g = Gates()
        g.fail_on = 2
        f = feeder(g)
        await f.add([1])
        await settle()
        await f.add([2])
        g.compute_gates[0].set()
        await settle()  # [1] is delivering, [2] computing
        g.compute_gates[1].set()  # ... and fails
        g.deliver_gates[0].set()
        await settle()
        with pytest.raises(RuntimeError, match="model failed on 2"):
            await f.add([3])
        await settle()
        assert f.failed and f.waiting == [3] and list(f.sizes) == [1, 1]
        assert g.delivered == [[1]]

    run(test)


def test_stop_finishes_dispatched_batches_and_leaves_waiting_records() -> None:
    async def test() -> None:
        g = Gates()
        f = feeder(g)
        await f.add([1, 2])
        await settle()
        await f.add([3])
        stopping = asyncio.ensure_future(f.stop())
        await settle()
        assert not stopping.done() and f.waiting == []
        g.compute_gates[0].set()
        await settle()
        g.deliver_gates[0].set()
        await stopping
        assert g.delivered == [[1, 2]] and list(f.sizes) == [2]  # [3] never dispatched

    run(test)


@pytest.mark.parametrize("bad", [{"max_batch": 0}, {"in_flight": 0}])
def test_bad_sizes_are_refused(bad: dict[str, Any]) -> None:
    g = Gates()
    kwargs: dict[str, Any] = {"max_batch": 4, "in_flight": 2, **bad}
    with pytest.raises(ValueError, match="must be positive"):
        Feeder(g.compute, g.deliver, **kwargs)
