"""Operating a real worker like a Kafka service: its consumer lag under a backlog, and a real
Prometheus (Debian's binary) scraping it with the repository's alert rules loaded.

One worker (tiny BERT), one embedded broker and one Prometheus serve every test here: the
Prometheus server starts first, then a backlog is produced, then the worker starts, so both the
worker's own lag history and Prometheus see the backlog from the worker's first second.
"""

from __future__ import annotations

import json
import math
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from prometheus_harness import PrometheusServer
from worker_harness import create_topics, fresh_settings, produce_json

from stream_trf.monitor.alerts import FIGURES
from stream_trf.settings import Settings
from stream_trf.stream.broker import free_port
from stream_trf.stream.local import WorkerProcess

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "rules" / "stream-trf.rules.yml"
PARTITIONS = 4
BACKLOG = 1500  # produced before the worker starts
BURST = 3000  # produced while it runs


@dataclass
class Live:
    settings: Settings
    port: int
    worker: WorkerProcess
    prometheus: PrometheusServer
    produced: list[int] = field(default_factory=list)

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as resp:
            return bytes(resp.read())

    def lag(self) -> dict[str, Any] | None:
        lag = json.loads(self.get("/dashboard/windows.json"))["lag"]
        return lag if isinstance(lag, dict) else None

    def produce(self, start: int, n: int) -> None:
        docs = [
            {"id": f"d{i}", "text": f"Document {i} is about alpha and beta. Then gamma {i % 7}."}
            for i in range(start, start + n)
        ]
        produce_json(self.settings, docs)
        self.produced.append(n)


def wait_until(what: str, check: Callable[[], Any], timeout: float = 90.0) -> Any:
    """Poll ``check`` until it returns something truthy; fail saying ``what`` was awaited."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (OSError, ValueError, KeyError) as err:  # not up yet
            last = err
        if last and not isinstance(last, Exception):
            return last
        time.sleep(0.25)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}; last: {last!r}")


def caught_up(live: Live) -> dict[str, Any] | None:
    """The lag reading once every produced record is in the log and committed."""
    lag = live.lag()
    if not lag or lag["error"] or len(lag["partitions"]) != PARTITIONS:
        return None
    ends = sum(p["end"] for p in lag["partitions"])
    return lag if ends == sum(live.produced) and lag["total"] == 0 else None


@pytest.fixture(scope="module")
def live(broker, tiny_models, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    out = tmp_path_factory.mktemp("operations")
    port = free_port()
    settings = fresh_settings(
        broker.url,
        str(tiny_models["bert"]),
        web_port=port,
        window_seconds=2.0,
        reference_size=10,
        lag_interval=0.25,
        # lag is end - committed: committing every 3 s keeps a backlog visible to at least two
        # of Prometheus's 1 s scrapes and rule evaluations, however fast the tiny model reads it
        commit_interval=3.0,
        metrics_topic="",
        partitions=PARTITIONS,
    )
    create_topics(settings)
    prometheus = PrometheusServer(out, [f"127.0.0.1:{port}"], rule_files=[RULES])
    prometheus.start()
    worker: WorkerProcess | None = None
    try:
        live = Live(settings, port, None, prometheus)  # type: ignore[arg-type]
        live.produce(0, BACKLOG)
        worker = live.worker = WorkerProcess(settings, out / "worker.log")
        worker.wait_ready()
        yield live
    finally:
        prometheus.stop()
        if worker is not None:
            assert worker.terminate(timeout=60) == 0


def test_lag_rises_under_a_backlog_and_returns_to_zero(live: Live) -> None:
    first = wait_until("the backlog to be consumed", lambda: caught_up(live))
    seen = [v for _, v in first["history"] if v is not None]
    assert max(seen) > 0, first["history"]  # the backlog showed as lag...
    assert max(seen) <= BACKLOG and seen[-1] == 0  # ...and it went back to 0

    burst_at = time.time()
    live.produce(BACKLOG, BURST)
    after = wait_until("the burst to be consumed", lambda: caught_up(live))
    during = [v for t, v in after["history"] if t >= burst_at and v is not None]
    assert max(during) > 0, after["history"]  # it rose again while the worker worked...
    assert max(during) <= BURST and during[-1] == 0  # ...and came back down
    for p in after["partitions"]:  # one worker: it owns and has read every partition
        assert p["owned"] and p["committed"] == p["end"] == p["position"], p

    metrics: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(live.get("/metrics").decode()):
        for s in family.samples:
            if s.name.startswith("stream_trf_consumer_") and "partition" in s.labels:
                assert s.labels["topic"] == live.settings.input_topic
                metrics.setdefault(s.name, {})[s.labels["partition"]] = s.value
    partitions = {str(p) for p in range(PARTITIONS)}
    for name in ("lag", "end_offset", "committed_offset", "position"):
        assert set(metrics[f"stream_trf_consumer_{name}"]) == partitions, name
    assert sum(metrics["stream_trf_consumer_lag"].values()) == 0
    assert sum(metrics["stream_trf_consumer_end_offset"].values()) == BACKLOG + BURST
    assert metrics["stream_trf_consumer_position"] == metrics["stream_trf_consumer_end_offset"]


def test_the_worker_names_its_threads_for_the_os(live: Live) -> None:
    """``top -H`` and the host benchmark tell the worker's threads apart: the model thread, and
    the monitor's, which closes windows (every 2 s here) while the worker runs."""
    from bench.harness.machine import thread_cpu

    worker = live.worker
    roles = wait_until(
        "the monitor's thread to close a window",
        lambda: (
            names
            if {"trf-model", "trf-monitor"}
            <= (names := {r for r, _ in thread_cpu(worker.pid).values()})
            else None
        ),
    )
    assert "event loop" in roles, roles


def test_prometheus_scrapes_the_drift_figures_and_the_lag(live: Live) -> None:
    prom = live.prometheus
    wait_until("the lag to be caught up", lambda: caught_up(live))
    total = sum(live.produced)
    deduped = "sum(max by (topic, partition) (stream_trf_consumer_end_offset))"
    wait_until(
        f"Prometheus to see {total} records in the input topic",
        lambda: [v for v in prom.values(deduped).values() if v == total],
        timeout=30,
    )
    lag = prom.values("stream_trf_consumer_lag")
    assert {dict(k)["partition"] for k in lag} == {str(p) for p in range(PARTITIONS)}
    assert {dict(k)["topic"] for k in lag} == {live.settings.input_topic}
    assert {dict(k)["job"] for k in lag} == {"stream-trf"}
    # the recording rule saw the backlog and sees it gone
    recorded = "topic:stream_trf_consumer_lag:sum"
    wait_until("the recorded lag to be 0", lambda: list(prom.values(recorded).values()) == [0.0])
    (peak,) = prom.values(f"max_over_time({recorded}[10m])").values()
    assert peak > 0  # the backlog the worker started with

    # the enriched documents, and the drift figures of windows that had documents
    docs = wait_until(
        "Prometheus to count every document",
        lambda: [v for v in prom.values("sum(stream_trf_documents_total)").values() if v == total],
        timeout=30,
    )
    assert docs == [total]
    model = Path(live.settings.model).name
    (drift,) = prom.values(
        f'max_over_time(stream_trf_embedding_drift{{model="{model}"}}[10m])'
    ).values()
    assert math.isfinite(drift) and drift >= 0  # a window with documents and a reference
    alerts = prom.values(f'stream_trf_drift_alert{{model="{model}"}}')
    assert {dict(k)["figure"] for k in alerts} == set(FIGURES)
    assert prom.values(f'stream_trf_agreement_floor{{model="{model}"}}')

    # every rule of the repository's rules file loaded and evaluates without an error
    wanted = {
        r.get("alert") or r.get("record")
        for g in yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
        for r in g["rules"]
    }
    rules = wait_until(
        "every rule to be evaluated",
        lambda: (rs := prom.rules()) and all(r["health"] != "unknown" for r in rs) and rs,
        timeout=30,
    )
    assert {r["name"] for r in rules} == wanted
    assert [r for r in rules if r["health"] != "ok"] == [], prom.log()[-2000:]
    firing = [r["name"] for r in rules if r.get("state") == "firing"]
    assert "StreamTrfWorkerDown" not in firing and "StreamTrfNoWorkers" not in firing
