"""The worker app around its consumer: it waits at most ``fetch_max_wait`` per fetch (faust hardcodes
1.5 s), and a stop during start-up is a clean stop."""

from __future__ import annotations

import asyncio
from typing import Any

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


def test_a_stop_during_topic_declaration_is_not_a_crash(
    broker: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """SIGTERM while the worker's start-up task still declares its topics: faust has already
    stopped the producer, declaring raises NotReady, and the worker must still stop cleanly (it
    exited 1 once, in the supervisor's restart test). Here the producer really ran against the
    embedded broker and was stopped before the task ran."""

    async def declare() -> None:
        app = build_app(Settings(broker=broker.url), processor=None)  # type: ignore[arg-type]
        (task,) = [t for t in app._app_tasks if t.__name__ == "declare_topics"]
        await app.maybe_start_producer()
        await app.producer.stop()
        await task()

    with caplog.at_level("INFO", logger="stream_trf.worker"):
        asyncio.run(declare())  # returns instead of raising NotReady
    assert "stopping before the topics were declared" in caplog.text
