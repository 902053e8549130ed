"""The drift evaluation's verdicts (the issue's requirements, one line each) and its table."""

from __future__ import annotations

from typing import Any

from .figures import DRIFT_GROUPS


def verdicts(scenarios: dict[str, Any], within: int, min_share: float) -> dict[str, Any]:
    """The issue's requirements, one line each: no embedding or label alert on the stationary
    stream; each expected alert within ``within`` windows for every seed, for changes of at
    least ``min_share`` of the documents (smaller ones are the limit of detection, reported in
    the table, not promised); no embedding or label alert when only production labels
    change."""
    out: dict[str, Any] = {}
    for name, st in scenarios.items():
        if st["kind"] != "stationary":
            continue
        for g in DRIFT_GROUPS:
            out[f"{name}: no {g} alert"] = st["groups"][g]["alerts_raised"] == 0
    for name, s in scenarios.items():
        if s["kind"] == "stationary":
            continue
        for g, info in s["groups"].items():
            if info["expected"] and s["share"] >= min_share:
                ok = info["misses"] == 0 and (info["delay_windows_max"] or 0) <= within
                out[f"{name}: {g} alert within {within} windows, every seed"] = ok
            if info["must_stay_quiet"]:
                quiet = (
                    info["post_change_alerts_raised"] == 0
                    and info["pre_change_windows_in_alert"] == 0
                )
                out[f"{name}: no {g} alert"] = quiet
    return out


def table(result: dict[str, Any]) -> str:
    lines = []
    for name, st in result["scenarios"].items():
        if st["kind"] != "stationary":
            continue
        lines.append(
            f"{name}: {st['windows']} windows ({st['seeds']} seeds × "
            f"{st['windows'] // max(st['seeds'], 1)}) of "
            f"{st['window_docs'] or result['design']['window_docs']} docs; alerts by figure "
            f"{st['alerts_raised_by_figure']}"
        )
        for g, info in st["groups"].items():
            lines.append(
                f"  {g:<10} alerts raised {info['alerts_raised']:>3} "
                f"({info['alerts_per_100_windows']}/100 windows), windows in alert "
                f"{info['windows_in_alert']} (rate {info['false_alarm_rate_per_window']}), "
                f"seeds with one {info['seeds_with_an_alert']}"
            )
    for name, s in result["scenarios"].items():
        if s["kind"] == "stationary":
            continue
        parts = []
        for g, info in s["groups"].items():
            if info["expected"]:
                parts.append(
                    f"{g} delay median {info['delay_windows_median']} max "
                    f"{info['delay_windows_max']}, missed {info['misses']}/{s['seeds']}"
                )
            elif info["must_stay_quiet"]:
                parts.append(
                    f"{g} (must stay quiet) alerts after the change "
                    f"{info['post_change_alerts_raised']}"
                )
            elif info["detected"]:
                parts.append(f"{g} (also) fired for {info['detected']}/{s['seeds']} seeds")
            if info["pre_change_windows_in_alert"]:
                parts.append(
                    f"{g} windows in alert before it {info['pre_change_windows_in_alert']}"
                )
        lines.append(f"{name}: " + "; ".join(parts))
    live = result.get("live")
    if live and "error" not in live:
        lines.append(
            f"live: alert on /metrics {live['delay_seconds_to_metrics_alert']} s after the "
            f"first switched record, window record delay {live['delay_windows']} windows "
            f"({live['delay_evaluated_windows']} evaluated) "
            f"({(live['first_alert_window'] or {}).get('alerts')})"
        )
    elif live:
        lines.append(f"live: failed: {live['error']}")
    for k, v in result["verdicts"].items():
        lines.append(f"{'✓' if v else '✗'} {k}")
    return "\n".join(lines)
