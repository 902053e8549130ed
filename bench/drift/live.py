"""The live check: a real worker with short windows, a stream that switches sections half-way,
and the time until the alert shows on its ``/metrics`` and in a window record on the metrics
topic."""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.request
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.harness.worker import bench_settings

from .enrich import produce_and_collect
from .figures import DRIFT_GROUPS, GROUPS
from .labelled import Record


def _alert_gauges(port: int) -> dict[str, tuple[float, str]]:
    """``stream_trf_drift_alert`` samples on the worker's /metrics: value and exposition line,
    by figure."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    lines = {
        line.split(" ")[0]: line
        for line in text.splitlines()
        if line.startswith("stream_trf_drift")
    }
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "stream_trf_drift_alert":
                figure = sample.labels.get("figure", "")
                line = next((v for k, v in lines.items() if f'figure="{figure}"' in k), "")
                out[figure] = (float(sample.value), line)
    return out


class AlertPoller:
    """Polls /metrics in a thread and keeps every change of the set of alerting figures, with
    the time it was seen and the exposition lines that read 1."""

    def __init__(self, port: int, interval: float = 0.25) -> None:
        self.port, self.interval = port, interval
        self.events: list[tuple[float, frozenset[str], list[str]]] = []
        self.polls = 0
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        active: frozenset[str] = frozenset()
        while not self._stop.wait(self.interval):
            try:
                gauges = _alert_gauges(self.port)
            except OSError:
                self.errors += 1
                continue
            self.polls += 1
            now = frozenset(f for f, (v, _) in gauges.items() if v == 1.0)
            if now != active:
                active = now
                self.events.append((time.time(), now, [gauges[f][1] for f in sorted(now)]))

    def first_after(self, t: float, figures: set[str]) -> tuple[float, list[str]] | None:
        """When one of ``figures`` was first seen alerting at or after ``t`` (or was already
        alerting at ``t``), and the lines that showed it."""
        current: tuple[float, frozenset[str], list[str]] | None = None
        for event in self.events:
            if event[0] < t:
                current = event
                continue
            if figures & event[1]:
                return event[0], event[2]
        if current is not None and figures & current[1]:
            return t, current[2]
        return None

    def __enter__(self) -> AlertPoller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def live_check(
    reference: Sequence[Record],
    stationary: Sequence[Record],
    switched: Sequence[Record],
    *,
    model: str,
    window_seconds: float,
    min_documents: int,
    log_dir: Path,
    max_batch: int = 64,
    wait_windows: int = 4,
) -> dict[str, Any]:
    """One worker, one partition (so the order of the input is the order of processing), web
    port on: the reference records, then stationary ones, then records of other sections, all
    produced at once. Measures when the first switched record was published, when an
    embedding or label alert first read 1 on /metrics, and which window record first carried
    one. ``reference_size`` is ``len(reference)``; every other threshold keeps its default
    except ``alert_min_documents`` (short windows hold fewer documents).

    ``max_batch`` is lowered from 256 because the monitor sees a batch when it is published: on
    2 cores a 256-document batch took about 8 s, longer than a short window, so windows alternate
    between a whole batch and nothing (empty windows are not evaluated, so alerts stay right,
    but each counts in a delay measured in windows)."""
    from stream_trf.stream import clients
    from stream_trf.stream.broker import EmbeddedBroker, free_port
    from stream_trf.stream.local import WorkerProcess

    inputs = [*reference, *stationary, *switched]
    switched_ids = {r["id"] for r in switched}
    log_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    tag = uuid.uuid4().hex[:8]
    drift_figures = {f for g in DRIFT_GROUPS for f in GROUPS[g]}
    t_start = time.monotonic()
    with EmbeddedBroker(log_file=log_dir / "live-broker.log") as broker:
        settings = bench_settings(
            broker.url,
            model,
            partitions=1,
            max_batch=max_batch,
            web_port=port,
            window_seconds=window_seconds,
            reference_size=len(reference),
            alert_min_documents=min_documents,
            metrics_topic=f"bench-metrics-{tag}",
        )
        asyncio.run(
            clients.ensure_topics(
                settings,
                [
                    settings.input_topic,
                    settings.output_topic,
                    settings.dlq_topic,
                    settings.metrics_topic,
                ],
                1,
            )
        )
        worker = WorkerProcess(settings, log_dir / "live-worker.log")
        try:
            ready = worker.wait_ready(timeout=600)
            with AlertPoller(port) as poller:
                out = asyncio.run(
                    produce_and_collect(settings, inputs, timeout=600, idle_timeout=60)
                )
                deadline = time.monotonic() + wait_windows * window_seconds + 2
                while time.monotonic() < deadline and not any(
                    drift_figures & e[1] for e in poller.events
                ):
                    time.sleep(0.1)
                time.sleep(min(window_seconds, 3.0) + 1.0)  # the alert's window record, published
            windows = asyncio.run(
                clients.consume(settings, settings.metrics_topic, timeout=30, idle_timeout=3)
            )
        finally:
            code = worker.terminate()
    published = sorted(
        r["_kafka"]["timestamp_ms"] / 1000 for r in out if r.get("id") in switched_ids
    )
    t_switch = published[0] if published else None
    windows = sorted(windows, key=lambda w: w["window"]["end"])
    rows = []
    for w in windows:
        figures = [a["figure"] for a in w.get("alerts", [])]
        rows.append(
            {
                "start": w["window"]["start"],
                "end": w["window"]["end"],
                "documents": w["volume"]["documents"],
                "reference": w["reference"]["source"],
                "cosine": w["embedding"]["cosine_distance"],
                "p_value": w["embedding"]["p_value"],
                "js": w["labels"]["js_distance"],
                "psi": w["labels"]["psi"],
                "agreement": w["agreement"]["ratio"],
                "alerts": figures,
                "evaluated": w["volume"]["documents"] >= min_documents,
            }
        )
    change = next(
        (i for i, r in enumerate(rows) if t_switch is not None and r["end"] > t_switch), None
    )
    first_alert = next(
        (
            i
            for i, r in enumerate(rows)
            if change is not None and i >= change and drift_figures & set(r["alerts"])
        ),
        None,
    )
    pre_change = [
        r
        for r in rows
        if t_switch is not None and r["end"] <= t_switch and drift_figures & set(r["alerts"])
    ]
    seen = poller.first_after(t_switch, drift_figures) if t_switch is not None else None
    first_metric = seen[0] if seen else None
    return {
        "documents": {
            "reference": len(reference),
            "stationary": len(stationary),
            "switched": len(switched),
            "enriched": len(out),
        },
        "settings": {
            "window_seconds": window_seconds,
            "reference_size": len(reference),
            "alert_min_documents": min_documents,
            "partitions": 1,
            "max_batch": max_batch,
            "other thresholds": "defaults",
        },
        "worker_ready_seconds": round(ready, 1),
        "worker_exit_code": code,
        "seconds_total": round(time.monotonic() - t_start, 1),
        "metrics_polls": poller.polls,
        "first_switched_record_published_at": t_switch,
        "metrics_lines_at_first_alert": seen[1] if seen else [],
        "metrics_alert_changes": [
            {"after_switch_s": round(t - t_switch, 2) if t_switch else None, "alerting": sorted(f)}
            for t, f, _ in poller.events
        ],
        "delay_seconds_to_metrics_alert": (
            round(first_metric - t_switch, 2)
            if first_metric is not None and t_switch is not None
            else None
        ),
        "change_window_index": change,
        "first_alert_window_index": first_alert,
        "delay_windows": (
            first_alert - change + 1 if first_alert is not None and change is not None else None
        ),
        "delay_evaluated_windows": (
            sum(1 for r in rows[change : first_alert + 1] if r["evaluated"])
            if first_alert is not None and change is not None
            else None
        ),
        "first_alert_window": rows[first_alert] if first_alert is not None else None,
        "pre_change_windows_with_drift_alert": len(pre_change),
        "detected_on_metrics": first_metric is not None,
        "detected_in_window_record": first_alert is not None,
        "windows": rows,
    }
