"""The worker end to end through the embedded broker.

1. saturation: with the worker ready, N docs are produced at once; throughput is N over the time
   from the first produce to the last enriched record read back from the output topic.
2. paced: docs arrive at a fixed share of that throughput; each record's latency is the time
   from its input record's broker timestamp to the enriched record's arrival at a consumer.
   The worker's RSS is sampled all along (the memory-soak figure is a long paced run).
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from stream_trf.settings import Settings
from stream_trf.stream import clients
from stream_trf.stream.broker import EmbeddedBroker
from stream_trf.stream.local import WorkerProcess

from .machine import cpu_between, process_cpu, process_peak_rss_mb, process_rss_mb

# Tansu holds a JoinGroup for half the session timeout: keep it short for a quick start.
BENCH_GROUP: dict[str, Any] = {
    "session_timeout": 6.0,
    "heartbeat_interval": 1.5,
    "rebalance_timeout": 10.0,
}


def bench_settings(broker_url: str, model: str, **overrides: Any) -> Settings:
    tag = uuid.uuid4().hex[:8]
    return Settings(
        broker=broker_url,
        model=model,
        input_topic=f"bench-in-{tag}",
        output_topic=f"bench-out-{tag}",
        dlq_topic=f"bench-dlq-{tag}",
        group_id=f"bench-{tag}",
        log_level="warn",
        **BENCH_GROUP,
    ).with_(**overrides)


async def _produce_all(settings: Settings, docs: list[dict[str, Any]]) -> None:
    await clients.produce(
        settings,
        settings.input_topic,
        [orjson.dumps(d) for d in docs],
        [d["id"].encode() for d in docs],
    )


async def _produce_paced(settings: Settings, docs: list[dict[str, Any]], rate: float) -> None:
    from aiokafka import AIOKafkaProducer

    from stream_trf.stream.kafka import kafka_client_kwargs

    producer = AIOKafkaProducer(**kafka_client_kwargs(settings), acks="all", linger_ms=1)
    await producer.start()
    try:
        t0 = time.time()
        for i, d in enumerate(docs):
            delay = t0 + i / rate - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await producer.send(settings.input_topic, value=orjson.dumps(d), key=d["id"].encode())
        await producer.flush()
    finally:
        await producer.stop()


async def run_round(
    settings: Settings, docs: list[dict[str, Any]], rate: float | None, timeout: float
) -> tuple[list[dict[str, Any]], float]:
    """Produce ``docs`` (all at once, or at ``rate`` docs/s) and read the output topic until
    each came back enriched; the enriched records and the time the first was produced."""
    want = {d["id"] for d in docs}
    seen: set[str] = set()

    def on_record(rec: dict[str, Any]) -> None:
        if "id" in rec:
            seen.add(rec["id"])

    consumer = asyncio.create_task(
        clients.consume(
            settings,
            settings.output_topic,
            timeout=timeout,
            until=lambda _: seen >= want,
            on_record=on_record,
        )
    )
    t0 = time.time()
    if rate is None:
        await _produce_all(settings, docs)
    else:
        await _produce_paced(settings, docs, rate)
    out = await consumer
    return [r for r in out if r.get("id") in want], t0


class RssSampler:
    """The worker's resident memory every ``interval`` seconds, in a thread."""

    def __init__(self, pid: int, interval: float = 1.0) -> None:
        self.pid, self.interval = pid, interval
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        t0 = time.monotonic()
        while not self._stop.wait(self.interval):
            rss = process_rss_mb(self.pid)
            if rss is not None:
                self.samples.append((round(time.monotonic() - t0, 1), rss))

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def by_process(records: list[dict[str, Any]], t0: float) -> dict[str, dict[str, float]]:
    """Per worker process: how many records it enriched and when its last one arrived (seconds
    after the first was produced). The spread of those last arrivals is time in which some
    processes had nothing left to do: the partitions' shares of the N docs are not equal."""
    out: dict[str, dict[str, float]] = {}
    for r in records:
        p = out.setdefault(r["worker"], {"records": 0, "last_s": 0.0})
        p["records"] += 1
        p["last_s"] = max(p["last_s"], round(r["_kafka"]["received_ms"] / 1000 - t0, 2))
    return out


def latency_figures(records: list[dict[str, Any]]) -> dict[str, float]:
    lat = [
        r["_kafka"]["received_ms"] - r["timings"]["ingested_at_ms"]
        for r in records
        if r.get("timings", {}).get("ingested_at_ms") is not None
    ]
    queued = [r["timings"].get("queued_ms", 0.0) for r in records]
    batch = [r["timings"].get("batch_ms", 0.0) for r in records]
    if not lat:
        return {}
    return {
        "latency_ms_p50": round(float(np.percentile(lat, 50)), 1),
        "latency_ms_p99": round(float(np.percentile(lat, 99)), 1),
        "latency_ms_max": round(float(np.max(lat)), 1),
        "queued_ms_p50": round(float(np.percentile(queued, 50)), 1),
        "batch_ms_p50": round(float(np.percentile(batch, 50)), 1),
        "batch_ms_p99": round(float(np.percentile(batch, 99)), 1),
    }


def rss_growth(samples: list[tuple[float, float]], warmup_share: float = 0.25) -> dict[str, Any]:
    """How much the worker's RSS grew over a run, once its first ``warmup_share`` is over.

    A worker's RSS is a sawtooth, not a line: each buffer's arrays raise it and freeing them
    lowers it again, by ±15 % at a soak's pace. One sample against another measures where each
    landed on a tooth (a single start sample gave +7.1 % on a run whose quarters' medians were
    within 2 % of each other). Two figures that a sawtooth does not move, and the growth is
    the larger:

    - ``rss_window_growth``: median of the last quarter of the run over the median of the
      quarter right after warm-up;
    - ``rss_trend_growth``: the least-squares line through every sample after warm-up, its
      rise over that span divided by its value where the span starts.
    """
    if len(samples) < 8:
        return {}
    t = np.array([s[0] for s in samples], dtype=float)
    rss = np.array([s[1] for s in samples], dtype=float)
    n = len(rss)
    start = int(n * warmup_share)
    early = float(np.median(rss[start : start + max(2, n // 4)]))
    late = float(np.median(rss[-max(2, n // 4) :]))
    slope, intercept = np.polyfit(t[start:], rss[start:], 1)
    fitted_start = slope * t[start] + intercept
    trend = slope * (t[-1] - t[start]) / fitted_start
    window = late / early - 1
    return {
        "rss_mb_after_warmup": round(early, 1),
        "rss_mb_end": round(late, 1),
        "rss_mb_max": round(float(rss.max()), 1),
        "rss_mb_per_min": round(float(slope) * 60, 2),
        "rss_window_growth": round(window, 4),
        "rss_trend_growth": round(float(trend), 4),
        "rss_growth": round(max(window, float(trend)), 4),
    }


def kept_pace(records: list[dict[str, Any]], rate: float, t0: float) -> dict[str, Any]:
    """Whether the worker kept up with the offered rate: docs enriched per second from the first
    produce to the last enriched record, against the rate they were produced at. A worker that
    falls behind runs bigger buffers than the rate alone would give (a slower host, or a rate
    measured when the host was faster), and its latency then is queueing, not processing."""
    if not records:
        return {}
    span = max(r["_kafka"]["received_ms"] for r in records) / 1000 - t0
    enriched = len({r["id"] for r in records}) / span if span > 0 else 0.0
    return {
        "enriched_docs_per_s": round(enriched, 2),
        "kept_pace": enriched >= 0.97 * rate,
    }


def run_worker(
    texts: list[str],
    *,
    model: str,
    paced_share: float = 0.5,
    paced_seconds: float = 60.0,
    soak_share: float = 0.8,
    soak_seconds: float = 0.0,
    soak_calibration_docs: int | None = None,
    overrides: dict[str, Any] | None = None,
    log_dir: Path | None = None,
    before_soak: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Saturation, then paced latency, then (if ``soak_seconds``) ``before_soak()`` (the harness
    measures the ceiling again there, while the worker idles) and a memory soak.

    The soak's rate is a share of a longer saturation (``soak_calibration_docs``, default three
    times the texts), not of the first: 2,000 docs gave 49 docs/s where 8,000 sustained 44.6,
    so "80 %" was 88 %, the worker fell behind, and the soak measured the switch from paced to
    full buffers instead of memory at a steady load."""
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="stream-trf-bench-"))
    docs = [{"id": f"sat-{i}", "text": t} for i, t in enumerate(texts)]
    with EmbeddedBroker(log_file=log_dir / "broker.log") as broker:
        settings = bench_settings(broker.url, model, **(overrides or {}))
        asyncio.run(clients.ensure_worker_topics(settings))
        worker = WorkerProcess(settings, log_dir / "worker.log")
        try:
            ready = worker.wait_ready(timeout=600)
            cpu_before = process_cpu(worker.pid)
            out, t0 = asyncio.run(run_round(settings, docs, None, timeout=3600))
            cpu = cpu_between(cpu_before, process_cpu(worker.pid), len(docs))
            t1 = max(r["_kafka"]["received_ms"] for r in out) / 1000
            secs = t1 - t0
            saturation = {
                "docs": len(docs),
                "enriched": len({r["id"] for r in out}),
                "seconds": round(secs, 2),
                "docs_per_s": round(len(docs) / secs, 2),
                "words": sum(r["n_words"] for r in {r["id"]: r for r in out}.values()),
                "duplicates": clients.duplicates(out),
                "by_process": by_process(out, t0),
                "worker_cpu": cpu,
            }
            saturation["words_per_s"] = round(saturation["words"] / secs, 1)
            rate = max(1.0, saturation["docs_per_s"] * paced_share)
            paced = paced_run(settings, texts, rate, paced_seconds, "paced", worker.pid)
            soak = None
            if soak_seconds > 0:
                if before_soak is not None:
                    before_soak()
                calibration = _sustained(settings, texts, soak_calibration_docs or 3 * len(texts))
                rate = max(1.0, calibration["docs_per_s"] * soak_share)
                soak = paced_run(settings, texts, rate, soak_seconds, "soak", worker.pid)
                soak["calibration"] = calibration
                soak["ceiling_rechecked_before"] = before_soak is not None
            peak = process_peak_rss_mb(worker.pid)
        finally:
            code = worker.terminate()
    from stream_trf.stream.supervisor import resolve_processes, threads_per_process

    processes = resolve_processes(settings)
    import torch

    from stream_trf.stream.worker import worker_words_per_batch

    # what the worker resolved (it runs on CUDA wherever torch sees a card)
    wpb = worker_words_per_batch(
        settings.words_per_batch, "cuda" if torch.cuda.is_available() else "cpu"
    )
    return {
        "name": "worker (end to end)",
        "worker_ready_seconds": round(ready, 1),
        "worker_settings": {
            **{
                k: v
                for k, v in settings.public().items()
                if k
                in (
                    "max_batch",
                    "batch_within",
                    "words_per_batch",
                    "partitions",
                    "model",
                    "mmap_threshold_mb",
                    "huge_pages",
                    "onednn_cache",
                    "release_every",
                    "vocab_warmup_chars",
                    "trace",
                )
            },
            "words_per_batch": wpb,
            "processes": processes,
            "threads_per_process": threads_per_process(processes),
        },
        "words_per_s": saturation["words_per_s"],
        "saturation": saturation,
        "paced": paced,
        "soak": soak,
        "peak_rss_mb": peak,
        "exit_code": code,
        "log_dir": str(log_dir),
    }


def _sustained(settings: Settings, texts: list[str], n: int) -> dict[str, Any]:
    """The worker's rate over a backlog of ``n`` docs (the texts cycled), from the first produce
    to the last enriched record."""
    docs = [{"id": f"cal-{i}", "text": texts[i % len(texts)]} for i in range(n)]
    out, t0 = asyncio.run(run_round(settings, docs, None, timeout=3600))
    secs = max(r["_kafka"]["received_ms"] for r in out) / 1000 - t0
    return {
        "docs": n,
        "enriched": len({r["id"] for r in out}),
        "seconds": round(secs, 2),
        "docs_per_s": round(n / secs, 2),
    }


def paced_run(
    settings: Settings, texts: list[str], rate: float, seconds: float, tag: str, pid: int
) -> dict[str, Any]:
    """``texts`` (cycled) offered at ``rate`` docs/s for ``seconds`` to the worker of process
    ``pid``: whether it kept pace, latencies, RSS growth and CPU."""
    n = max(10, int(rate * seconds))
    docs = [{"id": f"{tag}-{i}", "text": texts[i % len(texts)]} for i in range(n)]
    cpu_before = process_cpu(pid)
    with RssSampler(pid) as sampler:
        out, t0 = asyncio.run(run_round(settings, docs, rate, timeout=seconds * 3 + 600))
    cpu = cpu_between(cpu_before, process_cpu(pid), n)
    return {
        "rate_docs_per_s": round(rate, 2),
        "docs": n,
        "enriched": len({r["id"] for r in out}),
        **kept_pace(out, rate, t0),
        **latency_figures(out),
        **rss_growth(sampler.samples),
        "worker_cpu": cpu,
        "rss_samples": sampler.samples[:: max(1, len(sampler.samples) // 200)],
    }
