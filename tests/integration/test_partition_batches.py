"""A buffer's outputs as one record batch per partition (stream/batches.py), through the real
broker with aiokafka's own producer and consumer: every record lands on the partition that
``send`` would have chosen, in order, with its key and headers, and a record over the request
limit is left to be sent alone."""

from __future__ import annotations

import asyncio
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from stream_trf.settings import Settings
from stream_trf.stream import clients
from stream_trf.stream.batches import PartitionBatches

PARTITIONS = 3


async def _round_trip(url: list[str], topic: str, records: list, limit: int) -> tuple[list, list]:
    producer = AIOKafkaProducer(bootstrap_servers=url, acks="all", max_batch_size=4096)
    await producer.start()
    try:
        batches = PartitionBatches(lambda: producer, limit)
        futures = await batches.send(topic, records)
        sent = [f for f in futures if f is not None]
        await asyncio.wait_for(asyncio.gather(*sent), timeout=60)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=url, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    got = []
    try:
        want = sum(f is not None for f in futures)
        while len(got) < want:
            batch = await asyncio.wait_for(consumer.getmany(timeout_ms=1000), timeout=30)
            for messages in batch.values():
                got.extend(messages)
    finally:
        await consumer.stop()
    return futures, got


def test_batches_land_where_send_would_put_them_in_order_with_keys_and_headers(broker) -> None:
    topic = f"batches-{uuid.uuid4().hex[:8]}"
    settings = Settings(broker=broker.url)
    asyncio.run(clients.ensure_topics(settings, [topic], PARTITIONS))
    records = [
        (f"doc-{i}".encode(), b'{"i": %d, "pad": "%s"}' % (i, b"x" * 300), [("n", str(i).encode())])
        for i in range(300)
    ]
    too_big = (b"big", b"y" * 50_000, [])
    futures, got = asyncio.run(
        _round_trip(settings.bootstrap_servers(), topic, [*records, too_big], 20_000)
    )

    assert futures[-1] is None  # over the limit: left to be sent alone
    assert all(f is not None for f in futures[:-1])
    assert len({id(f) for f in futures[:-1]}) < len(records)  # records share batch futures
    partitioner = DefaultPartitioner()
    by_key = {m.key: m for m in got}
    assert sorted(by_key) == sorted(k for k, _, _ in records)  # each once, nothing else
    for key, value, headers in records:
        m = by_key[key]
        assert m.partition == partitioner(key, list(range(PARTITIONS)), list(range(PARTITIONS)))
        assert m.value == value and [(k, bytes(v)) for k, v in m.headers] == headers
    for p in range(PARTITIONS):  # a partition's records in the order they were given
        numbers = [int(m.headers[0][1]) for m in sorted(got, key=lambda m: m.offset)
                   if m.partition == p]  # fmt: skip
        assert numbers == sorted(numbers) and numbers
