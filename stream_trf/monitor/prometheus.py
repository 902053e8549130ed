"""The monitor's figures as Prometheus metrics, in a registry of their own.

A registry per :class:`Metrics` (not prometheus_client's global one), so that several monitors
in one process (tests) do not collide, and ``/metrics`` shows exactly these metrics. Counters
and the latency histogram move with every record; gauges hold the last closed window's
figures, NaN where a figure could not be computed. The names are a contract: Grafana
dashboards and alert rules query them (``METRIC_NAMES``).

The consumer-lag gauges (``stream_trf_consumer_*``) hold the last reading of the input topic's
offsets (``monitor/lag.py``). Every worker reports every partition of the topic, so aggregate
them across replicas with ``max by (topic, partition)``, never a plain ``sum``.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from .alerts import FIGURES
from .lag import LagReading

CONTENT_TYPE = CONTENT_TYPE_LATEST

METRIC_NAMES = (
    "stream_trf_model_info",
    "stream_trf_documents_total",
    "stream_trf_words_total",
    "stream_trf_dead_letters_total",
    "stream_trf_unpublished_total",
    "stream_trf_publish_retries_total",
    "stream_trf_duplicates_total",
    "stream_trf_latency_seconds",
    "stream_trf_agreement_ratio",
    "stream_trf_agreement_ratio_lower",
    "stream_trf_agreement_ratio_upper",
    "stream_trf_agreement_floor",
    "stream_trf_embedding_drift",
    "stream_trf_embedding_drift_p_value",
    "stream_trf_label_drift",
    "stream_trf_confidence_mean",
    "stream_trf_text_drift",
    "stream_trf_throughput_docs_per_second",
    "stream_trf_drift_alert",
    "stream_trf_window_end_timestamp_seconds",
    "stream_trf_consumer_lag",
    "stream_trf_consumer_end_offset",
    "stream_trf_consumer_committed_offset",
    "stream_trf_consumer_position",
    "stream_trf_consumer_lag_timestamp_seconds",
)

# From 10 ms (one short doc on a GPU) to 30 s (a backlog on a CPU).
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0)

TEXT_FIGURES = ("mean_words", "mean_sentences", "windowed_share", "unknown_share")


def _num(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else math.nan


class Metrics:
    """Every stream_trf metric, registered in ``self.registry``."""

    def __init__(self) -> None:
        self._models: set[tuple[str, str]] = set()
        self._per_document: dict[str, tuple[Any, Any, Any]] = {}
        self._partitions: set[tuple[str, str]] = set()  # (topic, partition) of the lag gauges
        self._positions: set[tuple[str, str]] = set()
        r = self.registry = CollectorRegistry(auto_describe=True)
        m = ("model",)
        self.model_info = Gauge(
            "stream_trf_model_info",
            "model served by this worker (1)",
            ("model", "version"),
            registry=r,
        )
        self.documents = Counter(
            "stream_trf_documents_total", "enriched documents (duplicates excluded)", m, registry=r
        )
        self.words = Counter(
            "stream_trf_words_total", "words of the enriched documents", m, registry=r
        )
        self.dead_letters = Counter(
            "stream_trf_dead_letters_total",
            "records published as dead letters, by kind (the dead letter's error type)",
            ("model", "kind"),
            registry=r,
        )
        self.unpublished_outputs = Counter(
            "stream_trf_unpublished_total",
            "dead letters the broker refused for good even without their payload: logged and "
            "given up (their input offsets are committed all the same)",
            registry=r,
        )
        self.publish_retries = Counter(
            "stream_trf_publish_retries_total",
            "rounds of sending outputs again after a retriable broker error",
            registry=r,
        )
        self.duplicates = Counter(
            "stream_trf_duplicates_total",
            "enriched records whose input (topic, partition, offset) was already seen",
            m,
            registry=r,
        )
        self.latency = Histogram(
            "stream_trf_latency_seconds",
            "input record's broker timestamp to its enriched record's acknowledgement",
            m,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.agreement = Gauge(
            "stream_trf_agreement_ratio",
            "share of compared records where the production label equals the transformer's "
            "(last window)",
            m,
            registry=r,
        )
        self.agreement_lower = Gauge(
            "stream_trf_agreement_ratio_lower",
            "Wilson 95% lower bound (last window)",
            m,
            registry=r,
        )
        self.agreement_upper = Gauge(
            "stream_trf_agreement_ratio_upper",
            "Wilson 95% upper bound (last window)",
            m,
            registry=r,
        )
        self.embedding = Gauge(
            "stream_trf_embedding_drift",
            "cosine distance between the window's and the reference's mean doc vector",
            m,
            registry=r,
        )
        self.embedding_p = Gauge(
            "stream_trf_embedding_drift_p_value",
            "permutation p-value of the MMD two-sample test, window vs reference doc vectors",
            m,
            registry=r,
        )
        self.label = Gauge(
            "stream_trf_label_drift",
            "transformer label distribution vs the reference: measure=js (Jensen-Shannon "
            "distance, base 2) or psi (population stability index)",
            ("model", "measure"),
            registry=r,
        )
        self.confidence = Gauge(
            "stream_trf_confidence_mean",
            "mean transformer label score (last window)",
            m,
            registry=r,
        )
        self.text = Gauge(
            "stream_trf_text_drift",
            "text figures vs the reference: relative change (window/reference - 1) of "
            "mean_words and mean_sentences, difference of windowed_share and unknown_share",
            ("model", "figure"),
            registry=r,
        )
        self.throughput = Gauge(
            "stream_trf_throughput_docs_per_second",
            "documents per second (last window)",
            m,
            registry=r,
        )
        self.alert = Gauge(
            "stream_trf_drift_alert",
            "1 while the figure has been beyond its threshold for the configured windows",
            ("model", "figure"),
            registry=r,
        )
        self.agreement_floor = Gauge(
            "stream_trf_agreement_floor",
            "agreement below which the worker alerts when even the Wilson upper bound is under "
            "it: the fixed floor, or the reference's ratio minus the allowed drop (last window)",
            m,
            registry=r,
        )
        self.window_end = Gauge(
            "stream_trf_window_end_timestamp_seconds",
            "end of the last closed window",
            m,
            registry=r,
        )
        tp = ("topic", "partition")
        self.lag = Gauge(
            "stream_trf_consumer_lag",
            "records of the input topic's partition not yet committed by the consumer group "
            "(log-end minus committed offset); every worker reports every partition: aggregate "
            "with max by (topic, partition)",
            tp,
            registry=r,
        )
        self.end_offset = Gauge(
            "stream_trf_consumer_end_offset",
            "log-end offset of the input topic's partition (the next record's offset)",
            tp,
            registry=r,
        )
        self.committed_offset = Gauge(
            "stream_trf_consumer_committed_offset",
            "the consumer group's committed offset of the partition (absent until it commits)",
            tp,
            registry=r,
        )
        self.position = Gauge(
            "stream_trf_consumer_position",
            "this worker's next fetch offset, only for the partitions this worker owns",
            tp,
            registry=r,
        )
        self.lag_read = Gauge(
            "stream_trf_consumer_lag_timestamp_seconds",
            "when the consumer lag was last read from the broker",
            ("topic",),
            registry=r,
        )

    # --- per record --------------------------------------------------------------------------

    def set_model(self, name: str, version: str) -> None:
        if (name, version) not in self._models:
            self._models.add((name, version))
            self.model_info.labels(name, version).set(1)

    def document(self, model: str, words: int, latency: float | None) -> None:
        children = self._per_document.get(model)
        if children is None:  # labels() costs a lock and a lookup: once per model
            children = self._per_document[model] = (
                self.documents.labels(model),
                self.words.labels(model),
                self.latency.labels(model),
            )
        documents, words_total, latency_seconds = children
        documents.inc()
        words_total.inc(max(words, 0))
        if latency is not None:
            latency_seconds.observe(latency)

    def duplicate(self, model: str) -> None:
        self.duplicates.labels(model).inc()

    def dead_letter(self, model: str, kind: str = "unknown") -> None:
        self.dead_letters.labels(model, kind).inc()

    def unpublished(self) -> None:
        self.unpublished_outputs.inc()

    def publish_retry(self) -> None:
        self.publish_retries.inc()

    # --- per window --------------------------------------------------------------------------

    def window(
        self, record: dict[str, Any], active: set[str], text_drift: dict[str, float | None]
    ) -> None:
        """Set the gauges from one window record (see metrics.v1.json), the names of the
        model's active alerts and the window's text drift."""
        model = record["model"]["name"]
        agreement = record["agreement"]
        self.agreement.labels(model).set(_num(agreement["ratio"]))
        self.agreement_lower.labels(model).set(_num(agreement["lower"]))
        self.agreement_upper.labels(model).set(_num(agreement["upper"]))
        embedding = record["embedding"]
        self.embedding.labels(model).set(_num(embedding["cosine_distance"]))
        self.embedding_p.labels(model).set(_num(embedding["p_value"]))
        labels = record["labels"]
        self.label.labels(model, "js").set(_num(labels["js_distance"]))
        self.label.labels(model, "psi").set(_num(labels["psi"]))
        self.confidence.labels(model).set(_num(labels["mean_confidence"]))
        for figure in TEXT_FIGURES:
            self.text.labels(model, figure).set(_num(text_drift.get(figure)))
        self.throughput.labels(model).set(_num(record["latency"]["docs_per_second"]))
        for figure in FIGURES:
            self.alert.labels(model, figure).set(1.0 if figure in active else 0.0)
        self.window_end.labels(model).set(_num(record["window"]["end"]))

    def agreement_bound(self, model: str, floor: float | None) -> None:
        """The floor the last window's agreement was checked against (NaN: none yet)."""
        self.agreement_floor.labels(model).set(_num(floor))

    # --- consumer lag ------------------------------------------------------------------------

    def consumer_lag(self, reading: LagReading) -> None:
        """Set the lag gauges from a successful reading; a failed one changes nothing (the
        timestamp gauge then stops moving). Partitions that left the reading, and positions of
        partitions this worker no longer owns, are removed rather than left stale."""
        if reading.error:
            return
        seen: set[tuple[str, str]] = set()
        owned: set[tuple[str, str]] = set()
        for p in reading.partitions:
            key = (reading.topic, str(p.partition))
            seen.add(key)
            self.lag.labels(*key).set(p.lag)
            self.end_offset.labels(*key).set(p.end)
            if p.committed is not None:
                self.committed_offset.labels(*key).set(p.committed)
            if p.owned and p.position is not None:
                owned.add(key)
                self.position.labels(*key).set(p.position)
        for key in self._partitions - seen:
            for gauge in (self.lag, self.end_offset, self.committed_offset):
                with contextlib.suppress(KeyError):  # committed may never have been set
                    gauge.remove(*key)
        for key in self._positions - owned:
            self.position.remove(*key)
        self._partitions, self._positions = seen, owned
        self.lag_read.labels(reading.topic).set(reading.at)

    def exposition(self) -> bytes:
        """The Prometheus text format, for ``GET /metrics`` (content type ``CONTENT_TYPE``)."""
        return bytes(generate_latest(self.registry))


__all__ = ["CONTENT_TYPE", "LATENCY_BUCKETS", "METRIC_NAMES", "TEXT_FIGURES", "Metrics"]
