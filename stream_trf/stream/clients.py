"""Plain producer/consumer helpers for users and tests: JSONL in, records out, and back."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from ..settings import Settings
from .records import Source

_NOWHERE = Source("", 0, 0)


async def ensure_topics(settings: Settings, topics: Iterable[str], partitions: int) -> None:
    """Create the topics that do not exist yet (idempotent)."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    from .worker import kafka_client_kwargs

    admin = AIOKafkaAdminClient(**kafka_client_kwargs(settings))
    await admin.start()
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
        [settings.input_topic, settings.output_topic, settings.dlq_topic],
        settings.partitions if partitions is None else partitions,
    )


async def produce(
    settings: Settings,
    topic: str,
    values: Iterable[bytes],
    keys: Iterable[bytes | None] | None = None,
    *,
    on_sent: Callable[[int], None] | None = None,
) -> int:
    """Send values (bytes, as they are) and wait for every acknowledgement."""
    from aiokafka import AIOKafkaProducer

    from .worker import kafka_client_kwargs

    producer = AIOKafkaProducer(**kafka_client_kwargs(settings), acks="all", linger_ms=5)
    await producer.start()
    n = 0
    try:
        futures = []
        key_list = list(keys) if keys is not None else None
        for i, value in enumerate(values):
            key = key_list[i] if key_list is not None else None
            futures.append(await producer.send(topic, value=value, key=key))
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
    """Read a topic from the start (JSON values), until ``until(records)`` or a timeout."""
    from aiokafka import AIOKafkaConsumer

    from .worker import kafka_client_kwargs

    consumer = AIOKafkaConsumer(
        topic,
        **kafka_client_kwargs(settings),
        group_id=group_id,
        auto_offset_reset="earliest",
        enable_auto_commit=group_id is not None,
        fetch_max_wait_ms=int(settings.fetch_max_wait * 1000),
    )
    await consumer.start()
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
