"""The lag probe against the real embedded broker: offsets produced, committed and fetched by
real Kafka clients, read back as lag (no worker here; tests/integration/test_operations.py runs
one)."""

from __future__ import annotations

import asyncio
import uuid

from stream_trf.settings import Settings
from stream_trf.stream import clients
from stream_trf.stream.broker import free_port
from stream_trf.stream.kafka import kafka_client_kwargs
from stream_trf.stream.lag_probe import LagProbe


async def _produce(settings: Settings, topic: str, per_partition: dict[int, int]) -> None:
    """One record per request, so that every record is a batch of its own."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(**kafka_client_kwargs(settings), acks="all")
    await producer.start()
    try:
        for partition, n in per_partition.items():
            for i in range(n):
                await (await producer.send(topic, b"x%d" % i, partition=partition))
    finally:
        await producer.stop()


async def _commit(settings: Settings, topic: str, offsets: dict[int, int]) -> None:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        **kafka_client_kwargs(settings), group_id=settings.group_id, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tps = {p: TopicPartition(topic, p) for p in offsets}
        consumer.assign(list(tps.values()))
        await consumer.commit({tps[p]: o for p, o in offsets.items()})
    finally:
        await consumer.stop()


def _settings(broker_url: str) -> Settings:
    tag = uuid.uuid4().hex[:8]
    return Settings(broker=broker_url, input_topic=f"lag-{tag}", group_id=f"g-{tag}")


def test_the_probe_reads_every_partitions_lag(broker) -> None:
    settings = _settings(broker.url)

    async def scenario():
        await clients.ensure_topics(settings, [settings.input_topic], 3)
        await _produce(settings, settings.input_topic, {0: 7, 1: 4, 2: 0})
        probe = LagProbe(settings)
        try:
            before = await probe.read()
            await _commit(settings, settings.input_topic, {0: 5, 1: 4})
            after = await probe.read(own={0: (None, 6)})
        finally:
            await probe.close()
        return before, after

    before, after = asyncio.run(scenario())
    assert before.error is None and after.error is None
    # nothing committed yet: the whole log is lag (the group starts at the beginning)
    assert [(p.partition, p.end, p.committed, p.lag) for p in before.partitions] == [
        (0, 7, None, 7),
        (1, 4, None, 4),
        (2, 0, None, 0),
    ]
    assert before.total == 11 and before.owned == ()
    assert [(p.end, p.committed, p.lag) for p in after.partitions] == [
        (7, 5, 2),
        (4, 4, 0),
        (0, None, 0),
    ]
    assert after.owned == (0,) and after.partitions[0].position == 6
    assert (after.topic, after.group) == (settings.input_topic, settings.group_id)


def test_a_fetch_high_watermark_corrects_a_low_end_offset(broker) -> None:
    """Records sent together make one batch; the broker's ListOffsets may answer with that
    batch's start + 1 (the embedded broker does). A consumer's fetch knows the true end."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    settings = _settings(broker.url)
    tp = TopicPartition(settings.input_topic, 0)

    async def scenario():
        await clients.ensure_topics(settings, [settings.input_topic], 1)
        await clients.produce(settings, settings.input_topic, [b"a", b"b", b"c", b"d", b"e"])
        consumer = AIOKafkaConsumer(**kafka_client_kwargs(settings), enable_auto_commit=False)
        await consumer.start()
        try:
            consumer.assign([tp])
            consumer.seek(tp, 0)
            fetched = await consumer.getmany(tp, timeout_ms=5000)
            highwater = consumer.highwater(tp)
        finally:
            await consumer.stop()
        probe = LagProbe(settings)
        try:
            alone = await probe.read()
            with_fetch = await probe.read(own={0: (highwater, None)})
        finally:
            await probe.close()
        return len(fetched[tp]), highwater, alone, with_fetch

    n, highwater, alone, with_fetch = asyncio.run(scenario())
    assert n == 5 and highwater == 5
    assert alone.partitions[0].end <= 5  # a lower bound
    assert with_fetch.partitions[0].end == 5 and with_fetch.partitions[0].lag == 5


def test_a_missing_topic_or_broker_is_a_failed_reading_not_an_exception(broker) -> None:
    settings = _settings(broker.url)
    nowhere = settings.with_(broker=f"kafka://127.0.0.1:{free_port()}")

    async def scenario():
        results = []
        for s in (settings, nowhere):
            probe = LagProbe(s)
            try:
                results.append(await probe.read())
            finally:
                await probe.close()
        return results

    missing, unreachable = asyncio.run(scenario())
    assert missing.error is not None and "does not exist" in missing.error
    assert unreachable.error is not None and not unreachable.partitions
    assert missing.to_json()["total"] is None
