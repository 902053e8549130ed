"""Prometheus exposition: parses, names every metric of the contract, counts what happened."""

from __future__ import annotations

import math
import re

from monitor_helpers import SHIFTED, RecordStream
from prometheus_client.parser import text_string_to_metric_families

from stream_trf.monitor.alerts import FIGURES, Thresholds
from stream_trf.monitor.lag import LagReading, partition_lag
from stream_trf.monitor.monitor import Monitor, MonitorConfig
from stream_trf.monitor.prometheus import METRIC_NAMES, Metrics


def _samples(metrics: Metrics) -> tuple[set[str], dict[tuple[str, tuple], float]]:
    names: set[str] = set()
    values: dict[tuple[str, tuple], float] = {}
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        names.add(family.name)
        for s in family.samples:
            names.add(s.name)
            values[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return names, values


def _monitor() -> tuple[Monitor, Metrics]:
    metrics = Metrics()
    config = MonitorConfig(
        window_seconds=10.0,
        reference_size=100,
        alert_windows=1,
        permutations=50,
        thresholds=Thresholds(min_documents=50),
    )
    return Monitor(config, metrics=metrics, started=0.0), metrics


def test_metric_names_follow_the_conventions() -> None:
    assert len(set(METRIC_NAMES)) == len(METRIC_NAMES)
    for name in METRIC_NAMES:
        assert re.fullmatch(r"stream_trf_[a-z0-9_]+", name)
    counters = [n for n in METRIC_NAMES if n.endswith("_total")]
    assert len(counters) == 6
    assert "stream_trf_model_info" in METRIC_NAMES
    for required in (
        "stream_trf_agreement_ratio",
        "stream_trf_embedding_drift",
        "stream_trf_label_drift",
        "stream_trf_drift_alert",
    ):
        assert required in METRIC_NAMES


def test_the_exposition_parses_and_holds_every_metric() -> None:
    monitor, metrics = _monitor()
    stream = RecordStream()
    for i in range(120):
        monitor.observe_enriched(stream.record(now=i * 0.05, agrees=i % 5 != 0), i * 0.05)
    monitor.observe_dead_letter(("m", "1"), 7.0, kind="tombstone")
    dup = stream.record(offset=3)
    monitor.observe_enriched(dup, 8.0)
    monitor.tick(10.0)
    for i in range(60):  # a shifted window: alerts at once (K = 1)
        t = 10.0 + i * 0.1
        monitor.observe_enriched(stream.record(now=t, label_p=SHIFTED, shift=1.0), t)
    monitor.tick(20.0)
    lag = partition_lag(0, ends=(10,), committed=4, owned=True, position=8)
    monitor.observe_lag(LagReading("in", "g", 21.0, (lag,)))
    names, values = _samples(metrics)
    missing = set(METRIC_NAMES) - names
    assert not missing, missing
    m = (("model", "m"),)
    assert values[("stream_trf_documents_total", m)] == 180
    assert values[("stream_trf_dead_letters_total", (("kind", "tombstone"), ("model", "m")))] == 1
    assert values[("stream_trf_unpublished_total", ())] == 0
    assert values[("stream_trf_duplicates_total", m)] == 1
    assert values[("stream_trf_latency_seconds_count", m)] == 180
    assert values[("stream_trf_model_info", (("model", "m"), ("version", "1")))] == 1
    assert values[("stream_trf_window_end_timestamp_seconds", m)] == 20.0
    assert values[("stream_trf_throughput_docs_per_second", m)] == 6.0
    assert math.isnan(values[("stream_trf_agreement_ratio", m)])  # no production labels
    assert values[("stream_trf_embedding_drift", m)] > 0.05
    assert values[("stream_trf_label_drift", (("measure", "js"), ("model", "m")))] > 0.25
    for figure in ("mean_words", "mean_sentences", "windowed_share", "unknown_share"):
        assert ("stream_trf_text_drift", (("figure", figure), ("model", "m"))) in values
    alerts = {
        dict(labels)["figure"]: v
        for (name, labels), v in values.items()
        if name == "stream_trf_drift_alert"
    }
    assert set(alerts) == set(FIGURES)
    assert alerts["embedding_cosine"] == 1 and alerts["label_js"] == 1
    assert alerts["agreement"] == 0
    # the floor: the reference's agreement (4 in 5 of its first 100 docs) minus the 0.05 drop
    assert math.isclose(values[("stream_trf_agreement_floor", m)], 0.8 - 0.05)
    tp = (("partition", "0"), ("topic", "in"))
    assert values[("stream_trf_consumer_lag", tp)] == 6
    assert values[("stream_trf_consumer_position", tp)] == 8


def test_each_metrics_object_has_its_own_registry() -> None:
    a, b = Metrics(), Metrics()  # no "duplicated timeseries" error from a shared registry
    a.document("m", 5, 0.1)
    _, values = _samples(b)
    assert ("stream_trf_documents_total", (("model", "m"),)) not in values
