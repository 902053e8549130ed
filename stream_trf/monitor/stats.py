"""The statistics behind the monitor's figures: pure functions, no state, no I/O.

Each one is a standard estimator, scipy's where scipy has it (the Wilson interval, the JS
distance, χ² quantiles, pairwise distances), and each is tested against an independent
implementation. They are written for small windows (tens to a few thousand documents): where a
figure cannot be computed from the data given (no trials, an empty distribution, a zero vector)
they return ``None`` rather than a number that looks meaningful.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt
from scipy.spatial.distance import jensenshannon, pdist
from scipy.stats import binomtest, chi2

FloatArray = npt.NDArray[np.float64]


def wilson_interval(
    successes: int, trials: int, confidence: float = 0.95
) -> tuple[float, float] | None:
    """Wilson score interval of a binomial proportion (scipy's).

    Used for the agreement ratio: unlike the normal approximation it stays inside [0, 1] and
    behaves at 0 % and 100 %, which is where small windows often are.
    """
    if trials <= 0:
        return None
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must be in [0, {trials}], got {successes}")
    ci = binomtest(successes, trials).proportion_ci(confidence, method="wilson")
    p = successes / trials
    # (the clamps only absorb rounding: the interval always holds p)
    return max(0.0, min(float(ci.low), p)), min(1.0, max(float(ci.high), p))


def _aligned(
    p: Mapping[str, float], q: Mapping[str, float]
) -> tuple[FloatArray, FloatArray] | None:
    """Two distributions as arrays over the union of their labels, each normalised."""
    labels = sorted(set(p) | set(q))
    a = np.array([max(float(p.get(k, 0.0)), 0.0) for k in labels], dtype=np.float64)
    b = np.array([max(float(q.get(k, 0.0)), 0.0) for k in labels], dtype=np.float64)
    if not labels or a.sum() <= 0 or b.sum() <= 0:
        return None
    return a / a.sum(), b / b.sum()


def js_distance(p: Mapping[str, float], q: Mapping[str, float]) -> float | None:
    """Jensen–Shannon distance (base 2, so in [0, 1]) between two label distributions: the
    square root of the JS divergence in bits (scipy's ``jensenshannon``).

    Counts or shares both work (each side is normalised); labels missing on one side count as
    zero there. Symmetric and bounded, so unlike KL it is defined when a label is new.
    """
    ab = _aligned(p, q)
    if ab is None:
        return None
    with np.errstate(invalid="ignore"):  # a divergence that rounds below 0 is 0
        distance = float(jensenshannon(*ab, base=2.0))
    return 0.0 if math.isnan(distance) else min(distance, 1.0)


def psi(
    expected: Mapping[str, float], actual: Mapping[str, float], eps: float = 1e-4
) -> float | None:
    """Population stability index of ``actual`` against ``expected`` (the reference).

    sum((a - e) * ln(a / e)) over the union of labels, with each share floored at ``eps`` so
    that a label absent on one side adds a large but finite term (the usual smoothing).
    Rules of thumb: < 0.1 stable, 0.1–0.25 moderate shift, > 0.25 significant.
    """
    ab = _aligned(expected, actual)
    if ab is None:
        return None
    e, a = (np.maximum(x, eps) for x in ab)
    return float(np.sum((a - e) * np.log(a / e)))


def js_noise_bound(
    n_window: int, n_reference: int, labels: int, alpha: float = 0.001
) -> float | None:
    """How far a window's label distribution strays from the reference's by chance alone:
    the (1 − alpha) quantile of the JS distance when both are samples of one distribution,
    with n_window and n_reference documents and ``labels`` labels.

    For close distributions the JS divergence (in nats) is an eighth of Pearson's χ²
    divergence Σ(p − q)²/q, which times the effective size n·m/(n + m) is χ² with labels − 1
    degrees of freedom; so the JS distance (base 2) is about √(χ² / (8·ln 2·n_eff)). With 10
    labels, 100 documents and a 500-document reference: 0.246 at alpha = 0.001. (The PSI has
    no such simple bound: its smoothing of absent labels makes its tail much heavier.) None
    when there is nothing to compare.
    """
    if n_window < 1 or n_reference < 1 or labels < 2:
        return None
    n_eff = n_window * n_reference / (n_window + n_reference)
    crit = float(chi2.ppf(1.0 - alpha, labels - 1))
    return math.sqrt(crit / (8.0 * math.log(2.0) * n_eff))


def cosine_distance(u: npt.ArrayLike, v: npt.ArrayLike) -> float | None:
    """1 − cosine similarity of two vectors (the window's and the reference's mean doc vector);
    None when either has no direction."""
    a = np.asarray(u, dtype=np.float64).ravel()
    b = np.asarray(v, dtype=np.float64).ravel()
    if a.shape != b.shape or a.size == 0:
        return None
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0 or nb == 0 or not (math.isfinite(na) and math.isfinite(nb)):
        return None
    return float(1.0 - np.dot(a, b) / (na * nb))


def _sq_dists(x: FloatArray, y: FloatArray) -> FloatArray:
    d = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * (x @ y.T)
    return np.maximum(d, 0.0)


def median_bandwidth(x: npt.ArrayLike) -> float | None:
    """The median heuristic: the median Euclidean distance between distinct rows of ``x``.

    Taken from the reference sample only, so that the kernel does not move with the window
    under test. None when there are fewer than two rows or they all coincide.
    """
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2 or len(a) < 2:
        return None
    med = float(np.median(pdist(a)))
    return med if med > 0 else None


def _subsample(x: FloatArray, n: int, rng: np.random.Generator) -> FloatArray:
    if len(x) <= n:
        return x
    return x[np.sort(rng.choice(len(x), size=n, replace=False))]


def mmd_test(
    reference: npt.ArrayLike,
    sample: npt.ArrayLike,
    *,
    bandwidth: float | None = None,
    permutations: int = 200,
    max_per_side: int = 200,
    seed: int = 0,
) -> tuple[float, float] | None:
    """Two-sample test on doc vectors: unbiased MMD² with an RBF kernel, permutation p-value.

    The kernel is exp(−‖x − y‖² / (2σ²)) with σ from :func:`median_bandwidth` of the reference
    (unless given). Each side is subsampled to at most ``max_per_side`` rows and the kernel
    matrix of the pooled rows is computed once; every permutation is then two matrix products
    over it, so the test costs a few milliseconds. The RNG is seeded: the same inputs give the
    same p-value. The p-value is (1 + #{permuted MMD² ≥ observed}) / (1 + permutations), so it
    is never 0 and is valid (uniform or conservative) when the two sides are exchangeable.

    Returns (mmd², p-value), or None when either side has fewer than two rows.
    """
    x = np.asarray(reference, dtype=np.float64)
    y = np.asarray(sample, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or len(x) < 2 or len(y) < 2 or x.shape[1] != y.shape[1]:
        return None
    rng = np.random.default_rng(seed)
    x = _subsample(x, max_per_side, rng)
    y = _subsample(y, max_per_side, rng)
    sigma = bandwidth if bandwidth is not None else median_bandwidth(x)
    if sigma is None or sigma <= 0:
        sigma = 1.0
    z = np.concatenate([x, y])
    k = np.exp(-_sq_dists(z, z) / (2.0 * sigma * sigma))
    m, n = len(x), len(y)
    first = np.zeros((permutations + 1, m + n), dtype=np.float64)
    first[0, :m] = 1.0
    for i in range(1, permutations + 1):
        first[i, rng.permutation(m + n)[:m]] = 1.0
    stats = _mmd2_unbiased(k, first, m, n)
    observed = float(stats[0])
    p_value = (1.0 + float(np.sum(stats[1:] >= observed))) / (1.0 + permutations)
    return observed, p_value


def _mmd2_unbiased(k: FloatArray, first: FloatArray, m: int, n: int) -> FloatArray:
    """Unbiased MMD² for each row of ``first`` (1 marks the rows of the first sample)."""
    second = 1.0 - first
    total = k.sum()
    kf = first @ k
    s_xx = np.einsum("ij,ij->i", kf, first)
    s_xy = np.einsum("ij,ij->i", kf, second)
    s_yy = total - s_xx - 2.0 * s_xy
    diag = np.diag(k)
    d_x = first @ diag
    d_y = second @ diag
    return (s_xx - d_x) / (m * (m - 1)) + (s_yy - d_y) / (n * (n - 1)) - 2.0 * s_xy / (m * n)


def quantiles(values: Sequence[float] | npt.ArrayLike, qs: Sequence[float]) -> list[float] | None:
    """Quantiles (linear interpolation, numpy's default) of latencies; None when empty."""
    a = np.asarray(values, dtype=np.float64).ravel()
    if a.size == 0:
        return None
    return [float(v) for v in np.quantile(a, list(qs))]


__all__ = [
    "cosine_distance",
    "js_distance",
    "js_noise_bound",
    "median_bandwidth",
    "mmd_test",
    "psi",
    "quantiles",
    "wilson_interval",
]
