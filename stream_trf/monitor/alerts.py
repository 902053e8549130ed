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

from ..setting import setting

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
    """Alert thresholds.

    Where each figure starts to count as drift. The defaults are meant for windows of at least ``alert_min_documents`` documents: with
    fewer, label shares are too noisy to judge (with 10 labels and 100 documents, the 99.9th
    percentile of the JS distance between a window and its own source distribution is about
    0.22, and of the PSI about 0.45)."""

    min_documents: int = setting(
        100,
        "windows with fewer documents neither raise nor clear alerts (too noisy)",
        name="alert_min_documents",
    )
    agreement_min: float = setting(
        0.0,
        "alert when the agreement ratio's 95% upper bound is below this; 0: below the "
        "reference's ratio minus --agreement-max-drop",
    )
    agreement_max_drop: float = setting(
        0.05, "agreement drop from the reference's ratio that alerts (95% upper bound below it)"
    )
    label_js_max: float = setting(
        0.25, "Jensen-Shannon distance of the label distribution from the reference that alerts"
    )
    label_psi_max: float = setting(
        0.5, "PSI of the label distribution against the reference that alerts"
    )
    # label_js_max is raised, when a window is small, to what chance alone exceeds with this
    # probability (stats.js_noise_bound)
    label_noise_alpha: float = setting(
        0.001,
        "label drift alerts only beyond what chance exceeds with this probability at the "
        "window's size too (small windows are noisy)",
    )
    confidence_max_drop: float = setting(
        0.1, "mean confidence drop from the reference's that alerts"
    )
    # all-MiniLM-L6-v2 on Debian descriptions: 99.9th percentile 0.033 for 100 documents of
    # the reference's own sections; 0.11–0.24 when they come from one or two other sections
    embedding_cosine_max: float = setting(
        0.05, "cosine distance of the window's mean doc vector from the reference's that alerts"
    )
    embedding_p_value_min: float = setting(
        0.01, "MMD two-sample test p-value (window vs reference doc vectors) below which to alert"
    )
    text_relative_max: float = setting(
        0.5, "relative change of mean words or sentences per doc from the reference that alerts"
    )
    text_share_max: float = setting(
        0.05, "change of the windowed or unknown wordpiece share from the reference that alerts"
    )
    # so that one very long document in a window is not called drift (TextSums.standard_errors)
    text_noise_z: float = setting(
        3.0,
        "a text figure's change alerts only beyond this many standard errors of the change too "
        "(long documents make small windows noisy)",
    )

    def validate(self) -> None:
        if self.min_documents < 0:
            raise ValueError(f"alert_min_documents must be 0 or more, got {self.min_documents}")
        if not 0 < self.label_noise_alpha < 1:
            raise ValueError(f"label_noise_alpha must be in (0, 1), got {self.label_noise_alpha}")


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
