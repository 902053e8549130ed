"""The worker's Kafka consumer waits at most ``fetch_max_wait`` per fetch (faust hardcodes 1.5 s)."""

from __future__ import annotations

import asyncio

import pytest

from stream_trf.settings import Settings
from stream_trf.stream.app import build_app


@pytest.mark.parametrize("seconds", [0.05, 0.5])
def test_the_worker_consumer_takes_fetch_max_wait_from_the_settings(seconds: float) -> None:
    async def consumer_wait_ms() -> int:
        app = build_app(Settings(fetch_max_wait=seconds), processor=None)  # type: ignore[arg-type]
        consumer = app.consumer._thread._create_worker_consumer(app.transport)
        try:
            return int(consumer._fetch_max_wait_ms)
        finally:
            await consumer.stop()

    assert asyncio.run(consumer_wait_ms()) == int(seconds * 1000)
