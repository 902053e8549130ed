"""Reads the input topic's consumer lag from the broker, off the hot path.

A client of its own, not faust's consumer: its requests never queue behind the worker's
fetches, it sees every partition (also those no worker owns), and faust's consumer thread is
left alone. It is a plain consumer that names the group but never subscribes or joins: it only
asks the group coordinator for the committed offsets (one small OffsetFetch per partition) and
the partition leaders for the log-end offsets (ListOffsets; the log-start offsets too while a
partition has no committed offset). From faust's consumer it reads only what that consumer
already knows: its assignment, its position and the high watermark of its last fetch (see
``monitor/lag.py`` for why both ends count).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from ..monitor.lag import LagReading, partition_lag
from ..settings import Settings

log = logging.getLogger("stream_trf.lag")

# Longest one reading may take: a broker that does not answer makes a failed reading, not a
# timer that never returns.
READ_TIMEOUT_S = 10.0

# Per owned partition: (high watermark of the last fetch, next fetch position), None = unknown.
OwnOffsets = dict[int, tuple[int | None, int | None]]


class LagProbe:
    """``await probe.read(own)`` → the lag of every partition of ``settings.topics.input_topic``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topic = settings.topics.input_topic
        self.group = settings.topics.group_id
        self._consumer: Any = None
        self._last_error: str | None = None

    async def _client(self) -> Any:
        if self._consumer is None:
            from aiokafka import AIOKafkaConsumer

            from .kafka import kafka_client_kwargs

            consumer = AIOKafkaConsumer(
                **kafka_client_kwargs(self.settings),
                group_id=self.group,  # to ask for the group's offsets; it never joins
                enable_auto_commit=False,
                client_id=f"stream-trf-lag-{self.group}",
                request_timeout_ms=int(READ_TIMEOUT_S * 1000),
            )
            await consumer.start()
            self._consumer = consumer
        return self._consumer

    async def read(self, own: OwnOffsets | None = None) -> LagReading:
        """One reading; a failure is a reading with ``error`` set (and logged once per cause)."""
        at = time.time()
        try:
            reading = await asyncio.wait_for(self._read(own or {}, at), READ_TIMEOUT_S)
        except Exception as err:  # the broker is away, the topic is missing, a timeout...
            error = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
            if error != self._last_error:
                log.warning("cannot read the consumer lag of %s: %s", self.topic, error)
            self._last_error = error
            await self.close()  # a fresh client next time
            return LagReading(self.topic, self.group, at, error=error)
        if self._last_error is not None:
            log.info("consumer lag of %s readable again", self.topic)
            self._last_error = None
        return reading

    async def _read(self, own: OwnOffsets, at: float) -> LagReading:
        from aiokafka import TopicPartition

        consumer = await self._client()
        partitions = consumer.partitions_for_topic(self.topic)
        if partitions is None:  # not in the cached metadata yet
            await consumer.topics()
            partitions = consumer.partitions_for_topic(self.topic)
        if not partitions:
            raise LookupError(f"topic {self.topic} does not exist (yet)")
        tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        # Committed first, ends after: a record produced in between counts as lag, never a
        # commit as negative lag.
        committed = await asyncio.gather(*(consumer.committed(tp) for tp in tps))
        never = [tp for tp, done in zip(tps, committed) if done is None]
        starts = await consumer.beginning_offsets(never) if never else {}
        ends = await consumer.end_offsets(tps)
        rows = []
        for tp, done in zip(tps, committed):
            highwater, position = own.get(tp.partition, (None, None))
            rows.append(
                partition_lag(
                    tp.partition,
                    ends=(ends.get(tp), highwater),
                    committed=done,
                    start=starts.get(tp),
                    owned=tp.partition in own,
                    position=position,
                )
            )
        return LagReading(self.topic, self.group, at, tuple(rows))

    async def close(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            try:
                await consumer.stop()
            except Exception as err:  # closing a broken client must not raise
                log.debug("closing the lag client: %s", err)


async def own_offsets(consumer: Any, topic: str, timeout: float = 2.0) -> OwnOffsets:
    """What faust's consumer knows of its own partitions of ``topic``: the high watermark of
    its last fetch and its next fetch position. Read-only; an unknown value is None (the
    partition was just assigned or revoked, or the consumer is stopping)."""
    out: OwnOffsets = {}
    try:
        assigned = [tp for tp in consumer.assignment() if tp.topic == topic]
    except Exception:  # not started, or stopping
        return out
    for tp in assigned:
        try:
            highwater = consumer.highwater(tp)
        except Exception:
            highwater = None
        try:
            # through faust's consumer thread, which owns the aiokafka consumer
            position = await asyncio.wait_for(consumer.position(tp), timeout)
        except Exception:
            position = None
        out[tp.partition] = (highwater, position)
    return out


__all__ = ["READ_TIMEOUT_S", "LagProbe", "OwnOffsets", "own_offsets"]
