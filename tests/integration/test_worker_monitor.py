"""A real worker's monitoring over real sockets: /metrics, the dashboard data, the metrics topic."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from pathlib import Path

import jsonschema
from prometheus_client.parser import text_string_to_metric_families
from worker_harness import consume_until, create_topics, fresh_settings, ids_of, produce_json

from stream_trf import schemas
from stream_trf.cli import main
from stream_trf.monitor.reference import Reference
from stream_trf.stream import clients
from stream_trf.stream.broker import free_port
from stream_trf.stream.local import WorkerProcess


def _documents_total(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "stream_trf_documents_total":
                return float(sample.value)
    return 0.0


def test_a_worker_serves_metrics_and_publishes_window_records(
    broker, tiny_models, tmp_path: Path
) -> None:
    port = free_port()
    settings = fresh_settings(
        broker.url,
        str(tiny_models["bert"]),
        web_port=port,
        window_seconds=2.0,
        reference_size=10,
    )
    settings = settings.with_(metrics_topic="metrics-" + settings.output_topic)
    create_topics(settings)
    asyncio.run(clients.ensure_topics(settings, [settings.metrics_topic], 1))
    docs = [
        {"id": f"m{i}", "text": f"Document {i} talks about alpha and beta. Then gamma {i}."}
        for i in range(40)
    ]
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    try:
        worker.wait_ready()
        produce_json(settings, docs)
        out = consume_until(settings, settings.output_topic, lambda r: ids_of(r) >= ids_of(docs))
        assert ids_of(out) >= ids_of(docs)
        deadline = time.monotonic() + 20
        while _documents_total(port) < len(docs) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _documents_total(port) == len(docs)
        windows = consume_until(
            settings,
            settings.metrics_topic,
            lambda r: sum(w.get("volume", {}).get("documents", 0) for w in r) >= len(docs),
            timeout=30,
        )
        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}/dashboard/windows.json", timeout=5
        ) as resp:
            served = json.load(resp)
    finally:
        worker.terminate()
    validator = jsonschema.Draft202012Validator(schemas.load("metrics"))
    for w in windows:
        w.pop("_kafka")
        validator.validate(w)
    assert sum(w["volume"]["documents"] for w in windows) == len(docs)
    assert all(w["model"]["name"] == Path(settings.model).name for w in windows)
    assert all(w["window"]["end"] - w["window"]["start"] <= 2.0 for w in windows)
    assert any(w["reference"]["source"] == "stream:first-10" for w in windows)
    assert served["windows"] and set(served) == {"windows", "alerts", "lag"}
    # The enriched topic makes a reference too (stream-trf reference --from-topic).
    ref_path = tmp_path / "ref.json"
    argv = ["reference", "--from-topic", settings.output_topic, "--broker", broker.url]
    assert main([*argv, "--limit", "25", "--output", str(ref_path), "--idle-timeout", "3"]) == 0
    ref = Reference.load(ref_path)
    assert ref.documents == 25 and ref.source == f"topic:{settings.output_topic}"
    assert ref.vector_sample is not None and ref.vector_sample.shape[0] == 25


def test_a_stopping_worker_publishes_its_unfinished_window(
    broker, tiny_models, tmp_path: Path
) -> None:
    """SIGTERM in the middle of a window (an hour long here): its documents still reach the
    metrics topic, in one record marked partial."""
    settings = fresh_settings(
        broker.url, str(tiny_models["bert"]), window_seconds=3600.0, reference_size=5
    )
    settings = settings.with_(metrics_topic="metrics-" + settings.output_topic)
    create_topics(settings)
    asyncio.run(clients.ensure_topics(settings, [settings.metrics_topic], 1))
    docs = [{"id": f"p{i}", "text": f"Short document number {i}. It ends here."} for i in range(12)]
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    try:
        worker.wait_ready()
        produce_json(settings, docs)
        consume_until(settings, settings.output_topic, lambda r: ids_of(r) >= ids_of(docs))
        assert worker.terminate(timeout=60) == 0
    finally:
        worker.stop()
    windows = consume_until(settings, settings.metrics_topic, lambda r: len(r) >= 1, timeout=20)
    assert len(windows) == 1
    (window,) = windows
    window.pop("_kafka")
    jsonschema.Draft202012Validator(schemas.load("metrics")).validate(window)
    assert window["window"]["partial"] is True
    assert window["window"]["seconds"] < 3600
    assert window["volume"]["documents"] == len(docs)
