"""The agent's intake (stream/intake.py) on a real faust channel queue (mode's ThrowableQueue),
with an app that answers as faust's does; the worker reading through it end to end, stopping
and rebalancing is tests/integration/test_worker_e2e.py and test_worker_failover.py."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from mode.utils.queues import FlowControlEvent, ThrowableQueue

from stream_trf.stream.intake import chunks


class App:
    def __init__(self) -> None:
        self.flow_control = FlowControlEvent()
        self.flow_control.resume()
        self.consumer_generation_id = 1
        self.tracked: list[Any] = []
        self.consumer = SimpleNamespace(track_message=self.tracked.append)
        self.topics = SimpleNamespace(acking_topics={"in"})


def _event(offset: int, generation: int = 1) -> Any:
    return SimpleNamespace(
        message=SimpleNamespace(topic="in", offset=offset, generation_id=generation, tracked=False)
    )


def _channel(app: App) -> Any:
    queue: ThrowableQueue[Any] = ThrowableQueue(flow_control=app.flow_control, maxsize=1000)
    return SimpleNamespace(queue=queue, app=app)


async def _take(channel: Any, max_batch: int, within: float, n: int) -> list[list[Any]]:
    out = []
    it = chunks(channel, max_batch, within)
    for _ in range(n):
        out.append(await asyncio.wait_for(it.__anext__(), timeout=5))
    return out


def test_chunks_take_what_is_queued_up_to_max_batch_and_track_each_event() -> None:
    async def run() -> None:
        app = App()
        channel = _channel(app)
        for i in range(25):
            channel.queue.put_nowait(_event(i))
        got = await _take(channel, 10, 0.0, 3)
        assert [[e.message.offset for e in c] for c in got] == [
            list(range(10)), list(range(10, 20)), list(range(20, 25))
        ]  # fmt: skip
        assert [m.offset for m in app.tracked] == list(range(25))
        assert all(m.tracked for m in app.tracked)

    asyncio.run(run())


def test_a_chunk_waits_within_seconds_for_more_then_goes() -> None:
    async def run() -> None:
        app = App()
        channel = _channel(app)
        loop = asyncio.get_running_loop()
        channel.queue.put_nowait(_event(0))
        loop.call_later(0.05, channel.queue.put_nowait, _event(1))
        started = loop.time()
        (chunk,) = await _take(channel, 10, 0.3, 1)
        waited = loop.time() - started
        assert [e.message.offset for e in chunk] == [0, 1]
        assert 0.25 <= waited < 1.0  # it waited out ``within`` for a third that never came

    asyncio.run(run())


def test_events_from_before_a_rebalance_are_dropped_unprocessed() -> None:
    async def run() -> None:
        app = App()
        channel = _channel(app)
        channel.queue.put_nowait(_event(0, generation=0))  # fetched before the rebalance
        channel.queue.put_nowait(_event(1))
        (chunk,) = await _take(channel, 10, 0.0, 1)
        assert [e.message.offset for e in chunk] == [1]
        assert [m.offset for m in app.tracked] == [1]

    asyncio.run(run())


def test_max_batch_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_batch"):
        asyncio.run(_take(_channel(App()), 0, 0.0, 1))
