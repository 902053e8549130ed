"""Synthetic enriched records for the monitor's tests: the fields the monitor reads, with
labels and doc vectors drawn from distributions the test chooses."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

LABELS = ("games", "net", "text", "science", "sound")
STATIONARY = (0.3, 0.25, 0.2, 0.15, 0.1)
SHIFTED = (0.02, 0.03, 0.05, 0.1, 0.8)
WIDTH = 16


class RecordStream:
    """Enriched records of one model, each with a fresh source offset."""

    def __init__(self, name: str = "m", version: str = "1", seed: int = 0) -> None:
        self.name, self.version = name, version
        self.rng = np.random.default_rng(seed)
        self.offset = 0

    def record(
        self,
        *,
        label_p: Sequence[float] = STATIONARY,
        shift: float = 0.0,
        agrees: bool | None = None,
        words: int | None = None,
        unknown: int | None = 0,
        wordpieces: int | None = None,
        windowed: int = 0,
        now: float | None = None,
        offset: int | None = None,
    ) -> dict[str, Any]:
        if offset is None:
            offset = self.offset
            self.offset += 1
        label = str(self.rng.choice(LABELS, p=label_p))
        vector = self.rng.normal(size=WIDTH) + shift
        vector[0] += 3.0  # a common direction, as real doc vectors have
        n_words = int(self.rng.integers(5, 30)) if words is None else words
        rec: dict[str, Any] = {
            "schema": "stream_trf/enriched/v1",
            "id": f"d{offset}",
            "meta": None,
            "model": {"name": self.name, "version": self.version},
            "source": {"topic": "in", "partition": offset % 3, "offset": offset},
            "sentences": [[0, 10]] * int(self.rng.integers(1, 4)),
            "n_tokens": n_words + 2,
            "n_words": n_words,
            "n_wordpieces": n_words + 4 if wordpieces is None else wordpieces,
            "windowed_wordpieces": windowed,
            "doc_vector": vector.astype(np.float32).tolist(),
            "cats": {k: (0.9 if k == label else 0.1 / (len(LABELS) - 1)) for k in LABELS},
            "label": label,
            "score": float(self.rng.uniform(0.6, 1.0)),
            "timings": {"model_ms": 5.0, "batch_ms": 50.0},
        }
        if unknown is not None:
            rec["n_unknown_wordpieces"] = unknown
        if agrees is not None:
            rec["production"] = {
                "label": label if agrees else "other",
                "score": 0.7,
                "agrees": agrees,
            }
        if now is not None:
            rec["timings"]["ingested_at_ms"] = (now - 0.2) * 1000
        return rec

    def records(self, n: int, **kwargs: Any) -> list[dict[str, Any]]:
        return [self.record(**kwargs) for _ in range(n)]
