"""Plain producer/consumer helpers for users and tests: JSONL in, records out, and back."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from ..settings import Settings
from .kafka import BrokerUnreachable, kafka_client_kwargs, unreachable
from .records import Headers, Source
from .undecodable import UndecodableBatch
from .undecodable import install as guard_undecodable_batches

_NOWHERE = Source("", 0, 0)


async def _start(client: Any, settings: Settings) -> None:
    """Start a client, or stop it again and say what to do when no broker answers (no
    traceback, no "Unclosed" warning)."""
    from aiokafka.errors import KafkaConnectionError

    try:
        await client.start()
    except KafkaConnectionError as err:
        with contextlib.suppress(Exception):
            await client.stop()
        raise BrokerUnreachable(unreachable(settings, err)) from err


async def ensure_topics(settings: Settings, topics: Iterable[str], partitions: int) -> None:
    """Create the topics that do not exist yet (idempotent)."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    admin = AIOKafkaAdminClient(**kafka_client_kwargs(settings))
    try:
        await admin.start()
    except Exception as err:
        with contextlib.suppress(Exception):
            await admin.close()
        raise BrokerUnreachable(unreachable(settings, err)) from err
    try:
        existing = set(await admin.list_topics())
        new = [
            NewTopic(t, num_partitions=partitions, replication_factor=1)
            for t in topics
            if t not in existing
        ]
        if new:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(new)
    finally:
        await admin.close()


async def ensure_worker_topics(settings: Settings, partitions: int | None = None) -> None:
    """The input, output and dead-letter topics a worker reads and writes."""
    await ensure_topics(
        settings,
        [settings.topics.input_topic, settings.topics.output_topic, settings.topics.dlq_topic],
        settings.topics.partitions if partitions is None else partitions,
    )


async def produce(
    settings: Settings,
    topic: str,
    values: Iterable[bytes | None],
    keys: Iterable[bytes | None] | None = None,
    *,
    on_sent: Callable[[int], None] | None = None,
    compression: str = "none",
    headers: Headers = (),
) -> int:
    """Send values (bytes, as they are; None for a tombstone) and wait for every
    acknowledgement. ``compression``: one of :data:`~stream_trf.stream.kafka.CODECS`."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        **kafka_client_kwargs(settings),
        acks="all",
        linger_ms=5,
        compression_type=None if compression == "none" else compression,
    )
    await _start(producer, settings)
    n = 0
    try:
        futures = []
        key_list = list(keys) if keys is not None else None
        for i, value in enumerate(values):
            key = key_list[i] if key_list is not None else None
            futures.append(
                await producer.send(topic, value=value, key=key, headers=list(headers) or None)
            )
            n += 1
            if len(futures) >= 500:
                await asyncio.gather(*futures)
                if on_sent:
                    on_sent(len(futures))
                futures = []
        await asyncio.gather(*futures)
        if on_sent and futures:
            on_sent(len(futures))
    finally:
        await producer.stop()
    return n


async def consume(
    settings: Settings,
    topic: str,
    *,
    until: Callable[[list[dict[str, Any]]], bool] | None = None,
    timeout: float = 60.0,
    idle_timeout: float | None = None,
    on_record: Callable[[dict[str, Any]], None] | None = None,
    group_id: str | None = None,
) -> list[dict[str, Any]]:
    """Read a topic from the start (JSON values), until ``until(records)`` or a timeout.

    Every codec is read; a record batch that cannot be decoded comes back as one record
    ``{"_undecodable": {...}}`` instead of stopping the read."""
    from aiokafka import AIOKafkaConsumer

    guard_undecodable_batches()
    consumer = AIOKafkaConsumer(
        topic,
        **kafka_client_kwargs(settings),
        group_id=group_id,
        auto_offset_reset="earliest",
        enable_auto_commit=group_id is not None,
        fetch_max_wait_ms=int(settings.batching.fetch_max_wait * 1000),
        isolation_level="read_committed",
    )
    await _start(consumer, settings)
    records: list[dict[str, Any]] = []
    t0 = last = time.monotonic()
    try:
        while time.monotonic() - t0 < timeout:
            batch = await consumer.getmany(timeout_ms=200, max_records=1000)
            for msgs in batch.values():
                for m in msgs:
                    rec = _decode(m.value)
                    rec["_kafka"] = {
                        "partition": m.partition,
                        "offset": m.offset,
                        "key": m.key,
                        "headers": list(m.headers or ()),
                        "timestamp_ms": m.timestamp,
                        "received_ms": time.time() * 1000,
                    }
                    records.append(rec)
                    last = time.monotonic()
                    if on_record:
                        on_record(rec)
            if until is not None and until(records):
                break
            if idle_timeout is not None and time.monotonic() - last > idle_timeout:
                break
    finally:
        await consumer.stop()
    return records


def _decode(value: bytes | None) -> dict[str, Any]:
    """A record's JSON object; anything else is wrapped, never a crash."""
    if isinstance(value, UndecodableBatch):
        return {
            "_undecodable": {
                "reason": value.reason,
                "first_offset": value.first_offset,
                "last_offset": value.last_offset,
                "bytes": len(value),
            }
        }
    try:
        obj = orjson.loads(value) if value else None
    except orjson.JSONDecodeError:
        obj = None
    if isinstance(obj, dict):
        return obj
    from .records import dead_letter

    return {"_not_a_json_object": dead_letter(value, _NOWHERE, "", "")["raw"]}


def duplicates(records: list[dict[str, Any]]) -> int:
    """Records that repeat an earlier record's source (same input topic, partition, offset).
    Records without a source (not written by a worker) are not counted."""
    seen: set[tuple[Any, Any, Any]] = set()
    dup = 0
    for r in records:
        src = r.get("source")
        if not isinstance(src, dict):
            continue
        key = (src.get("topic"), src.get("partition"), src.get("offset"))
        if key in seen:
            dup += 1
        seen.add(key)
    return dup
