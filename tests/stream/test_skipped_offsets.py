"""Offsets after a partition's last record (stream/skipped_offsets.py), against faust's own
books: its ``ack`` and the ``_new_offset`` its commits take, on aiokafka's own assignment
state. The worker committing the end of a partition that ends in transaction markers, through
a real broker and a librdkafka transactional producer, is
tests/integration/test_real_producers.py."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.consumer.subscription_state import Assignment
from aiokafka.structs import TopicPartition
from faust.transport.consumer import Consumer
from faust.types import TP
from intervaltree import IntervalTree

from stream_trf.stream.intake import Intake, drain_in_batches
from stream_trf.stream.skipped_offsets import SkippedOffsets

TOPIC = "in"
P0 = TP(TOPIC, 0)


class Books:
    """faust's consumer as far as acknowledgements and commits go: its own ``ack`` and
    ``_new_offset`` on its own structures; aiokafka's assignment holds the positions."""

    ack = Consumer.ack
    _new_offset = Consumer._new_offset

    def __init__(self, assignment: Assignment | None) -> None:
        self.app = SimpleNamespace(topics=SimpleNamespace(acks_enabled_for=lambda t: True))
        self._acked: dict[TP, list[int]] = defaultdict(list)
        self._acked_index: dict[TP, set[int]] = defaultdict(set)
        self._gap: dict[TP, IntervalTree] = defaultdict(IntervalTree)
        self._committed_offset: dict[TP, int | None] = defaultdict(lambda: None)
        self._read_offset: dict[TP, int | None] = defaultdict(lambda: None)
        self._unacked_messages: set[Any] = set()
        self._waiting_for_ack = None
        self._n_acked = 0
        subscription = SimpleNamespace(assignment=assignment)
        self._thread = SimpleNamespace(
            _consumer=SimpleNamespace(_subscription=SimpleNamespace(subscription=subscription))
        )

    def commit(self) -> int | None:
        """What faust's commit would commit now, committed."""
        offset = self._new_offset(P0)
        if offset is not None and (self._committed_offset[P0] or -1) < offset:
            self._committed_offset[P0] = offset
            return offset
        return None


@dataclass(eq=False)
class Message:
    offset: int
    topic: str = TOPIC
    tp: TP = P0
    acked: bool = False
    generation_id: int = 1
    tracked: bool = False


def _message(offset: int) -> Message:
    return Message(offset)


def _books(position: int | None = None) -> Books:
    assignment = Assignment([TopicPartition(TOPIC, 0), TopicPartition("elsewhere", 0)])
    if position is not None:
        assignment.state_value(TopicPartition(TOPIC, 0)).reset_to(position)
        assignment.state_value(TopicPartition("elsewhere", 0)).reset_to(50)
    return Books(assignment)


def _move(books: Books, position: int) -> None:
    books._thread._consumer._subscription.subscription.assignment.state_value(
        TopicPartition(TOPIC, 0)
    ).consumed_to(position)


def _read(books: Books, skipped: SkippedOffsets, last: int, position: int) -> None:
    """A fetch whose records end at ``last`` and that leaves the position at ``position``."""
    books._read_offset[P0] = last
    skipped.read({P0: last})
    _move(books, position)
    skipped.note(books, TOPIC)


def test_a_trailing_run_is_committed_once_the_record_before_it_is_acknowledged() -> None:
    async def run() -> None:
        books = _books(position=0)
        skipped = SkippedOffsets()
        _read(books, skipped, last=4, position=7)  # records 0-4, then markers at 5 and 6
        for offset in range(4):
            books.ack(_message(offset))
        skipped.settle(books)
        # record 4 is not acknowledged: faust, which tolerates one missing offset after the
        # committed one, must not be handed the markers yet
        assert books.commit() == 4
        assert books.commit() is None
        books.ack(_message(4))
        skipped.settle(books)
        assert books.commit() == 7
        assert not skipped and books._read_offset[P0] == 6

    asyncio.run(run())


def test_without_the_run_faust_would_stop_short_and_with_it_early_would_skip_a_record() -> None:
    """The two failures the run's timing avoids, shown on faust's own books."""

    async def run() -> None:
        books = _books(position=0)
        for offset in range(5):
            books.ack(_message(offset))
        assert books.commit() == 5  # the log ends at 7: lag 2 for ever
        books = _books(position=0)
        books._committed_offset[P0] = 4
        books._acked[P0].append(5)  # a marker marked before record 4 is acknowledged...
        books._acked_index[P0].add(5)
        assert books.commit() == 6  # ...is committed past it

    asyncio.run(run())


def test_a_run_with_nothing_read_since_the_rebalance_is_committed_at_once() -> None:
    """A worker started where an earlier one left a partition one short of its end: the seek
    set the read offset to the committed one, and the fetch moved past a marker."""

    async def run() -> None:
        books = _books(position=21)
        books._committed_offset[P0] = 21
        books._read_offset[P0] = 21
        skipped = SkippedOffsets()
        _move(books, 22)
        skipped.note(books, TOPIC)
        assert books.commit() == 22

    asyncio.run(run())


def test_runs_of_consecutive_fetches_merge_and_records_after_them_commit_through() -> None:
    async def run() -> None:
        books = _books(position=0)
        skipped = SkippedOffsets()
        _read(books, skipped, last=2, position=4)
        _move(books, 6)  # a fetch of markers only
        skipped.note(books, TOPIC)
        assert [(r.first, r.end) for r in skipped.runs[P0]] == [(3, 6)]
        # the next records, 6-8 and (after an aborted transaction at 9-10) 11: faust's gap
        # starts after the run, as the read offset says
        books._read_offset[P0] = 8
        skipped.read({P0: 8})
        for offset in (0, 1, 2, 6, 7, 8, 11):
            books.ack(_message(offset))
        books._gap[P0].addi(9, 12)  # what the fetch loop notes for 11 after 8 (faust's rule)
        assert books.commit() == 3
        skipped.settle(books)
        assert books.commit() == 12
        assert books.commit() is None

    asyncio.run(run())


def test_a_partition_the_fetch_was_not_for_or_whose_records_were_left_is_not_noted() -> None:
    """Records a fetch returned for a partition faust no longer reads are left unread, though
    aiokafka's position moved past them: they must not pass for offsets holding nothing."""

    async def run() -> None:
        books = _books(position=0)
        skipped = SkippedOffsets()
        books._read_offset[P0] = 4
        skipped.read({P0: 4})
        _move(books, 9)
        skipped.note(books, TOPIC, active=set())
        skipped.note(books, TOPIC, active=None, dropped={P0})
        assert not skipped and books._read_offset[P0] == 4
        skipped.note(books, TOPIC, active={P0})
        assert [(r.first, r.end) for r in skipped.runs[P0]] == [(5, 9)]

    asyncio.run(run())


def test_a_run_already_committed_past_is_dropped() -> None:
    async def run() -> None:
        books = _books(position=0)
        skipped = SkippedOffsets()
        _read(books, skipped, last=1, position=3)
        books._committed_offset[P0] = 5  # a seek elsewhere committed further
        skipped.settle(books)
        assert not skipped and books._acked[P0] == []

    asyncio.run(run())


def test_a_rebalance_clears_the_runs() -> None:
    async def run() -> None:
        books = _books(position=0)
        skipped = SkippedOffsets()
        _read(books, skipped, last=1, position=3)
        assert skipped
        skipped.clear()
        assert not skipped and skipped.read_end == {}

    asyncio.run(run())


def test_when_aiokafka_keeps_positions_elsewhere_commits_stay_as_faust_makes_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    books = Books(None)
    books._thread = SimpleNamespace()  # no consumer where the positions were
    skipped = SkippedOffsets()
    with caplog.at_level(logging.WARNING):
        skipped.note(books, TOPIC)
        skipped.note(books, TOPIC)
    assert not skipped
    assert [r.message.count("aiokafka's fetch positions") for r in caplog.records] == [1]


def test_the_fetch_loop_notes_the_offsets_past_each_partitions_last_record() -> None:
    """The intake's fetch loop on faust's books: records 0-2, then a fetch of nothing but a
    marker; acknowledging the records through the intake commits the marker too."""

    async def run() -> None:
        books = _books(position=0)
        fetches = [{P0: [SimpleNamespace(offset=o) for o in range(3)]}, {}]
        app = SimpleNamespace(
            flow_control=SimpleNamespace(manage_queue=lambda q: None, is_active=lambda: True),
            consumer_generation_id=1,
            consumer=books,
            topics=SimpleNamespace(acking_topics=set(), acks_enabled_for=lambda t: True),
            monitor=SimpleNamespace(track_tp_end_offset=lambda tp, end: None),
            should_stop=False,
        )
        intake = Intake(app, TOPIC, maxsize=100)
        stopped = asyncio.Event()

        async def wait_next_records(timeout: float) -> tuple[Any, Any]:
            if not fetches:
                stopped.set()
                return {}, None
            records = fetches.pop(0)
            _move(books, 3 if records else 4)
            return records, None

        async def sleep(seconds: float) -> None:
            await asyncio.sleep(seconds)

        consumer: Any = books
        consumer.app = app
        consumer._stopped = stopped
        consumer._wait_next_records = wait_next_records
        consumer.sleep = sleep
        consumer._commit_every = None
        consumer._buffered_partitions = set()
        consumer.flow_active = True
        consumer.should_stop = False
        consumer.diag = SimpleNamespace(set_flag=lambda f: None, unset_flag=lambda f: None)
        consumer.highwater = lambda tp: 4
        consumer._to_message = lambda tp, r: _message(r.offset)
        consumer.consumer_stopped_errors = (RuntimeError,)
        consumer.transport = SimpleNamespace(app=app)
        await drain_in_batches(consumer, SimpleNamespace(_stopped=stopped), intake)
        assert [m.offset for m in intake.messages] == [0, 1, 2]
        assert books.commit() is None
        intake.ack(list(intake.messages))
        assert books.commit() == 4

    asyncio.run(run())
