"""The fetch loop's hand-off of each record (stream/handoff.py), on faust's own consumer class
and mode's own wait_first; the worker's integration tests run it end to end."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest
from faust.transport.consumer import Consumer
from mode import Service

from stream_trf.stream.handoff import install


class FetchLoop(Service):
    """What the patched method reads of a consumer: mode's stopped / crashed events and
    faust's flow event."""

    def __init__(self) -> None:
        super().__init__()
        self.suspend_flow = asyncio.Event()


def wait_first(consumer: FetchLoop, *coros: Any, timeout: Any = None) -> Any:
    install()
    return Consumer.wait_first(consumer, *coros, timeout=timeout)


def count_tasks(loop: asyncio.AbstractEventLoop) -> list[int]:
    created = [0]

    def factory(loop: Any, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        created[0] += 1
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(factory)
    return created


def test_a_handoff_that_does_not_wait_runs_without_tasks() -> None:
    async def main() -> None:
        consumer = FetchLoop()
        created = count_tasks(asyncio.get_running_loop())
        handed: list[int] = []

        async def handoff(record: int) -> int:
            handed.append(record)
            return record * 2

        suspended = consumer.suspend_flow.wait()
        result = await wait_first(consumer, handoff(21), suspended)
        assert result.results == [42] and not result.stopped
        assert handed == [21]
        assert created[0] == 0
        assert inspect.getcoroutinestate(suspended) == inspect.CORO_CLOSED
        # faust's path, for contrast: a task per awaitable and mode's stopped / crashed events
        await wait_first(consumer, handoff(1), consumer.suspend_flow.wait(), timeout=5)
        assert created[0] >= 4

    asyncio.run(main())


def test_a_handoff_that_waits_goes_on_from_where_it_stopped() -> None:
    async def main() -> None:
        consumer = FetchLoop()
        queue: asyncio.Queue[int] = asyncio.Queue(maxsize=1)
        queue.put_nowait(0)
        steps: list[str] = []

        async def handoff() -> str:
            steps.append("decoded")
            await queue.put(1)  # full: suspends until the reader takes the 0
            steps.append("queued")
            await asyncio.sleep(0)
            return "done"

        async def reader() -> list[int]:
            await asyncio.sleep(0.05)
            return [await queue.get(), await queue.get()]

        read = asyncio.ensure_future(reader())
        result = await wait_first(consumer, handoff(), consumer.suspend_flow.wait())
        assert result.results == ["done"] and not result.stopped
        assert steps == ["decoded", "queued"]
        assert await read == [0, 1]

    asyncio.run(main())


def test_a_waiting_handoff_is_interrupted_when_the_flow_is_suspended() -> None:
    async def main() -> None:
        consumer = FetchLoop()
        queue: asyncio.Queue[int] = asyncio.Queue(maxsize=1)
        queue.put_nowait(0)
        seen: list[str] = []

        async def handoff() -> None:
            try:
                await queue.put(1)
            except asyncio.CancelledError:
                seen.append("cancelled")
                raise
            seen.append("queued")

        async def rebalance() -> None:
            await asyncio.sleep(0.05)
            consumer.suspend_flow.set()

        stepping = asyncio.ensure_future(rebalance())
        suspended = consumer.suspend_flow.wait()
        result = await wait_first(consumer, handoff(), suspended)
        assert result.done == [suspended]
        await asyncio.sleep(0.01)  # the cancelled hand-off runs its except clause
        assert seen == ["cancelled"]
        assert queue.qsize() == 1 and queue.get_nowait() == 0
        await stepping

    asyncio.run(main())


@pytest.mark.parametrize("when", ["at once", "after waiting"])
def test_a_handoff_that_fails_raises(when: str) -> None:
    async def main() -> None:
        consumer = FetchLoop()

        async def handoff() -> None:
            if when == "after waiting":
                await asyncio.sleep(0.01)
            raise ValueError("undecodable")

        suspended = consumer.suspend_flow.wait()
        with pytest.raises(ValueError, match="undecodable"):
            await wait_first(consumer, handoff(), suspended)

    asyncio.run(main())


def test_while_the_flow_is_suspended_faust_decides() -> None:
    async def main() -> None:
        consumer = FetchLoop()
        consumer.suspend_flow.set()
        created = count_tasks(asyncio.get_running_loop())
        gate = asyncio.Event()
        ran: list[str] = []

        async def handoff() -> None:
            await gate.wait()  # flow control holds the hand-off during a rebalance
            ran.append("handed")

        suspended = consumer.suspend_flow.wait()
        result = await wait_first(consumer, handoff(), suspended)
        assert result.done == [suspended]
        assert created[0] >= 4 and ran == []

    asyncio.run(main())


def test_other_waits_of_the_consumer_are_faust_s() -> None:
    async def main() -> None:
        consumer = FetchLoop()
        created = count_tasks(asyncio.get_running_loop())

        async def value() -> int:
            return 5

        other = asyncio.Event()
        result = await wait_first(consumer, value(), other.wait())  # not the flow's event
        assert 5 in result.results
        assert created[0] >= 4

    asyncio.run(main())
