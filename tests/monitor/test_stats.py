"""The monitor's statistics against independent implementations."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest
from scipy.spatial.distance import cosine as scipy_cosine

from stream_trf.monitor import stats


def _wilson_brute_force(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """The Wilson interval by definition: every p the score test does not reject."""
    p = np.linspace(0, 1, 2_000_001)
    keep = np.abs(k / n - p) <= z * np.sqrt(p * (1 - p) / n)
    return float(p[keep].min()), float(p[keep].max())


@pytest.mark.parametrize(("k", "n"), [(0, 10), (10, 10), (7, 10), (1, 3), (412, 500), (50, 100)])
def test_wilson_interval_matches_its_definition(k: int, n: int) -> None:
    lo, hi = stats.wilson_interval(k, n)  # type: ignore[misc]
    want_lo, want_hi = _wilson_brute_force(k, n)
    assert lo == pytest.approx(want_lo, abs=2e-6)
    assert hi == pytest.approx(want_hi, abs=2e-6)
    assert 0 <= lo <= k / n <= hi <= 1


def test_wilson_interval_of_nothing_is_none() -> None:
    assert stats.wilson_interval(0, 0) is None
    with pytest.raises(ValueError):
        stats.wilson_interval(5, 4)


def _js_by_entropies(p: list[float], q: list[float]) -> float:
    """The JS distance from its definition through entropies (bits): √(H(M) − (H(P) + H(Q))/2)
    with M the mixture, 0·log 0 = 0; not the KL form scipy computes."""

    def entropy(x: np.ndarray) -> float:
        x = x[x > 0]
        return float(-(x * np.log2(x)).sum())

    a, b = np.array(p) / sum(p), np.array(q) / sum(q)
    return math.sqrt(max(entropy((a + b) / 2) - (entropy(a) + entropy(b)) / 2, 0.0))


def test_js_distance_is_its_definition_over_the_union_of_labels() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        labels = [f"l{i}" for i in range(8)]
        p = {k: float(v) for k, v in zip(labels[:6], rng.dirichlet(np.ones(6)) * 40)}
        q = {k: float(v) for k, v in zip(labels[2:], rng.dirichlet(np.ones(6)))}
        union = sorted(set(p) | set(q))
        want = _js_by_entropies([p.get(k, 0.0) for k in union], [q.get(k, 0.0) for k in union])
        assert stats.js_distance(p, q) == pytest.approx(want, abs=1e-9)
    assert stats.js_distance({"a": 1}, {"a": 5}) == pytest.approx(0.0, abs=1e-6)
    assert stats.js_distance({"a": 1}, {"b": 1}) == pytest.approx(1.0, abs=1e-6)
    assert stats.js_distance({}, {"b": 1}) is None


def test_psi_by_hand() -> None:
    expected = {"a": 0.5, "b": 0.3, "c": 0.2}
    actual = {"a": 40, "b": 40, "c": 20}  # counts are normalised
    want = (0.4 - 0.5) * math.log(0.4 / 0.5) + (0.4 - 0.3) * math.log(0.4 / 0.3)
    assert stats.psi(expected, actual) == pytest.approx(want, rel=1e-9)
    assert stats.psi(expected, expected) == pytest.approx(0.0, abs=1e-12)
    # A label new in the window: its share is compared with eps, not with zero.
    eps = 1e-4
    got = stats.psi({"a": 1.0}, {"a": 0.5, "new": 0.5}, eps=eps)
    want = (0.5 - 1.0) * math.log(0.5 / 1.0) + (0.5 - eps) * math.log(0.5 / eps)
    assert got == pytest.approx(want, rel=1e-9)
    assert stats.psi({}, {"a": 1}) is None


def test_cosine_distance_matches_scipy() -> None:
    rng = np.random.default_rng(1)
    for _ in range(20):
        u, v = rng.normal(size=(2, 32))
        assert stats.cosine_distance(u, v) == pytest.approx(scipy_cosine(u, v), abs=1e-12)
    assert stats.cosine_distance(np.zeros(3), np.ones(3)) is None
    assert stats.cosine_distance(np.ones(3), np.ones(4)) is None


def _mmd2_by_loops(x: np.ndarray, y: np.ndarray, sigma: float) -> float:
    def k(a: np.ndarray, b: np.ndarray) -> float:
        return math.exp(-float(np.sum((a - b) ** 2)) / (2 * sigma * sigma))

    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(a, b) for a in x for b in y) / (m * n)
    return xx + yy - 2 * xy


def test_mmd2_is_the_unbiased_estimate_with_the_median_bandwidth() -> None:
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(12, 4)), rng.normal(size=(9, 4)) + 0.5
    sigma = stats.median_bandwidth(x)
    dists = [np.linalg.norm(x[i] - x[j]) for i in range(12) for j in range(i + 1, 12)]
    assert sigma == pytest.approx(float(np.median(dists)))
    mmd2, p = stats.mmd_test(x, y, permutations=50)  # type: ignore[misc]
    assert mmd2 == pytest.approx(_mmd2_by_loops(x, y, sigma), abs=1e-10)
    assert 0 < p <= 1
    assert stats.mmd_test(x, y, permutations=50) == (mmd2, p)  # seeded: the same answer


def test_mmd_p_value_is_roughly_uniform_under_the_null_and_small_under_a_shift() -> None:
    rng = np.random.default_rng(3)
    null = []
    for trial in range(80):
        x, y = rng.normal(size=(40, 6)), rng.normal(size=(30, 6))
        null.append(stats.mmd_test(x, y, permutations=99, seed=trial)[1])  # type: ignore[index]
    null_p = np.array(null)
    assert 0.35 < null_p.mean() < 0.65
    assert np.mean(null_p < 0.1) < 0.2
    assert np.mean(null_p < 0.5) == pytest.approx(0.5, abs=0.2)
    shifted = [
        stats.mmd_test(rng.normal(size=(40, 6)), rng.normal(size=(30, 6)) + 1.0, seed=t)[1]  # type: ignore[index]
        for t in range(10)
    ]
    assert max(shifted) <= 0.02


def test_mmd_subsamples_each_side() -> None:
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(1000, 8)), rng.normal(size=(800, 8))
    mmd2, p = stats.mmd_test(x, y, max_per_side=50, permutations=20)  # type: ignore[misc]
    assert math.isfinite(mmd2) and 0 < p <= 1
    assert stats.mmd_test(x[:1], y) is None
    assert stats.mmd_test(x, y[:, :4]) is None


def test_quantiles() -> None:
    values = [0.1, 0.5, 0.2, 3.0, 0.3]
    assert stats.quantiles(values, (0.5, 0.99)) == pytest.approx(
        [np.percentile(values, 50), np.percentile(values, 99)]
    )
    assert stats.quantiles([], (0.5,)) is None


def _chi2_cdf(x: float, dof: int) -> float:
    """The χ² CDF in closed form, for 1 degree of freedom (a squared normal) and even ones
    (1 − e^(−x/2) Σ_{j<dof/2} (x/2)^j / j!)."""
    if dof == 1:
        return 2 * NormalDist().cdf(math.sqrt(x)) - 1
    assert dof % 2 == 0
    return 1 - math.exp(-x / 2) * sum((x / 2) ** j / math.factorial(j) for j in range(dof // 2))


@pytest.mark.parametrize("labels", [2, 3, 5, 11, 31])
@pytest.mark.parametrize("alpha", [0.01, 0.001, 0.0001])
def test_the_js_noise_bound_rests_on_the_exact_chi2_quantile(labels: int, alpha: float) -> None:
    n, m = 100, 500
    bound = stats.js_noise_bound(n, m, labels, alpha)
    assert bound is not None
    critical = bound**2 * 8 * math.log(2) * n * m / (n + m)  # the χ² value it was made from
    assert _chi2_cdf(critical, labels - 1) == pytest.approx(1 - alpha, abs=1e-9)


def test_the_js_noise_bound_is_what_chance_exceeds_at_that_rate() -> None:
    """Simulate windows and references drawn from one distribution: the JS distance exceeds
    the bound at about alpha's rate, for small and large windows alike."""
    rng = np.random.default_rng(7)
    p = np.array([0.3, 0.2, 0.15, 0.1, 0.08, 0.06, 0.05, 0.03, 0.02, 0.01])
    labels = [str(i) for i in range(len(p))]
    alpha = 0.01
    for n in (100, 400):
        ref = rng.multinomial(500, p, size=3000)
        win = rng.multinomial(n, p, size=3000)
        bound = stats.js_noise_bound(n, 500, len(p), alpha)
        assert bound is not None
        js = np.array(
            [
                stats.js_distance(dict(zip(labels, a)), dict(zip(labels, b)))
                for a, b in zip(ref, win)
            ]
        )
        assert 0.3 * alpha < np.mean(js > bound) < 3 * alpha
    # bigger windows, tighter bounds
    small, big = stats.js_noise_bound(100, 500, 10), stats.js_noise_bound(1000, 500, 10)
    assert small is not None and big is not None and big < small
    assert stats.js_noise_bound(0, 500, 10) is None
