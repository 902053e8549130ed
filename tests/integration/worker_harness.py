"""Real broker, real worker processes: helpers for the integration tests (no mocked Kafka)."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import orjson

from stream_trf.settings import Settings
from stream_trf.stream import clients

# Group timing for tests: Tansu holds a JoinGroup for half the session timeout.
FAST_GROUP = {"session_timeout": 4.0, "heartbeat_interval": 1.0, "rebalance_timeout": 10.0}


def fresh_settings(broker_url: str, model: str, **overrides: Any) -> Settings:
    tag = uuid.uuid4().hex[:8]
    base = Settings(
        broker=broker_url,
        model=model,
        input_topic=f"in-{tag}",
        output_topic=f"out-{tag}",
        dlq_topic=f"dlq-{tag}",
        group_id=f"g-{tag}",
        partitions=4,
        processes=1,  # one worker per process unless a test asks for more
        **FAST_GROUP,
    )
    return base.with_(**overrides)


def create_topics(settings: Settings) -> None:
    asyncio.run(
        clients.ensure_topics(
            settings,
            [settings.input_topic, settings.output_topic, settings.dlq_topic],
            settings.partitions,
        )
    )


def produce_json(settings: Settings, records: list[dict[str, Any]]) -> None:
    values = [orjson.dumps(r) for r in records]
    keys = [str(r.get("id")).encode() for r in records]
    asyncio.run(clients.produce(settings, settings.input_topic, values, keys))


def produce_raw(settings: Settings, values: list[bytes]) -> None:
    asyncio.run(clients.produce(settings, settings.input_topic, values))


def consume_until(
    settings: Settings, topic: str, predicate, timeout: float = 120.0
) -> list[dict[str, Any]]:
    return asyncio.run(clients.consume(settings, topic, until=predicate, timeout=timeout))


def ids_of(records: list[dict[str, Any]]) -> set[str]:
    return {r["id"] for r in records if "id" in r}


def assert_partitions_split(records: list[dict[str, Any]], partitions: int) -> None:
    """Two workers, each with its own partitions: none served by both, all served."""
    by_worker: dict[str, set[int]] = {}
    for r in records:
        by_worker.setdefault(r["worker"], set()).add(r["source"]["partition"])
    assert len(by_worker) == 2, "both workers in the group must get partitions"
    p_a, p_b = by_worker.values()
    assert not (p_a & p_b) and p_a | p_b == set(range(partitions))


def wait_for(predicate, timeout: float, interval: float = 0.1) -> bool:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if predicate():
            return True
        time.sleep(interval)
    return False


class TcpProxy:
    """A TCP proxy in a thread: ``cut()`` drops every connection and stops listening, as a
    network partition or a broker restart would; ``restore()`` listens again."""

    def __init__(self, listen_port: int, target_port: int, host: str = "127.0.0.1") -> None:
        import threading

        self.host, self.listen_port, self.target_port = host, listen_port, target_port
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server: asyncio.base_events.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    def _call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.target_port)
        except OSError:
            writer.close()
            return
        self.writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        self.writers -= {writer, up_writer}

    async def _start(self) -> None:
        self.server = await asyncio.start_server(self._handle, self.host, self.listen_port)

    async def _cut(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        for w in list(self.writers):
            w.close()
        self.writers.clear()

    def restore(self) -> None:
        self._call(self._start())

    def cut(self) -> None:
        self._call(self._cut())

    def close(self) -> None:
        self.cut()
        self.loop.call_soon_threadsafe(self.loop.stop)


def committed_and_end(settings: Settings) -> dict[int, tuple[int | None, int]]:
    """Per partition of the input topic: the group's committed offset and the log-end offset.

    The log end is the high watermark of a fetch response: Tansu answers ListOffsets(latest)
    with the last batch's base offset + 1, not the end of that batch. A consumer in the group
    that only reads offsets (it never subscribes) does not join it."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def read() -> dict[int, tuple[int | None, int]]:
        parts = [TopicPartition(settings.input_topic, p) for p in range(settings.partitions)]
        member = AIOKafkaConsumer(
            bootstrap_servers=settings.bootstrap_servers(),
            group_id=settings.group_id,
            enable_auto_commit=False,
        )
        reader = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers())
        await member.start()
        await reader.start()
        try:
            committed = {tp: await member.committed(tp) for tp in parts}
            reader.assign(parts)
            await reader.seek_to_beginning(*parts)
            deadline = time.monotonic() + 10
            while any(reader.highwater(tp) is None for tp in parts):
                assert time.monotonic() < deadline, "no fetch response within 10 s"
                await reader.getmany(timeout_ms=200)
            return {tp.partition: (committed[tp], int(reader.highwater(tp))) for tp in parts}
        finally:
            await reader.stop()
            await member.stop()

    return asyncio.run(read())


def committed_past(settings: Settings, outputs: list[dict[str, Any]]) -> bool:
    """Whether the group committed, in each partition, every input offset these outputs
    (enriched records and dead letters) stand for (:func:`no_lag`: up to the log's end)."""
    want: dict[int, int] = {}
    for r in outputs:
        src = r["source"]
        last = src.get("last_offset", src["offset"])
        want[src["partition"]] = max(want.get(src["partition"], 0), last + 1)
    state = committed_and_end(settings)
    return all((state[p][0] or 0) >= offset for p, offset in want.items())


def no_lag(settings: Settings) -> bool:
    """Whether the group has committed, in every partition, the log's end offset."""
    return all(committed == end for committed, end in committed_and_end(settings).values())


def commit_for_group(settings: Settings, offsets: dict[int, int]) -> None:
    """Commit these offsets of the input topic for the group, as a member that left them
    would have: a member joins alone (the group must have no other members), commits, leaves."""
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
    from aiokafka.structs import OffsetAndMetadata

    class AsFaust(RoundRobinPartitionAssignor):
        name = "faust"  # the broker holds the group to its members' protocol

    async def commit() -> None:
        member = AIOKafkaConsumer(
            bootstrap_servers=settings.bootstrap_servers(),
            group_id=settings.group_id,
            enable_auto_commit=False,
            partition_assignment_strategy=(AsFaust,),
        )
        tps = {TopicPartition(settings.input_topic, p): o for p, o in offsets.items()}
        await member.start()
        try:
            member.subscribe([settings.input_topic])  # Tansu takes commits of members only
            deadline = time.monotonic() + 30
            while not set(tps) <= member.assignment():
                assert time.monotonic() < deadline, "not assigned the partitions within 30 s"
                await member.getmany(timeout_ms=200)
            await member.commit({tp: OffsetAndMetadata(o, "") for tp, o in tps.items()})
        finally:
            await member.stop()

    asyncio.run(commit())


def librdkafka_producer(settings: Settings, **config: Any) -> Any:
    """A producer from another ecosystem: librdkafka, through confluent-kafka."""
    from confluent_kafka import Producer

    return Producer(
        {"bootstrap.servers": ",".join(settings.bootstrap_servers()), "linger.ms": 5, **config}
    )
