"""The paired interval of bench/experiments/host_ab.py, on slices of a known difference."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from bench.experiments.host_ab import paired_interval


def _runs(this: np.ndarray, base: np.ndarray, rounds: int) -> list[dict[str, Any]]:
    """``rounds`` runs splitting the slices' CPU-ms per doc between them, as run_host writes."""
    out = []
    for this_part, base_part in zip(np.array_split(this, rounds), np.array_split(base, rounds)):
        out.append(
            {
                "slices": [{"docs": 512, "worker_cpu_ms_per_doc": float(t)} for t in this_part],
                "variants": {
                    "baseline": {"cpu_ms_per_doc_by_slice": [float(b) for b in base_part]}
                },
            }
        )
    return out


def test_a_real_difference_under_the_hosts_drift_is_told_apart() -> None:
    rng = np.random.default_rng(7)
    host = rng.uniform(0.4, 0.7, 48)  # each slice's host speed moves both workers alike
    this = host * rng.normal(1.0, 0.04, 48)
    base = host * 1.05 * rng.normal(1.0, 0.04, 48)
    found = paired_interval(_runs(this, base, 4))
    assert found["paired_slices"] == 48
    low, high = found["baseline_over_this_ci95"]
    assert low < found["baseline_over_this_pooled"] < high
    assert found["baseline_over_this_pooled"] == pytest.approx(base.sum() / this.sum(), abs=1e-4)
    assert low > 1.0 and high > 1.05  # the 5 % is found, and the interval holds it


def test_the_same_code_twice_is_not_told_apart() -> None:
    rng = np.random.default_rng(3)
    host = rng.uniform(0.4, 0.7, 36)
    this = host * rng.normal(1.0, 0.04, 36)
    base = host * rng.normal(1.0, 0.04, 36)
    low, high = paired_interval(_runs(this, base, 3))["baseline_over_this_ci95"]
    assert low < 1.0 < high


def test_rounds_that_disagree_widen_the_interval() -> None:
    """Each round's processes carry an offset of their own (+9 %, -3 %, +6 %, -4 %): within a
    round the slices agree closely, so an interval over slices alone would call the mean of
    +2 % a difference. Resampling the rounds, it does not."""
    rng = np.random.default_rng(5)
    this_parts, base_parts = [], []
    for offset in (1.09, 0.97, 1.06, 0.96):
        host = rng.uniform(0.4, 0.7, 12)
        this_parts.append(host * rng.normal(1.0, 0.01, 12))
        base_parts.append(host * offset * rng.normal(1.0, 0.01, 12))
    this, base = np.concatenate(this_parts), np.concatenate(base_parts)
    found = paired_interval(_runs(this, base, 4))
    low, high = found["baseline_over_this_ci95"]
    assert low < 1.0 < high
    # the pooled figure is CPU summed over every slice (docs equal: the per-doc figures' sums)
    pooled = found["baseline_over_this_pooled"]
    assert pooled == pytest.approx(base.sum() / this.sum(), abs=1e-4)
    assert pooled > 1.0  # the offsets' mix leans this way; the interval still holds 1
