"""The monitor: a worker's outputs in, one window record per model and window out.

It sees every enriched record and dead letter the worker publishes, keeps tumbling windows per
model (:mod:`.window`), and when a window closes compares it with the model's reference
(:mod:`.reference`, :mod:`.stats`), applies the alert rules (:mod:`.alerts`), updates the
Prometheus metrics (:mod:`.prometheus`) and returns the window record (``metrics.v1.json``)
for the metrics topic and the dashboard.

The reference is a file (``reference_file``) when one exists; otherwise the model's first
``reference_size`` documents, which are then saved to ``reference_file`` when it is set, so a
restarted worker keeps the same reference. Until a model has a reference its drift figures are
null.

It also keeps the worker's latest reading of the input topic's consumer lag (``observe_lag``,
:mod:`.lag`) for ``/metrics``, the dashboard and the progress line.

Thread safety: ``observe_*`` run on the event loop; ``tick`` may run in a thread (the two-sample
test costs tens of milliseconds). One lock guards the windows and references; the figures of
closed windows are computed outside it.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from . import stats
from .alerts import Alerts, Check, above, below, outside
from .config import MonitorConfig
from .lag import LagHistory, LagReading, describe
from .prometheus import Metrics
from .reference import Reference, ReferenceBuilder, model_key
from .window import ModelKey, WindowFigures, Windows, record_latency

log = logging.getLogger("stream_trf.monitor")

METRICS_SCHEMA = "stream_trf/metrics/v1"


def _round(value: float | None, digits: int = 6) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits)


class Monitor:
    """Windows, references, alerts and metrics of the models a worker serves."""

    def __init__(
        self,
        config: MonitorConfig | None = None,
        *,
        worker: str = "",
        metrics: Metrics | None = None,
        reference: Reference | None = None,
        started: float | None = None,
    ) -> None:
        self.config = config or MonitorConfig()
        self.worker = worker
        self.metrics = metrics if metrics is not None else Metrics()
        self.windows = Windows(
            self.config.window_seconds,
            started=started,
            vector_sample=self.config.max_per_side,
            dedupe_size=self.config.dedupe_size,
        )
        self.alerts = Alerts(self.config.alert_windows)
        self._lock = threading.Lock()
        self._history: deque[dict[str, Any]] = deque(maxlen=self.config.history_size)
        self._shared_reference = reference
        self._save_to: Path | None = None
        if reference is None and self.config.reference_file:
            path = Path(self.config.reference_file)
            if path.exists():
                self._shared_reference = Reference.load(path)
                log.info("reference %s: %d documents", path, self._shared_reference.documents)
            else:
                self._save_to = path
        self._references: dict[ModelKey, Reference] = {}
        self._builders: dict[ModelKey, ReferenceBuilder] = {}
        self._to_save: list[Reference] = []
        self._bandwidths: dict[int, float | None] = {}
        self._warned: set[ModelKey] = set()
        self._lag: LagReading | None = None  # the last successful reading
        self._lag_failure: LagReading | None = None  # the last reading, when it failed
        self._lag_history = LagHistory(self.config.history_size)

    # --- observing (event loop) --------------------------------------------------------------

    def observe_enriched(self, record: dict[str, Any], now: float | None = None) -> None:
        now = time.time() if now is None else now
        model = model_key(record)
        with self._lock:
            self.metrics.set_model(*model)
            if not self.windows.observe_enriched(record, now):
                self.metrics.duplicate(model[0])
                return
            self.metrics.document(
                model[0], int(record.get("n_words", 0)), record_latency(record, now)
            )
            self._build_reference(model, record)

    def observe_dead_letter(
        self, model: ModelKey, now: float | None = None, kind: str = "unknown"
    ) -> None:
        """A published dead letter; ``kind`` is its error type (the reason)."""
        now = time.time() if now is None else now
        with self._lock:
            self.metrics.set_model(*model)
            self.metrics.dead_letter(model[0], kind)
            self.windows.observe_dead_letter(model, now)

    def _build_reference(self, model: ModelKey, record: dict[str, Any]) -> None:
        if self._shared_reference is not None or model in self._references:
            return
        builder = self._builders.get(model)
        if builder is None:
            builder = self._builders[model] = ReferenceBuilder(
                self.config.reference_size,
                f"stream:first-{self.config.reference_size}",
                self.config.reference_vectors,
                model,
            )
        builder.add(record)
        if builder.complete:
            ref = self._references[model] = builder.build()
            del self._builders[model]
            log.info("reference of %s %s: the first %d documents", *model, ref.documents)
            if self._save_to is not None:
                self._to_save.append(ref)

    # --- closing (a timer, maybe in a thread) ------------------------------------------------

    def tick(self, now: float | None = None) -> list[dict[str, Any]]:
        """Close the windows that ended by ``now``; their window records, oldest first."""
        return self._report(now, flush=False)

    def flush(self, now: float | None = None) -> list[dict[str, Any]]:
        """Close every window now, the open ones as partial windows (``window.partial``): a
        stopping worker reports the documents of its last, unfinished window."""
        return self._report(now, flush=True)

    def _report(self, now: float | None, flush: bool) -> list[dict[str, Any]]:
        now = time.time() if now is None else now
        with self._lock:
            closed = [(f, False) for f in self.windows.close_due(now)]
            if flush:
                closed += [(f, True) for f in self.windows.close_all(now)]
            refs = [(f, self._reference_of(f["model"]), partial) for f, partial in closed]
            to_save, self._to_save = self._to_save, []
        for saved in to_save:
            self._save(saved)
        records = []
        for figures, ref_info, partial in refs:
            record = self._close(figures, ref_info, now)
            if partial:
                record["window"]["partial"] = True
            records.append(record)
        with self._lock:
            self._history.extend(records)
        return records

    def _reference_of(self, model: ModelKey) -> tuple[Reference | None, str, int]:
        if self._shared_reference is not None:
            ref = self._shared_reference
            if ref.model and ref.model.get("name") != model[0] and model not in self._warned:
                self._warned.add(model)
                log.warning(
                    "reference file %s was built from model %s, this worker serves %s",
                    self.config.reference_file,
                    ref.model.get("name"),
                    model[0],
                )
            return ref, ref.source or f"file:{self.config.reference_file}", ref.documents
        built = self._references.get(model)
        if built is not None:
            return built, built.source, built.documents
        builder = self._builders.get(model)
        n = builder.documents if builder else 0
        return None, f"building from the stream ({n}/{self.config.reference_size})", n

    def _save(self, ref: Reference) -> None:
        assert self._save_to is not None
        try:
            ref.save(self._save_to)
            log.info("reference saved to %s", self._save_to)
        except OSError as err:
            log.warning("could not save the reference to %s: %s", self._save_to, err)

    def _bandwidth(self, ref: Reference) -> float | None:
        key = id(ref)
        if key not in self._bandwidths and ref.vector_sample is not None:
            sample = ref.vector_sample[: self.config.max_per_side]
            self._bandwidths[key] = stats.median_bandwidth(sample)
        return self._bandwidths.get(key)

    def _close(
        self, f: WindowFigures, ref_info: tuple[Reference | None, str, int], now: float
    ) -> dict[str, Any]:
        ref, ref_source, ref_docs = ref_info
        th = self.config.thresholds
        model = f["model"]
        n = f["documents"]
        enough = n >= th.min_documents

        interval = stats.wilson_interval(f["agree"], f["compared"])
        ratio = f["agree"] / f["compared"] if f["compared"] else None
        total = sum(f["label_counts"].values())
        distribution = {k: v / total for k, v in sorted(f["label_counts"].items())} if total else {}
        confidence = f["score_sum"] / f["scored"] if f["scored"] else None

        js = psi = cosine = mmd2 = p_value = None
        text_drift: dict[str, float | None] = dict.fromkeys(f["text"])
        text_se: dict[str, float | None] = dict.fromkeys(f["text"])
        if ref is not None:
            ref_labels = ref.label_distribution
            if distribution and ref_labels:
                js = stats.js_distance(ref_labels, distribution)
                psi = stats.psi(ref_labels, distribution)
            if f["mean_vector"] is not None and ref.mean_vector is not None:
                cosine = stats.cosine_distance(f["mean_vector"], ref.mean_vector)
            if (
                f["vectors"] is not None
                and ref.vector_sample is not None
                and f["vectors"].shape[1] == ref.vector_sample.shape[1]
            ):
                result = stats.mmd_test(
                    ref.vector_sample,
                    f["vectors"],
                    bandwidth=self._bandwidth(ref),
                    permutations=self.config.permutations,
                    max_per_side=self.config.max_per_side,
                )
                if result is not None:
                    mmd2, p_value = result
            for name, value in f["text"].items():
                base = ref.text.get(name)
                if value is None or base is None:
                    continue
                se_w = f["text_se"].get(name) or 0.0
                se_r = ref.text_se.get(name) or 0.0
                if name.endswith("_share"):
                    text_drift[name] = value - base
                    text_se[name] = math.hypot(se_w, se_r)
                elif base > 0:
                    text_drift[name] = value / base - 1.0
                    # delta method for value / base
                    text_se[name] = math.hypot(se_w, value / base * se_r) / base

        checks = self._checks(f, ref, enough, ratio, interval, js, psi, confidence, cosine)
        floor = next(c.threshold for c in checks if c.figure == "agreement")
        checks.append(below("embedding_p_value", p_value, th.embedding_p_value_min, enough))
        for name, value in text_drift.items():
            limit = th.text_share_max if name.endswith("_share") else th.text_relative_max
            # beyond only when the change is both large and larger than the window's noise
            limit = max(limit, th.text_noise_z * (text_se[name] or 0.0))
            checks.append(outside(name, value, limit, enough))
        with self._lock:
            active = self.alerts.update(model, checks, now)

        p50_p99 = stats.quantiles(f["latencies"], (0.5, 0.99))
        record: dict[str, Any] = {
            "schema": METRICS_SCHEMA,
            "model": {"name": model[0], "version": model[1]},
            "worker": self.worker,
            "window": {"start": f["start"], "end": f["end"], "seconds": f["seconds"]},
            "volume": {
                "documents": n,
                "words": f["words"],
                "dead_letters": f["dead_letters"],
                "duplicates": f["duplicates"],
            },
            "agreement": {
                "compared": f["compared"],
                "agree": f["agree"],
                "ratio": _round(ratio),
                "lower": _round(interval[0]) if interval else None,
                "upper": _round(interval[1]) if interval else None,
            },
            "labels": {
                "distribution": {k: _round(v) for k, v in distribution.items()},
                "mean_confidence": _round(confidence),
                "js_distance": _round(js),
                "psi": _round(psi),
            },
            "embedding": {
                "cosine_distance": _round(cosine, 8),
                "mmd2": _round(mmd2, 8),
                "p_value": _round(p_value, 8),
            },
            "text": {k: _round(v) for k, v in f["text"].items()},
            "latency": {
                "p50_s": _round(p50_p99[0]) if p50_p99 else None,
                "p99_s": _round(p50_p99[1]) if p50_p99 else None,
                "docs_per_second": _round(n / f["seconds"]) if f["seconds"] > 0 else None,
            },
            "reference": {"documents": ref_docs, "source": ref_source},
            "alerts": [
                {**a, "value": _round(a["value"]), "threshold": _round(a["threshold"])}
                for a in active
            ],
        }
        self.metrics.window(record, {a["figure"] for a in active}, text_drift)
        self.metrics.agreement_bound(model[0], floor)
        return record

    def _checks(
        self,
        f: WindowFigures,
        ref: Reference | None,
        enough: bool,
        ratio: float | None,
        interval: tuple[float, float] | None,
        js: float | None,
        psi: float | None,
        confidence: float | None,
        cosine: float | None,
    ) -> list[Check]:
        th = self.config.thresholds
        # Agreement: beyond when even the interval's upper bound is under the floor, so a small
        # window's bad luck does not count. The floor is fixed, or the reference's ratio − drop.
        floor: float | None = th.agreement_min if th.agreement_min > 0 else None
        if floor is None and ref is not None and ref.agreement_ratio is not None:
            floor = ref.agreement_ratio - th.agreement_max_drop
        agreement = Check("agreement", ratio, floor, None)
        if floor is not None and interval is not None and f["compared"] >= th.min_documents:
            agreement = Check("agreement", ratio, floor, interval[1] < floor)
        ref_conf = ref.mean_confidence if ref is not None else None
        conf_floor = None if ref_conf is None else ref_conf - th.confidence_max_drop
        # Label drift: the JS distance must be beyond its threshold and beyond what sampling
        # alone explains at the window's and the reference's sizes (small windows are noisy).
        js_max = th.label_js_max
        ref_labels = ref.label_counts if ref is not None else {}
        noise = stats.js_noise_bound(
            sum(f["label_counts"].values()),
            sum(ref_labels.values()),
            len(set(ref_labels) | set(f["label_counts"])),
            th.label_noise_alpha,
        )
        if noise is not None:
            js_max = max(js_max, noise)
        return [
            agreement,
            above("label_js", js, js_max, enough),
            above("label_psi", psi, th.label_psi_max, enough),
            Check(
                "confidence",
                confidence,
                conf_floor,
                (confidence < conf_floor)
                if enough and confidence is not None and conf_floor is not None
                else None,
            ),
            above("embedding_cosine", cosine, th.embedding_cosine_max, enough),
        ]

    # --- consumer lag (event loop) -----------------------------------------------------------

    def observe_lag(self, reading: LagReading) -> None:
        """Keep a lag reading; a failed one is shown as such, the last good one stays."""
        with self._lock:
            self._lag_history.add(reading)
            if reading.error:
                self._lag_failure = reading
            else:
                self._lag, self._lag_failure = reading, None
        self.metrics.consumer_lag(reading)

    def lag(self) -> dict[str, Any] | None:
        """The latest lag reading for the dashboard: the last good reading's partitions, the
        error of the latest reading if it failed, and the recent totals (None: never read)."""
        with self._lock:
            good, failed = self._lag, self._lag_failure
            history = [[t, v] for t, v in self._lag_history.points]
        latest = good or failed
        if latest is None:
            return None
        out = latest.to_json()
        if failed is not None:
            out["error"], out["error_at"] = failed.error, failed.at
        out["history"] = history
        return out

    def lag_summary(self, now: float | None = None) -> str:
        """The lag in a few words, for the progress line."""
        with self._lock:
            latest = self._lag_failure or self._lag
        return describe(latest, now)

    # --- reading -----------------------------------------------------------------------------

    def history(self) -> list[dict[str, Any]]:
        """The last window records (all models), oldest first."""
        with self._lock:
            return list(self._history)

    def current_alerts(self) -> list[dict[str, Any]]:
        """Active alerts of every model, each with its model and since when."""
        with self._lock:
            return self.alerts.active()

    def reference(self, model: ModelKey) -> Reference | None:
        with self._lock:
            return self._shared_reference or self._references.get(model)


__all__ = ["METRICS_SCHEMA", "Monitor", "MonitorConfig"]
