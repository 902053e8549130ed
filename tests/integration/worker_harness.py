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


def wait_for(predicate, timeout: float, interval: float = 0.1) -> bool:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if predicate():
            return True
        time.sleep(interval)
    return False
