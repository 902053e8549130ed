"""Alerts: a figure beyond its threshold for K consecutive windows.

One window beyond a threshold is often noise (a burst of one customer's documents, a small
window); K in a row (default 2) is a trend. State is kept per model and figure. A window in
which a figure could not be evaluated (no reference yet, too few documents) is no evidence
either way: it neither advances nor resets the count. An alert clears at the first evaluated
window back in range.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The figures alerts are kept for, as named in window records, the ``figure`` label of
# ``stream_trf_drift_alert`` and the dashboard.
FIGURES = (
    "agreement",
    "label_js",
    "label_psi",
    "confidence",
    "embedding_cosine",
    "embedding_p_value",
    "mean_words",
    "mean_sentences",
    "windowed_share",
    "unknown_share",
)


@dataclass(frozen=True)
class Thresholds:
    """Where each figure starts to count as drift. The defaults are meant for windows of at
    least ``min_documents`` documents: with fewer, label shares are too noisy to judge (with 10
    labels and 100 documents, the 99.9th percentile of the JS distance between a window and
    its own source distribution is about 0.22, and of the PSI about 0.45)."""

    min_documents: int = 100  # windows with fewer documents are not evaluated
    agreement_min: float = 0.0  # >0: fixed floor; 0: the reference's ratio − agreement_max_drop
    agreement_max_drop: float = 0.05
    label_js_max: float = 0.25
    label_psi_max: float = 0.5
    # label_js_max is raised, when a window is small, to what chance alone exceeds with this
    # probability (stats.js_noise_bound): 0.245 for 100 documents against 500 of reference
    label_noise_alpha: float = 0.001
    confidence_max_drop: float = 0.1  # mean confidence below the reference's by more than this
    # all-MiniLM-L6-v2 on Debian descriptions: 99.9th percentile 0.033 for 100 documents of
    # the reference's own sections; 0.11–0.24 when they come from one or two other sections
    embedding_cosine_max: float = 0.05
    embedding_p_value_min: float = 0.01
    text_relative_max: float = 0.5  # |window / reference − 1| of mean words and sentences
    text_share_max: float = 0.05  # |window − reference| of the windowed and unknown shares
    # A text figure's change also has to exceed this many standard errors of the change (from
    # the window's and the reference's own spread), so that one very long document in a window
    # is not called drift; see TextSums.standard_errors.
    text_noise_z: float = 3.0


@dataclass(frozen=True)
class Check:
    """One figure of one window against its threshold. ``beyond`` is None when the figure was
    not evaluated (it cannot be computed, or the window is too small)."""

    figure: str
    value: float | None
    threshold: float | None
    beyond: bool | None


def above(figure: str, value: float | None, threshold: float, evaluate: bool = True) -> Check:
    """Beyond when ``value > threshold``."""
    ok = evaluate and value is not None
    return Check(
        figure, value, threshold, (value > threshold) if ok and value is not None else None
    )


def below(figure: str, value: float | None, threshold: float, evaluate: bool = True) -> Check:
    """Beyond when ``value < threshold``."""
    ok = evaluate and value is not None
    return Check(
        figure, value, threshold, (value < threshold) if ok and value is not None else None
    )


def outside(figure: str, value: float | None, threshold: float, evaluate: bool = True) -> Check:
    """Beyond when ``|value| > threshold`` (a signed change either way)."""
    ok = evaluate and value is not None
    return Check(
        figure, value, threshold, (abs(value) > threshold) if ok and value is not None else None
    )


@dataclass
class _State:
    streak: int = 0
    active: bool = False
    since: float | None = None
    value: float | None = None
    threshold: float | None = None


class Alerts:
    """Consecutive-window alert state per (model, figure)."""

    def __init__(self, windows: int = 2) -> None:
        if windows < 1:
            raise ValueError(f"alert windows must be at least 1, got {windows}")
        self.windows = windows
        self._state: dict[tuple[tuple[str, str], str], _State] = {}

    def update(
        self, model: tuple[str, str], checks: list[Check], now: float
    ) -> list[dict[str, Any]]:
        """Apply one window's checks; return the model's active alerts after it."""
        for c in checks:
            st = self._state.setdefault((model, c.figure), _State())
            if c.beyond is None:
                continue
            if c.beyond:
                st.streak += 1
                st.value, st.threshold = c.value, c.threshold
                if st.streak >= self.windows and not st.active:
                    st.active, st.since = True, now
            else:
                st.streak, st.active, st.since = 0, False, None
        return self.active(model)

    def is_active(self, model: tuple[str, str], figure: str) -> bool:
        st = self._state.get((model, figure))
        return bool(st and st.active)

    def active(self, model: tuple[str, str] | None = None) -> list[dict[str, Any]]:
        """Active alerts (of one model, or all with their model), in FIGURES order."""
        out = []
        for (m, figure), st in sorted(
            self._state.items(),
            key=lambda kv: (kv[0][0], FIGURES.index(kv[0][1]) if kv[0][1] in FIGURES else 99),
        ):
            if not st.active or (model is not None and m != model):
                continue
            alert: dict[str, Any] = {
                "figure": figure,
                "value": st.value,
                "threshold": st.threshold,
                "windows": st.streak,
            }
            if model is None:
                alert = {"model": {"name": m[0], "version": m[1]}, **alert, "since": st.since}
            out.append(alert)
        return out


__all__ = ["FIGURES", "Alerts", "Check", "Thresholds", "above", "below", "outside"]
