"""The worker benchmark's figures: RSS growth over a soak, and whether the worker kept pace."""

from __future__ import annotations

import numpy as np
import pytest

from bench.harness.worker import kept_pace, rss_growth


def _sawtooth(
    seconds: int, base: float, leak_per_s: float, seed: int = 0
) -> list[tuple[float, float]]:
    """RSS the way a worker's looks: a tooth per buffer (it rises while the buffer's arrays are
    built and drops when they are freed), buffers of irregular length and size, plus an optional
    steady leak."""
    rng = np.random.default_rng(seed)
    out: list[tuple[float, float]] = []
    while len(out) < seconds:
        length, height = int(rng.integers(4, 12)), rng.uniform(50, 250)
        for k in range(length):
            t = len(out)
            out.append((float(t), base + height * k / length + leak_per_s * t))
    return out[:seconds]


def test_a_flat_sawtooth_is_flat_whichever_sample_lands_where() -> None:
    samples = _sawtooth(1200, 700.0, 0.0)
    after_warmup = [s[1] for s in samples[len(samples) // 4 :]]
    # single samples after warm-up disagree by far more than the target ...
    assert max(after_warmup) / min(after_warmup) - 1 > 0.2
    # ... the robust figures do not
    g = rss_growth(samples)
    assert abs(g["rss_window_growth"]) < 0.02
    assert abs(g["rss_trend_growth"]) < 0.02
    assert g["rss_growth"] == max(g["rss_window_growth"], g["rss_trend_growth"])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_steady_leak_under_the_sawtooth_is_caught(seed: int) -> None:
    # 0.1 MB/s over 20 minutes: +90 MB after warm-up on ~850 MB, ~10 %
    samples = _sawtooth(1200, 750.0, 0.1, seed)
    g = rss_growth(samples)
    assert g["rss_growth"] > 0.05
    assert g["rss_trend_growth"] > 0.05
    assert g["rss_mb_per_min"] == pytest.approx(6.0, abs=1.0)


def test_a_leak_in_the_last_quarter_is_caught_by_the_window_even_when_the_trend_is_mild() -> None:
    samples = [(float(t), 800.0 + (0.4 * (t - 900) if t > 900 else 0.0)) for t in range(1200)]
    g = rss_growth(samples)
    assert g["rss_window_growth"] > 0.05
    assert g["rss_growth"] >= g["rss_window_growth"]


def test_too_few_samples_give_no_figure() -> None:
    assert rss_growth([(float(t), 700.0) for t in range(7)]) == {}


def _records(n: int, t0: float, seconds: float) -> list[dict]:
    return [
        {"id": f"d{i}", "_kafka": {"received_ms": (t0 + seconds * (i + 1) / n) * 1000}}
        for i in range(n)
    ]


def test_kept_pace_compares_the_enriched_rate_with_the_offered_one() -> None:
    on_time = kept_pace(_records(600, 1000.0, 60.5), rate=10.0, t0=1000.0)
    assert on_time["kept_pace"] is True
    assert on_time["enriched_docs_per_s"] == pytest.approx(600 / 60.5, rel=1e-3)
    behind = kept_pace(_records(600, 1000.0, 75.0), rate=10.0, t0=1000.0)
    assert behind["kept_pace"] is False
    assert kept_pace([], rate=10.0, t0=0.0) == {}
