"""What the replays show, per alert group: false alarms on a stationary stream, detection delays
and misses after a change, alerts from groups that must stay quiet."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from stream_trf.monitor.monitor import MonitorConfig

from .figures import GROUPS
from .replay import ScenarioRun, WindowRow


def group_active(row: WindowRow, group: str) -> bool:
    return any(f in row["alerts"] for f in GROUPS[group])


def onsets(active: Sequence[bool]) -> int:
    """Alerts raised: inactive → active transitions (an alert already active at the start
    counts once)."""
    return sum(1 for i, a in enumerate(active) if a and (i == 0 or not active[i - 1]))


def _quantiles(values: Sequence[float | None], qs: Sequence[float]) -> dict[str, float] | None:
    a = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if a.size == 0:
        return None
    return {f"p{q * 100:g}": round(float(np.quantile(a, q)), 5) for q in qs}


def _beyond(row: WindowRow, config: MonitorConfig) -> dict[str, bool]:
    """Which figures of one window are beyond their threshold (before the K-windows rule)."""
    th = config.thresholds
    if not row["evaluated"]:
        return {}
    out = {}
    if row["cosine"] is not None:
        out["embedding_cosine"] = row["cosine"] > th.embedding_cosine_max
    if row["p_value"] is not None:
        out["embedding_p_value"] = row["p_value"] < th.embedding_p_value_min
    if row["js"] is not None:
        out["label_js"] = row["js"] > th.label_js_max
    if row["psi"] is not None:
        out["label_psi"] = row["psi"] > th.label_psi_max
    if row["agreement_upper"] is not None and row["agreement_floor"] is not None:
        out["agreement"] = row["agreement_upper"] < row["agreement_floor"]
    return out


def summarize_stationary(runs: Sequence[ScenarioRun], config: MonitorConfig) -> dict[str, Any]:
    """False alarms: alerts raised (onsets) and windows in alert, per group and per seed, plus
    how often each figure alone was beyond its threshold in a window and the figures'
    distribution (the evidence a threshold is judged by)."""
    rows = [r for run in runs for r in run.rows if r["evaluated"]]
    n = len(rows)
    groups: dict[str, Any] = {}
    for g in GROUPS:
        per_seed = []
        for run in runs:
            active = [group_active(r, g) for r in run.rows if r["evaluated"]]
            per_seed.append(
                {"seed": run.seed, "alerts": onsets(active), "windows_in_alert": sum(active)}
            )
        raised = sum(s["alerts"] for s in per_seed)
        in_alert = sum(s["windows_in_alert"] for s in per_seed)
        groups[g] = {
            "alerts_raised": raised,
            "alerts_per_100_windows": round(100 * raised / n, 3) if n else None,
            "windows_in_alert": in_alert,
            "false_alarm_rate_per_window": round(in_alert / n, 5) if n else None,
            "seeds_with_an_alert": sum(1 for s in per_seed if s["alerts"]),
            "per_seed": per_seed,
        }
    by_figure: dict[str, int] = {}
    for fig in (f for figs in GROUPS.values() for f in figs):
        raised = sum(
            onsets([fig in r["alerts"] for r in run.rows if r["evaluated"]]) for run in runs
        )
        if raised:
            by_figure[fig] = raised
    beyond: Counter[str] = Counter()
    judged: Counter[str] = Counter()
    for r in rows:
        for fig, b in _beyond(r, config).items():
            judged[fig] += 1
            beyond[fig] += int(b)
    qs = (0.5, 0.95, 0.99, 0.999, 1.0)
    return {
        "windows": n,
        "seeds": len(runs),
        "groups": groups,
        "alerts_raised_by_figure": by_figure,
        "single_window_beyond_rate": {
            f: round(beyond[f] / judged[f], 5) for f in sorted(judged) if judged[f]
        },
        "figures": {
            "cosine_distance": _quantiles([r["cosine"] for r in rows], qs),
            "js_distance": _quantiles([r["js"] for r in rows], qs),
            "psi": _quantiles([r["psi"] for r in rows], qs),
            "p_value": _quantiles([r["p_value"] for r in rows], (0.0, 0.001, 0.01, 0.05, 0.5)),
            "p_value_share_below_0.01": (
                round(
                    float(np.mean([r["p_value"] < 0.01 for r in rows if r["p_value"] is not None])),
                    5,
                )
                if n
                else None
            ),
            "p_value_share_below_0.05": (
                round(
                    float(np.mean([r["p_value"] < 0.05 for r in rows if r["p_value"] is not None])),
                    5,
                )
                if n
                else None
            ),
            "agreement": _quantiles([r["agreement"] for r in rows], (0.001, 0.01, 0.5, 0.99)),
            "text_drift_abs": {
                name: _quantiles(
                    [
                        None
                        if r["text_drift"].get(name) is None
                        else abs(r["text_drift"][name] or 0)
                        for r in rows
                    ],
                    qs,
                )
                for name in sorted({k for r in rows for k in r["text_drift"]})
            },
        },
        "home_passes_max": max((run.home_passes for run in runs), default=0),
    }


def detection(run: ScenarioRun, group: str) -> tuple[int | None, int]:
    """(delay, pre-change alert windows) of one group in one run. The delay counts windows
    from the change: 1 when the alert is active when the first changed window closes; with
    ``alert_windows`` = K the earliest possible is K. None when it never fired after the
    change (a miss within the run's horizon)."""
    before = run.scenario.before
    pre = sum(1 for r in run.rows[:before] if group_active(r, group))
    for r in run.rows[before:]:
        if group_active(r, group):
            return r["window"] - before + 1, pre
    return None, pre


def summarize_change(runs: Sequence[ScenarioRun]) -> dict[str, Any]:
    """Per alert group: detection delay (median and max over the seeds that detected), misses,
    alerts before the change; and for the groups that must stay quiet, alerts after it."""
    scenario = runs[0].scenario
    out: dict[str, Any] = {
        "kind": scenario.kind,
        "window_docs": scenario.window_docs,
        "share": scenario.share,
        "windows_before_change": scenario.before,
        "windows_after_change": scenario.after,
        "seeds": len(runs),
        "groups": {},
    }
    for g in GROUPS:
        delays, pre, post_windows, post_alerts = [], 0, 0, 0
        per_seed = []
        for run in runs:
            d, p = detection(run, g)
            delays.append(d)
            pre += p
            after = [group_active(r, g) for r in run.rows[scenario.before :]]
            post_windows += sum(after)
            post_alerts += onsets(after)
            per_seed.append({"seed": run.seed, "delay": d, "pre_change_windows_in_alert": p})
        found = [d for d in delays if d is not None]
        out["groups"][g] = {
            "expected": g in scenario.expected,
            "must_stay_quiet": g in scenario.unexpected,
            "detected": len(found),
            "misses": len(delays) - len(found),
            "delay_windows_median": float(np.median(found)) if found else None,
            "delay_windows_max": max(found) if found else None,
            "pre_change_windows_in_alert": pre,
            "post_change_alerts_raised": post_alerts,
            "post_change_windows_in_alert": post_windows,
            "per_seed": per_seed,
        }
    post = [r for run in runs for r in run.rows[scenario.before :] if r["evaluated"]]
    out["post_change_figures_median"] = {
        k: (
            round(float(np.median([r[k] for r in post if r[k] is not None])), 5)
            if any(r[k] is not None for r in post)
            else None
        )
        for k in ("cosine", "p_value", "js", "psi", "agreement", "confidence")
    }
    out["splits"] = [
        {"seed": run.seed, "home": run.home_sections, "other": run.other_sections} for run in runs
    ]
    return out
