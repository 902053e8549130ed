"""Tumbling windows of a worker's outputs, one series per model (name, version).

Windows are aligned to multiples of their size since the epoch, so the windows of several
workers line up and a dashboard can add them. A window accumulates running sums and bounded
samples only (never the records), and closes into a :class:`WindowFigures`: the raw material the
monitor turns into figures. A window closes when the clock passes its end, also when nothing
arrived in it, so a quiet stream shows as zeros rather than as a gap.

Duplicates (at-least-once delivery): an enriched record whose ``source`` (input topic,
partition, offset) was already seen among the last ``dedupe_size`` records of the worker is
counted as a duplicate and left out of every other figure, so that redelivered batches do not
bias the statistics. A worker sees only its own outputs, so duplicates made by another worker
are counted there, not here.
"""

from __future__ import annotations

import math
import random
from collections import Counter, OrderedDict
from typing import Any, TypedDict

import numpy as np
import numpy.typing as npt

from .reference import TextSums, VectorReservoir, model_key, source_key, tally

ModelKey = tuple[str, str]  # (name, version)

LATENCY_SAMPLE = 20_000  # latencies kept per window for the quantiles (a uniform sample)


class WindowFigures(TypedDict):
    """One closed window of one model, before comparison with a reference."""

    model: ModelKey
    start: float  # epoch seconds; the monitor's start when it began within the window
    end: float
    seconds: float
    documents: int  # unique enriched records (duplicates excluded)
    words: int
    dead_letters: int
    duplicates: int
    compared: int  # records whose production label could be compared with the transformer's
    agree: int
    label_counts: dict[str, int]
    score_sum: float
    scored: int
    mean_vector: npt.NDArray[np.float64] | None
    vectors: npt.NDArray[np.float32] | None  # a uniform sample of the window's doc vectors
    text: dict[str, float | None]
    text_se: dict[str, float | None]  # standard errors of the text figures
    latencies: list[float]  # seconds, a uniform sample


def record_latency(record: dict[str, Any], now: float) -> float | None:
    """Seconds from the input record's broker timestamp to ``now`` (when the worker saw the
    output acknowledged); the batch time where the input had no timestamp."""
    timings = record.get("timings") or {}
    ingested = timings.get("ingested_at_ms")
    if isinstance(ingested, (int, float)) and ingested > 0:
        return max(0.0, now - float(ingested) / 1000.0)
    batch = timings.get("batch_ms")
    if isinstance(batch, (int, float)):
        return max(0.0, float(batch) / 1000.0)
    return None


class _Window:
    def __init__(self, start: float, end: float, vector_sample: int, seed: int) -> None:
        self.start = start
        self.end = end
        self.dead_letters = 0
        self.duplicates = 0
        self.compared = 0
        self.agree = 0
        self.labels: Counter[str] = Counter()
        self.score_sum = 0.0
        self.scored = 0
        self.text = TextSums()
        self.vectors = VectorReservoir(vector_sample, seed=seed)
        self.latencies: list[float] = []
        self._latency_seen = 0
        self._rng = random.Random(seed)  # one draw per record: Python's, not numpy's (µs)

    def add(self, record: dict[str, Any], now: float) -> None:
        tally(self, record)
        latency = record_latency(record, now)
        if latency is not None:
            self._latency_seen += 1
            if len(self.latencies) < LATENCY_SAMPLE:
                self.latencies.append(latency)
            else:
                j = self._rng.randrange(self._latency_seen)
                if j < LATENCY_SAMPLE:
                    self.latencies[j] = latency

    def close(self, model: ModelKey) -> WindowFigures:
        return WindowFigures(
            model=model,
            start=self.start,
            end=self.end,
            seconds=self.end - self.start,
            documents=self.text.documents,
            words=self.text.words,
            dead_letters=self.dead_letters,
            duplicates=self.duplicates,
            compared=self.compared,
            agree=self.agree,
            label_counts=dict(self.labels),
            score_sum=self.score_sum,
            scored=self.scored,
            mean_vector=self.vectors.mean(),
            vectors=self.vectors.sample(),
            text=self.text.figures(),
            text_se=self.text.standard_errors(),
            latencies=list(self.latencies),
        )


class Windows:
    """Tumbling windows of ``size`` seconds per model; :meth:`close_due` hands back the closed
    ones. Not thread-safe: the monitor serialises calls."""

    def __init__(
        self,
        size: float = 60.0,
        *,
        started: float | None = None,
        vector_sample: int = 200,
        dedupe_size: int = 50_000,
    ) -> None:
        if size <= 0:
            raise ValueError(f"window size must be positive, got {size}")
        self.size = float(size)
        self.started = started
        self.vector_sample = vector_sample
        self.dedupe_size = dedupe_size
        self._open: dict[ModelKey, _Window] = {}
        self._closed: list[WindowFigures] = []
        # hashes of (model, source): about 100 bytes an entry instead of about 450
        self._recent: OrderedDict[int, None] = OrderedDict()

    def _aligned(self, now: float) -> float:
        return math.floor(now / self.size) * self.size

    def _new(self, now: float) -> _Window:
        if self.started is None:
            self.started = now
        start = self._aligned(now)
        return _Window(
            max(start, self.started), start + self.size, self.vector_sample, seed=int(start)
        )

    def _window(self, model: ModelKey, now: float) -> _Window:
        w = self._open.get(model)
        if w is not None and now >= w.end:
            self._closed.append(w.close(model))
            w = None
        if w is None:
            w = self._open[model] = self._new(now)
        return w

    def observe_enriched(self, record: dict[str, Any], now: float) -> bool:
        """Count one enriched record; False when it is a duplicate (counted as such only)."""
        model = model_key(record)
        w = self._window(model, now)
        src = source_key(record)
        if src is not None:
            key = hash((model, src))
            if key in self._recent:
                self._recent.move_to_end(key)
                w.duplicates += 1
                return False
            self._recent[key] = None
            if len(self._recent) > self.dedupe_size:
                self._recent.popitem(last=False)
        w.add(record, now)
        return True

    def observe_dead_letter(self, model: ModelKey, now: float) -> None:
        self._window(model, now).dead_letters += 1

    def close_due(self, now: float) -> list[WindowFigures]:
        """Every window that ended by ``now``; each of their models gets a fresh, empty window
        (which closes in turn even if nothing arrives)."""
        if self.started is None:
            self.started = now
        for model, w in list(self._open.items()):
            if now >= w.end:
                self._closed.append(w.close(model))
                self._open[model] = self._new(now)
        closed, self._closed = self._closed, []
        return sorted(closed, key=lambda f: (f["end"], f["model"]))

    def close_all(self, now: float) -> list[WindowFigures]:
        """Close every open window at ``now``, before its end (a stopping worker): the
        documents it holds are reported instead of lost. No window is opened after them."""
        for model, w in list(self._open.items()):
            w.end = min(w.end, max(now, w.start))
            self._closed.append(w.close(model))
        self._open.clear()
        closed, self._closed = self._closed, []
        return sorted(closed, key=lambda f: (f["end"], f["model"]))

    def models(self) -> list[ModelKey]:
        return list(self._open)


__all__ = ["ModelKey", "WindowFigures", "Windows", "record_latency"]
