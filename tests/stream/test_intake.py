"""The agent's intake (stream/intake.py): chunks taken from it, what is admitted and tracked,
and the fetch loop that fills it a fetched batch at a time, on a consumer that answers as
faust's does (mode's flow control is real). The worker reading through it end to end,
stopping, rebalancing and being killed is tests/integration/test_worker_e2e.py and
test_worker_failover.py."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP
from mode.utils.queues import FlowControlEvent

from stream_trf.stream.intake import Intake, drain_in_batches

TOPIC = "in"


class App:
    def __init__(self) -> None:
        self.flow_control = FlowControlEvent()
        self.flow_control.resume()
        self.consumer_generation_id = 1
        self.tracked: list[Any] = []
        self.acked: list[Any] = []
        self.consumer = SimpleNamespace(track_message=self.tracked.append, ack=self.acked.append)
        self.topics = SimpleNamespace(acking_topics={TOPIC}, acks_enabled_for=lambda t: True)
        self.monitor = SimpleNamespace(track_tp_end_offset=lambda tp, end: None)
        self.should_stop = False


def _message(offset: int, generation: int = 1, topic: str = TOPIC, partition: int = 0) -> Any:
    return SimpleNamespace(
        topic=topic,
        partition=partition,
        offset=offset,
        generation_id=generation,
        tracked=False,
        tp=TP(topic, partition),
    )


async def _take(intake: Intake, max_batch: int, within: float, n: int) -> list[list[Any]]:
    out = []
    it = intake.chunks(max_batch, within)
    for _ in range(n):
        out.append(await asyncio.wait_for(it.__anext__(), timeout=5))
    return out


def test_chunks_take_what_is_there_up_to_max_batch_and_track_each_message() -> None:
    async def run() -> None:
        app = App()
        intake = Intake(app, TOPIC, maxsize=100)
        intake.put([_message(i) for i in range(25)])
        got = await _take(intake, 10, 0.0, 3)
        assert [[m.offset for m in c] for c in got] == [
            list(range(10)), list(range(10, 20)), list(range(20, 25))
        ]  # fmt: skip
        assert [m.offset for m in app.tracked] == list(range(25))
        assert all(m.tracked for m in app.tracked)
        intake.ack(got[0])
        assert app.acked == got[0]

    asyncio.run(run())


def test_a_chunk_waits_within_seconds_for_more_then_goes() -> None:
    async def run() -> None:
        app = App()
        intake = Intake(app, TOPIC, maxsize=100)
        loop = asyncio.get_running_loop()
        intake.put([_message(0)])
        loop.call_later(0.05, intake.put, [_message(1)])
        started = loop.time()
        (chunk,) = await _take(intake, 10, 0.3, 1)
        waited = loop.time() - started
        assert [m.offset for m in chunk] == [0, 1]
        assert 0.25 <= waited < 1.0  # it waited out ``within`` for a third that never came

    asyncio.run(run())


def test_messages_from_before_a_rebalance_are_dropped_unprocessed() -> None:
    async def run() -> None:
        app = App()
        intake = Intake(app, TOPIC, maxsize=100)
        intake.put([_message(0, generation=0), _message(1)])  # the first fetched before it
        (chunk,) = await _take(intake, 10, 0.0, 1)
        assert [m.offset for m in chunk] == [1]
        assert [m.offset for m in app.tracked] == [1]

    asyncio.run(run())


def test_flow_control_clears_the_intake_and_a_suspended_flow_admits_nothing() -> None:
    async def run() -> None:
        app = App()
        intake = Intake(app, TOPIC, maxsize=3)
        intake.put([_message(i) for i in range(5)])
        assert len(intake) == 5 and not intake._space.is_set()  # full: the fetch loop waits
        app.flow_control.suspend()
        app.flow_control.clear()  # what faust does when partitions are revoked
        assert len(intake) == 0 and intake._space.is_set()
        intake.put([_message(5)])
        it = intake.chunks(10, 0.0)
        with pytest.raises(asyncio.TimeoutError):  # taken, but not admitted while suspended
            await asyncio.wait_for(it.__anext__(), timeout=0.2)
        assert app.tracked == [] and len(intake) == 0

    asyncio.run(run())


def test_max_batch_and_maxsize_must_be_positive() -> None:
    with pytest.raises(ValueError, match="maxsize"):
        Intake(App(), TOPIC, maxsize=0)
    with pytest.raises(ValueError, match="max_batch"):
        asyncio.run(_take(Intake(App(), TOPIC, maxsize=1), 0, 0.0, 1))


class Consumer:
    """What the fetch loop uses of faust's consumer; ``batches`` are what each fetch returns,
    the fetcher stops after the last one."""

    def __init__(self, app: App, batches: list[dict[TP, list[Any]]]) -> None:
        self.app = app
        self.batches = list(batches)
        self.fetcher = SimpleNamespace(_stopped=asyncio.Event())
        self._stopped = asyncio.Event()
        self._read_offset: dict[TP, int | None] = defaultdict(lambda: None)
        self._commit_every = None
        self._n_acked = 0
        self._buffered_partitions: set[TP] = set()
        self.suspend_flow = asyncio.Event()
        self.flow_active = True
        self.should_stop = False
        self.diag = SimpleNamespace(set_flag=lambda f: None, unset_flag=lambda f: None)
        self.gaps: list[tuple[TP, int, int]] = []
        self.delivered: list[Any] = []
        self.consumer_stopped_errors = (RuntimeError,)
        self.transport = SimpleNamespace(app=app)

    async def _wait_next_records(self, timeout: float) -> tuple[Any, Any]:
        if not self.batches:
            self.fetcher._stopped.set()
            return {}, None
        return self.batches.pop(0), None

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def highwater(self, tp: TP) -> int:
        return 0

    def _to_message(self, tp: TP, record: Any) -> Any:
        return _message(record.offset, topic=tp.topic, partition=tp.partition)

    async def _add_gap(self, tp: TP, start: int, end: int) -> None:
        self.gaps.append((tp, start, end))

    async def callback(self, message: Any) -> None:
        self.delivered.append(message)

    async def wait_first(self, *coros: Any) -> None:
        _, pending = await asyncio.wait(
            [asyncio.ensure_future(c) for c in coros], return_when=asyncio.FIRST_COMPLETED
        )
        for task in pending:
            task.cancel()


def _records(*offsets: int) -> list[Any]:
    return [SimpleNamespace(offset=o) for o in offsets]


def test_the_fetch_loop_puts_each_fetched_batch_in_order_skipping_what_was_read() -> None:
    async def run() -> None:
        app = App()
        intake = Intake(app, TOPIC, maxsize=100)
        p0, p1, other = TP(TOPIC, 0), TP(TOPIC, 1), TP("elsewhere", 0)
        consumer = Consumer(
            app,
            [
                {p0: _records(0, 1, 2), p1: _records(0), other: _records(7)},
                # 1 again (read already; faust keeps the last offset read, which after a seek
                # is the next to read, so that one is handed over), then a gap 4-5
                {p0: _records(1, 3, 6)},
            ],
        )
        await drain_in_batches(consumer, consumer.fetcher, intake)
        assert [(m.partition, m.offset) for m in intake.messages] == [
            (0, 0), (0, 1), (0, 2), (1, 0), (0, 3), (0, 6)
        ]  # fmt: skip
        assert [m.offset for m in consumer.delivered] == [7]  # another topic: faust's way
        assert consumer.gaps == [(p0, 4, 6)]
        assert consumer._read_offset[p0] == 6 and consumer._read_offset[p1] == 0

    asyncio.run(run())


def test_a_full_intake_holds_the_fetch_loop_until_the_agent_takes() -> None:
    async def run() -> None:
        app = App()
        intake = Intake(app, TOPIC, maxsize=2)
        tp = TP(TOPIC, 0)
        consumer = Consumer(app, [{tp: _records(0, 1)}, {tp: _records(2)}])
        loop = asyncio.create_task(drain_in_batches(consumer, consumer.fetcher, intake))
        await asyncio.sleep(0.05)
        assert [m.offset for m in intake.messages] == [0, 1]  # full: the second batch waits
        (chunk,) = await _take(intake, 1, 0.0, 1)
        await asyncio.wait_for(loop, timeout=5)
        assert [m.offset for m in chunk] == [0]
        assert [m.offset for m in intake.messages] == [1, 2]

    asyncio.run(run())


def test_a_batch_waiting_for_room_when_the_flow_is_suspended_is_dropped() -> None:
    async def run() -> None:
        app = App()
        intake = Intake(app, TOPIC, maxsize=1)
        tp = TP(TOPIC, 0)
        consumer = Consumer(app, [{tp: _records(0)}, {tp: _records(1)}])
        loop = asyncio.create_task(drain_in_batches(consumer, consumer.fetcher, intake))
        await asyncio.sleep(0.05)
        consumer.flow_active = False  # a rebalance: faust stops the flow...
        consumer.suspend_flow.set()
        await asyncio.wait_for(loop, timeout=5)
        assert [m.offset for m in intake.messages] == [0]  # ...and the waiting batch is not put
        assert consumer._read_offset[tp] == 0  # nor counted as read

    asyncio.run(run())


def test_a_batch_fetched_before_a_rebalance_that_ended_while_it_waited_is_dropped() -> None:
    """The whole rebalance passed while the batch waited for room (the intake cleared, a new
    generation, the flow active again): it is not put, and the read offsets the seek set are
    left alone, so that the partitions are read again from the committed offsets."""

    async def run() -> None:
        app = App()
        intake = Intake(app, TOPIC, maxsize=1)
        tp = TP(TOPIC, 0)
        consumer = Consumer(app, [{tp: _records(0)}, {tp: _records(1, 2)}])
        loop = asyncio.create_task(drain_in_batches(consumer, consumer.fetcher, intake))
        await asyncio.sleep(0.05)
        app.consumer_generation_id = 2
        consumer._read_offset[tp] = 0  # the seek to the committed offset
        app.flow_control.clear()  # the intake cleared: room, and the loop goes on
        await asyncio.wait_for(loop, timeout=5)
        assert len(intake) == 0
        assert consumer._read_offset[tp] == 0

    asyncio.run(run())
