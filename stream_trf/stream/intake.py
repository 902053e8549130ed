"""The input topic's records handed to the agent a fetched batch at a time.

faust hands every fetched record on by itself: its fetch loop (``Consumer._drain_messages``)
makes it a message, passes it through the conductor (a lock, flow control, the producer's
buffer, a decode), makes an event and puts that in the agent's channel, record by record, and
the agent's stream then takes each event through its own machinery. On a fast device that
per-record Python was most of the worker's event loop. Here the fetch loop is replaced for the
app that carries an :class:`Intake`: each batch the consumer fetches goes into the intake in
one step, and the agent takes chunks of it (:meth:`Intake.chunks`). faust keeps everything
else: the consumer group, assignment, offsets, commits of acknowledged records only, the web
server, the agent's lifecycle. Records of any other topic take faust's own path.

What faust did with each record on the way is kept. Read offsets advance per partition (a
record at or below the last one read is skipped; a gap is recorded for the commit). A message
is tracked as pending acknowledgement when the agent takes it, so that a stopping worker waits
for it before its last commit, and acknowledged with :meth:`Intake.ack` once its output is
published (at least once). A rebalance suspends the flow and clears the intake (faust's flow
control manages it as it manages channel queues); a message fetched before the latest
rebalance is dropped unprocessed when taken (the partition's owner reads it again from the
committed offset). A full intake stops the fetch loop until the agent has taken enough.
Offsets the fetch passed over after a partition's last record (a transaction's markers) are
committed too, once that record is acknowledged (``stream/skipped_offsets.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Iterable
from typing import Any

from .skipped_offsets import SkippedOffsets

log = logging.getLogger(__name__)

# How often a chunk that is not full looks for more messages, until ``within`` has passed.
POLL_SECONDS = 0.005

_INSTALLED = "_stream_trf_batch_intake"


class Intake:
    """Messages of one topic fetched and not yet taken by the agent, at most ``maxsize`` (the
    fetch loop waits while it is full)."""

    def __init__(self, app: Any, topic: str, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be at least 1, got {maxsize}")
        self.app = app
        self.topic = topic
        self.maxsize = maxsize
        self.messages: deque[Any] = deque()
        self._arrived = asyncio.Event()
        self._space = asyncio.Event()
        self._space.set()
        self.skipped = SkippedOffsets()
        app._stream_trf_intake = self
        app.flow_control.manage_queue(self)  # cleared with the channels on a rebalance

    def __len__(self) -> int:
        return len(self.messages)

    def put(self, messages: list[Any]) -> None:
        """A fetched batch's messages, in order, for the agent."""
        if messages:
            self.messages.extend(messages)
            self._arrived.set()
            if len(self.messages) >= self.maxsize:
                self._space.clear()

    async def wait_for_space(self) -> None:
        await self._space.wait()

    def clear(self) -> None:
        """Drop what the agent has not taken (a rebalance: flow control calls this)."""
        self.messages.clear()
        self.skipped.clear()
        self._space.set()

    async def chunks(self, max_batch: int, within: float) -> AsyncIterator[list[Any]]:
        """Lists of messages: at least one, at most ``max_batch``; after the first, what is
        already here, then what arrives within ``within`` seconds of it."""
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        admit = Admission(self.app, self.topic)
        loop = asyncio.get_running_loop()
        messages = self.messages
        while True:
            chunk: list[Any] = []
            while not chunk:
                while not messages:
                    self._arrived.clear()
                    await self._arrived.wait()
                chunk = admit(self._take(max_batch))
            deadline = loop.time() + within
            while len(chunk) < max_batch:
                if messages:
                    chunk += admit(self._take(max_batch - len(chunk)))
                    continue
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                await asyncio.sleep(min(remaining, POLL_SECONDS))
            yield chunk

    def _take(self, n: int) -> list[Any]:
        messages = self.messages
        taken = [messages.popleft() for _ in range(min(n, len(messages)))]
        if len(messages) < self.maxsize:
            self._space.set()
        return taken

    def ack(self, messages: Iterable[Any]) -> None:
        """These messages' outputs are published: their offsets may be committed."""
        consumer = self.app.consumer
        ack = consumer.ack
        for message in messages:
            ack(message)
        if self.skipped:
            self.skipped.settle(consumer)


class Admission:
    """What faust's stream does with each event it takes, done here for a list of messages: one
    fetched before the latest rebalance (another generation, or the flow suspended) is
    dropped unprocessed; any other is tracked as pending acknowledgement."""

    def __init__(self, app: Any, topic: str) -> None:
        self.app = app
        self.acking = topic in app.topics.acking_topics

    def __call__(self, messages: list[Any]) -> list[Any]:
        app = self.app
        if not app.flow_control.is_active():
            return []
        generation = app.consumer_generation_id
        admitted = [m for m in messages if m.generation_id == generation]
        if self.acking:
            track = app.consumer.track_message
            for message in admitted:
                if not message.tracked:
                    message.tracked = True
                    track(message)
        return admitted


def install() -> None:
    """Patch faust's consumer class (idempotent): an app with an :class:`Intake` has its
    fetched batches handed over by :func:`drain_in_batches`; any other app is untouched."""
    from faust.transport.consumer import Consumer

    if getattr(Consumer, _INSTALLED, False):
        return
    original = Consumer._drain_messages

    async def _drain_messages(self: Any, fetcher: Any) -> None:
        intake = getattr(self.app, "_stream_trf_intake", None)
        if intake is None:
            await original(self, fetcher)
        else:
            await drain_in_batches(self, fetcher, intake)

    Consumer._drain_messages = _drain_messages  # type: ignore[method-assign]
    setattr(Consumer, _INSTALLED, True)


async def drain_in_batches(consumer: Any, fetcher: Any, intake: Intake) -> None:
    """faust's fetch loop (``Consumer._drain_messages``), a fetched batch at a time: until the
    consumer or the fetcher stops, fetch, skip what was read already, note gaps, commit when
    ``broker_commit_every`` acknowledgements are due, put the batch's messages of the intake's
    topic into it (other topics: one by one, as faust does) and note the offsets the fetch
    passed over after each partition's last record."""
    from faust.transport.consumer import CONSUMER_FETCHING

    app = consumer.app
    consumer_stopped = consumer._stopped.is_set
    fetcher_stopped = fetcher._stopped.is_set
    read_offset = consumer._read_offset
    to_message = consumer._to_message
    acks_enabled_for = app.topics.acks_enabled_for
    commit_every = consumer._commit_every
    topic = intake.topic
    try:
        while not (consumer_stopped() or fetcher_stopped()):
            consumer.diag.set_flag(CONSUMER_FETCHING)
            records, active = await consumer._wait_next_records(1.0)
            await consumer.sleep(0)
            if records is None or consumer.should_stop:
                consumer.diag.unset_flag(CONSUMER_FETCHING)
                continue
            if not consumer.flow_active:  # a rebalance began: back to the committed offsets
                try:
                    await consumer.perform_seek()
                except Exception as err:
                    log.warning("exception performing seek when flow not active %r", err)
                continue
            generation = app.consumer_generation_id
            mine: list[Any] = []
            others: list[Any] = []
            last_read: dict[Any, int] = {}
            dropped: set[Any] = set()  # fetched, then left: the position is past them
            for tp, batch in records.items():
                if not (active is None or tp in active or tp in consumer._buffered_partitions):
                    dropped.add(tp)
                    continue
                app.monitor.track_tp_end_offset(tp, consumer.highwater(tp))
                into = mine if tp.topic == topic else others
                r_offset = read_offset[tp]
                for record in batch:
                    offset = record.offset
                    if r_offset is not None and offset < r_offset:
                        continue  # read already (faust's rule: the offset last read may come again)
                    if r_offset and offset - r_offset > 1 and acks_enabled_for(tp.topic):
                        await consumer._add_gap(tp, r_offset + 1, offset)
                    into.append(to_message(tp, record))
                    r_offset = offset
                if r_offset is not None and into is mine:
                    last_read[tp] = r_offset
            if commit_every is not None and consumer._n_acked >= commit_every:
                consumer._n_acked = 0
                await consumer.commit()
            if mine and len(intake) >= intake.maxsize:
                await consumer.wait_first(intake.wait_for_space(), consumer.suspend_flow.wait())
            if not consumer.flow_active or app.consumer_generation_id != generation:
                # a rebalance began while this batch waited: the partitions' owners read it
                # again from the committed offsets (and the seek set the read offsets)
                continue
            intake.put(mine)
            read_offset.update(last_read)
            intake.skipped.read(last_read)
            intake.skipped.note(consumer, topic, active, dropped)
            for message in others:  # one by one, as faust does
                await consumer.wait_first(consumer.callback(message), consumer.suspend_flow.wait())
                if not consumer.flow_active:
                    break
                read_offset[message.tp] = message.offset
            consumer.diag.unset_flag(CONSUMER_FETCHING)
    except consumer.consumer_stopped_errors:
        if consumer.transport.app.should_stop:
            log.info("Broker stopped consumer, shutting down...")
            return
        raise
    except asyncio.CancelledError:
        if consumer.transport.app.should_stop:
            log.info("Consumer shutting down for user cancel.")
            return
        raise
    finally:
        consumer.diag.unset_flag(CONSUMER_FETCHING)
