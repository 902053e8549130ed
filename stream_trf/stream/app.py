"""The faust worker: one agent that buffers the input topic, enriches in a thread, publishes.

At least once, nothing lost:

* the consumer's fetch loop hands each fetched batch of input records to the agent's intake
  in one step, and the agent takes chunks of it, up to ``max_batch`` records, waiting at most
  ``batch_within`` seconds for more (``stream/intake.py``: faust's per-record conductor,
  channel and stream machinery are skipped); acking is left to us;
* those chunks wait, merged, until the model is free (``stream/feeder.py``): each batch is what
  arrived while the one before it computed, so its size follows the load;
* a batch's outputs go to the producer as one record batch per partition
  (``stream/batches.py``);
* a batch's records are acked only after every output of it (enriched record or dead letter),
  and of every batch before it, has been acknowledged by the broker — publishing retries with
  backoff until it is, unless the broker refused an output for good (too large, invalid, not
  authorized): that output becomes a dead letter and the partition goes on
  (``stream/publisher.py``);
* faust commits acked offsets only. A worker killed mid-batch leaves the batch uncommitted, and
  its records are enriched again by whoever gets the partition (duplicates carry the same
  ``source``).

The model runs in a single worker thread, so fetching, heartbeats and publishing go on while it
computes; while it computes one batch, the one before it is published and acked. On SIGTERM the
dispatched batches are finished and published before the agent stops, then faust commits and
leaves the group; records still waiting for the model stay unacked for the next owner.

Monitoring (``stream_trf.monitor``): once a buffer's outputs are acknowledged the monitor sees
them; a timer closes its windows (off the event loop) and publishes one window record per model
to the metrics topic. With a web port, faust's web server also serves ``/metrics``
(Prometheus), ``/dashboard`` and ``/dashboard/windows.json``, read-only, bound to ``web_host``
(localhost by default). Another timer reads the input topic's consumer lag with a client of its
own (``stream/lag_probe.py``) every ``lag_interval`` seconds. Monitoring never stops enrichment:
its failures are logged.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import tempfile
import time
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import faust
import orjson

from ..monitor.monitor import Monitor
from ..settings import Settings
from ..threads import name_os_thread
from .batches import PartitionBatches
from .feeder import Feeder
from .intake import Intake
from .intake import install as hand_over_fetched_batches
from .kafka import broker_credentials
from .lag_probe import LagProbe, own_offsets
from .processor import BatchProcessor, Output, RawMessage
from .publisher import Publisher
from .records import Source
from .undecodable import UndecodableBatch
from .undecodable import install as guard_undecodable_batches

log = logging.getLogger("stream_trf.worker")

# Batches dispatched and not yet delivered: one computing while the one before it is published.
# More would only add memory and latency.
IN_FLIGHT = 2

# The producer's record batches: a buffer's outputs for one partition (256 records of a few KB)
# in one or a few produce requests, well under a broker's default limit of 1 MB per batch.
BATCH_BYTES = 256 * 1024


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _patch_consumer() -> None:
    """Let the app choose two things faust fixes for its consumer.

    * ``fetch_max_wait_ms``: faust hardcodes 1500 ms. A broker that holds each fetch that long
      before answering (Tansu, the embedded broker, does) adds up to 1.5 s to every record's
      latency; Kafka's own default is 500 ms. The app carries its choice as
      ``app._stream_trf_fetch_max_wait_ms``.
    * ``isolation_level``: faust reads committed records only inside its own transactions. The
      worker always does, so a transactional producer's aborted records are never enriched
      (control records never reach the agent either way).
    """
    from faust.transport.drivers import aiokafka as faust_aiokafka

    thread_cls = faust_aiokafka.AIOKafkaConsumerThread
    if getattr(thread_cls, "_stream_trf_patched", False):
        return
    original = thread_cls._create_worker_consumer

    def create(self: Any, transport: Any) -> Any:
        consumer = original(self, transport)
        wait_ms = getattr(self.app, "_stream_trf_fetch_max_wait_ms", None)
        if wait_ms is not None:
            consumer._fetch_max_wait_ms = int(wait_ms)
        consumer._isolation_level = "read_committed"
        return consumer

    thread_cls._create_worker_consumer = create  # type: ignore[method-assign]
    thread_cls._stream_trf_patched = True  # type: ignore[attr-defined]


def _add_pages(app: faust.App, monitor: Monitor) -> None:
    """``/metrics`` (Prometheus), ``/dashboard`` and its data, on faust's web server. All
    read-only (GET), and the server binds to ``web_host``, localhost by default."""
    from faust.web import Request, Response, View

    from ..monitor.prometheus import CONTENT_TYPE

    @app.page("/metrics", name="stream_trf_metrics")
    async def metrics(self: View, request: Request) -> Response:
        return self.bytes(monitor.metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})

    @app.page("/dashboard", name="stream_trf_dashboard")
    async def dashboard(self: View, request: Request) -> Response:
        from ..monitor import dashboard as page

        headers = {"Cache-Control": "no-store"}
        policy = getattr(page, "CONTENT_SECURITY_POLICY", None)
        if policy:
            headers["Content-Security-Policy"] = policy
        return self.html(page.page(), headers=headers)

    @app.page("/dashboard/windows.json", name="stream_trf_dashboard_windows")
    async def windows(self: View, request: Request) -> Response:
        body = orjson.dumps(
            {"windows": monitor.history(), "alerts": monitor.current_alerts(), "lag": monitor.lag()}
        )
        return self.bytes(
            body, headers={"Content-Type": "application/json", "Cache-Control": "no-store"}
        )


def _add_lag_timer(app: faust.App, settings: Settings, monitor: Monitor) -> None:
    """Every ``lag_interval`` seconds: the input topic's lag, with this worker's own offsets,
    into the monitor (/metrics, the dashboard, the progress line)."""
    probe = LagProbe(settings)

    @app.timer(interval=settings.monitor.lag_interval, name="stream_trf_read_lag")
    async def read_lag() -> None:
        try:
            own = await own_offsets(app.consumer, settings.topics.input_topic)
            monitor.observe_lag(await probe.read(own))
        except Exception:  # a failed reading is reported by the probe; this is a bug
            log.exception("the consumer lag could not be recorded; enrichment goes on")

    async def close_probe(sender: Any, *args: Any, **kwargs: Any) -> None:
        await probe.close()

    app.on_before_shutdown.connect(close_probe)  # type: ignore[arg-type]


def raw_message(m: Any) -> RawMessage:
    """A faust message as the processor sees it: value, where it came from (with the record's
    key and headers), when it was produced; or the batch the consumer could not decode."""
    headers = tuple((str(k), bytes(v or b"")) for k, v in (m.headers or ()))
    timestamp_ms = int(m.timestamp * 1000) if m.timestamp else None
    value = m.value
    if isinstance(value, UndecodableBatch):
        source = Source(m.topic, m.partition, value.first_offset, last_offset=value.last_offset)
        return RawMessage(bytes(value), source, timestamp_ms, undecodable=value.reason)
    return RawMessage(value, Source(m.topic, m.partition, m.offset, m.key, headers), timestamp_ms)


def build_app(settings: Settings, processor: BatchProcessor) -> faust.App:
    """The faust app with the enrichment agent, wired to ``processor``."""
    _patch_consumer()
    guard_undecodable_batches()
    hand_over_fetched_batches()
    data_dir = settings.operations.data_dir or tempfile.mkdtemp(prefix="stream-trf-faust-")
    app = faust.App(
        settings.topics.group_id,
        broker=settings.kafka.broker_urls(),
        broker_credentials=broker_credentials(settings),
        value_serializer="raw",
        key_serializer="raw",
        store="memory://",
        datadir=data_dir,
        topic_partitions=settings.topics.partitions,
        topic_replication_factor=1,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.topics.session_timeout,
        broker_heartbeat_interval=settings.topics.heartbeat_interval,
        broker_rebalance_timeout=settings.topics.rebalance_timeout,
        broker_commit_interval=settings.topics.commit_interval,
        producer_acks=-1,
        producer_max_request_size=settings.records.max_record_bytes,
        # a buffer's records of one partition in one batch, not sixteen (aiokafka's 16 KiB)
        producer_max_batch_size=min(settings.records.max_record_bytes, BATCH_BYTES),
        web_enabled=settings.operations.web_port > 0,
        web_port=settings.operations.web_port or 6066,
        web_bind=settings.operations.web_host,
        web_host=settings.operations.web_host,
    )
    app._stream_trf_fetch_max_wait_ms = int(settings.batching.fetch_max_wait * 1000)  # type: ignore[attr-defined]
    topic_kwargs: dict[str, Any] = {
        "key_type": bytes,
        "value_type": bytes,
        "key_serializer": "raw",
        "value_serializer": "raw",
        "partitions": settings.topics.partitions,
    }
    source_topic = app.topic(settings.topics.input_topic, **topic_kwargs)
    intake = Intake(app, settings.topics.input_topic, maxsize=app.conf.stream_buffer_maxsize)
    output_topic = app.topic(settings.topics.output_topic, **topic_kwargs)
    dlq_topic = app.topic(settings.topics.dlq_topic, **topic_kwargs)
    metrics_topic = (
        app.topic(settings.topics.metrics_topic, **topic_kwargs)
        if settings.topics.metrics_topic
        else None
    )
    executor = ThreadPoolExecutor(
        max_workers=1, thread_name_prefix="stream-trf-model", initializer=name_os_thread
    )
    # The monitor closes windows in a thread of its own, one closing at a time, named
    # trf-monitor_0 for top -H and the host benchmark's split.
    monitor_executor = ThreadPoolExecutor(
        max_workers=1, thread_name_prefix="stream-trf-monitor", initializer=name_os_thread
    )
    state = {"started": time.time(), "last_log": time.time(), "busy_s": 0.0}
    monitor = Monitor(settings.monitor, worker=worker_name())
    app._stream_trf_monitor = monitor  # type: ignore[attr-defined]
    if processor is not None:  # the model is on /metrics before the first record
        monitor.metrics.set_model(processor.model.name, processor.model.version)
    publisher = Publisher(
        output_topic,
        dlq_topic,
        max_record_bytes=settings.records.max_record_bytes,
        worker=worker_name(),
        on_unpublished=lambda output, kind: monitor.metrics.unpublished(),
        on_retry=monitor.metrics.publish_retry,
        batches=PartitionBatches(
            lambda: app.producer._ensure_producer(),  # type: ignore[attr-defined]  # aiokafka driver
            settings.records.max_record_bytes,
        ),
    )
    app._stream_trf_publisher = publisher  # type: ignore[attr-defined]

    @app.task
    async def declare_topics() -> None:
        topics = [source_topic, output_topic, dlq_topic]
        if metrics_topic is not None:
            topics.append(metrics_topic)
        from faust.exceptions import NotReady

        for topic in topics:
            try:
                await topic.maybe_declare()
            except NotReady:  # SIGTERM came during startup and the producer already stopped
                log.info("stopping before the topics were declared; nothing to declare now")
                return

    def observe(outputs: list[Output]) -> None:
        """Show the monitor what was just published (and acknowledged). Monitoring never
        stops enrichment: a failure here is logged, not raised."""
        now = time.time()
        try:
            for o in outputs:
                if o.kind == "enriched":
                    record = o.record if o.record is not None else orjson.loads(o.value)
                    monitor.observe_enriched(record, now)
                else:
                    model = processor.model
                    monitor.observe_dead_letter(
                        (model.name, model.version), now, kind=o.reason or "unknown"
                    )
        except Exception:
            log.exception("the monitor failed to observe a batch; enrichment goes on")

    async def close_and_publish(close: Any, what: str) -> None:
        try:
            # The two-sample test takes tens of milliseconds: off the event loop.
            loop = asyncio.get_running_loop()
            records = await loop.run_in_executor(monitor_executor, close, time.time())
        except Exception:
            log.exception("the monitor failed to close %s; enrichment goes on", what)
            return
        await publish_windows(records)

    @app.timer(interval=min(1.0, settings.monitor.window_seconds / 4))
    async def close_windows() -> None:
        await close_and_publish(monitor.tick, "a window")

    async def flush_windows(sender: Any, *args: Any, **kwargs: Any) -> None:
        """A stopping worker (SIGTERM, a scale-down) publishes its unfinished windows: after
        the consumer stopped and the streams drained, before the producer's last flush."""
        await close_and_publish(monitor.flush, "its last windows")

    # mode's stubs spell the handler type too narrowly for an async receiver
    app.on_before_shutdown.connect(flush_windows)  # type: ignore[arg-type]

    async def publish_windows(records: list[dict[str, Any]]) -> None:
        if metrics_topic is None:
            return
        for rec in records:
            try:
                fut = await metrics_topic.send(
                    key=rec["model"]["name"].encode("utf-8"), value=orjson.dumps(rec)
                )
                await fut
            except Exception as err:  # a lost window record must not stop the worker
                log.warning(
                    "could not publish a window record to %s (%s: %s)",
                    settings.topics.metrics_topic,
                    type(err).__name__,
                    err,
                )

    if settings.monitor.lag_interval > 0:
        _add_lag_timer(app, settings, monitor)
    _add_pages(app, monitor)

    def log_progress(sizes: Collection[int]) -> None:
        now = time.time()
        if now - state["last_log"] > 10:
            s = processor.stats
            # the model thread's busy share since the last line: below ~95 % under a backlog,
            # the event loop (fetching, publishing, acking) is what holds the model back
            busy = (s.busy_s - state["busy_s"]) / max(now - state["last_log"], 1e-9)
            state["last_log"], state["busy_s"] = now, s.busy_s
            log.info(
                "%d records: %d enriched, %d dead letters, %.0f words/s; latest batches %.0f "
                "records on average; model thread busy %.0f %%%s",
                s.records,
                s.enriched,
                s.dead_letters,
                s.words / max(now - state["started"], 1e-9),
                sum(sizes) / max(len(sizes), 1),
                100 * busy,
                f"; {monitor.lag_summary(now)}" if settings.monitor.lag_interval > 0 else "",
            )

    @app.agent(source_topic, name="enrich", concurrency=1)
    async def enrich(stream: Any) -> None:
        """Taken chunks wait, merged, until the model is free (stream/feeder.py): while the
        model computes one batch, the one before it is published and the next one gathers.
        The chunks come from the intake the fetch loop fills (stream/intake.py); the stream
        itself is only iterated to subscribe the agent to its topic."""

        async def compute(taken: list[tuple[Any, RawMessage]]) -> list[Output]:
            """One batch through the processor in the model thread (fetching, heartbeats and
            publishing go on meanwhile)."""
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(executor, processor.process, [m for _, m in taken])

        async def deliver(taken: list[tuple[Any, RawMessage]], outputs: list[Output]) -> None:
            """Publish, show the monitor, then ack the records: their offsets are committed only
            now (at least once)."""
            observe(await publisher.publish(outputs))
            intake.ack(message for message, _ in taken)
            log_progress(feeder.sizes)

        feeder: Feeder[tuple[Any, RawMessage], list[Output]] = Feeder(
            compute, deliver, max_batch=settings.batching.max_batch, in_flight=IN_FLIGHT
        )
        stream.channel.__aiter__()  # registers the agent's channel: the topic is subscribed
        try:
            async for messages in intake.chunks(
                settings.batching.max_batch, settings.batching.batch_within
            ):
                await feeder.add([(m, raw_message(m)) for m in messages])
        except asyncio.CancelledError:
            # Stopping (SIGTERM): finish the dispatched batches and publish them before their
            # events are acked and committed, then let the agent stop. Records still waiting
            # stay unacked: the partition's next owner takes them.
            log.info(
                "stopping: finishing %d in-flight batches (%d waiting records left to the "
                "partitions' next owners)",
                feeder.undelivered,
                len(feeder.waiting),
            )
            await feeder.stop()
            raise

    return app
