"""The drift evaluation's chart: the figures' distributions against their thresholds, one seed's
runs over time and the detection delays, in one PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .figures import GROUPS
from .replay import WindowRow


def chart(
    result: dict[str, Any],
    series: dict[str, list[WindowRow]],
    distributions: dict[str, dict[str, list[float | None]]],
    path: Path,
) -> None:
    """Six panels: the stationary and changed distributions of the cosine distance, the JS
    distance and the MMD p-value against their thresholds; one seed's switch and corruption
    runs over time; and the detection delays."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    th = result["settings"]["thresholds"]
    fig, axes = plt.subplots(2, 3, figsize=(17, 9))

    def hist(ax: Any, key: str, threshold: float, title: str, log: bool = True) -> None:
        groups = {
            name: [v for v in values if v is not None and (v > 0 or not log)]
            for name, values in distributions.get(key, {}).items()
        }
        pooled = [v for vals in groups.values() for v in vals]
        if not pooled:
            return
        if log:  # one set of bins for every scenario, so the bars compare
            lo, hi = min(*pooled, threshold), max(*pooled, threshold)
            bins = np.logspace(np.log10(lo * 0.9), np.log10(hi * 1.1), 50)
        else:
            bins = np.linspace(0, 1, 51)
        for name, vals in groups.items():
            if vals:
                ax.hist(vals, bins=bins, alpha=0.55, label=f"{name} ({len(vals)})", density=True)
        ax.axvline(threshold, color="k", ls="--", lw=1, label=f"threshold {threshold:g}")
        if log:
            ax.set_xscale("log")
        ax.set_title(title, fontsize=10)
        ax.set_ylabel("density")
        ax.legend(fontsize=7)

    hist(
        axes[0, 0],
        "cosine",
        th["embedding_cosine_max"],
        "embedding cosine distance per window (stationary; after a switch)",
    )
    hist(axes[0, 1], "js", th["label_js_max"], "label JS distance per window")
    hist(
        axes[0, 2],
        "p_value",
        th["embedding_p_value_min"],
        "MMD permutation p-value per window (uniform when calibrated)",
        log=False,
    )
    ax = axes[1, 0]
    for name, rows in series.items():
        if name.startswith("switch"):
            ax.plot([r["window"] for r in rows], [r["cosine"] for r in rows], label=name, lw=1)
            on = [r for r in rows if any(f in r["alerts"] for f in GROUPS["embedding"])]
            ax.scatter([r["window"] for r in on], [r["cosine"] for r in on], s=10, marker="o")
    ax.axhline(th["embedding_cosine_max"], color="k", ls="--", lw=1)
    before = result["design"]["windows_before_change"]
    ax.axvline(before - 0.5, color="r", lw=1)
    ax.set_yscale("log")
    ax.set_xlabel("window (red: the change; dots: embedding alert active)")
    ax.set_title("section switch, seed 0: cosine distance", fontsize=10)
    ax.legend(fontsize=7)
    ax = axes[1, 1]
    for name, rows in series.items():
        if name.startswith("corrupt"):
            line = ax.plot([r["window"] for r in rows], [r["agreement"] for r in rows], label=name)
            on = [r for r in rows if "agreement" in r["alerts"]]
            ax.scatter(
                [r["window"] for r in on],
                [r["agreement"] for r in on],
                s=10,
                color=line[0].get_color(),
            )
            floors = [r["agreement_floor"] for r in rows if r["agreement_floor"] is not None]
            if floors:
                ax.axhline(floors[0], color="k", ls="--", lw=1)
    ax.axvline(before - 0.5, color="r", lw=1)
    ax.set_xlabel("window (dashed: the floor, reference − drop; dots: alert active)")
    ax.set_title("production labels corrupted, seed 0: agreement ratio", fontsize=10)
    ax.legend(fontsize=7)
    ax = axes[1, 2]
    names, medians, maxes, colors, notes = [], [], [], [], []
    for name, s in result["scenarios"].items():
        if s.get("kind") in (None, "stationary"):
            continue
        for g in s["groups"]:
            info = s["groups"][g]
            if not info["expected"]:
                continue
            names.append(f"{name}\n{g}")
            medians.append(info["delay_windows_median"] or 0)
            maxes.append(info["delay_windows_max"] or 0)
            colors.append("C0" if g == "embedding" else "C1" if g == "label" else "C2")
            notes.append(
                f"{info['misses']}/{s['seeds']} missed within {s['windows_after_change']}"
                if info["misses"]
                else ""
            )
    y = np.arange(len(names))
    bars = ax.barh(y, medians, color=colors, alpha=0.8, label="median")
    for bar, note in zip(bars, notes):
        if note:  # the median of the few seeds that detected: not a typical delay
            bar.set_alpha(0.3)
            bar.set_hatch("//")
    ax.scatter(maxes, y, color="k", marker="|", s=120, label="max")
    for i, note in enumerate(notes):
        if note:
            ax.text(max(maxes[i], medians[i]) + 0.2, i, note, va="center", fontsize=7, color="r")
    ax.set_yticks(y, names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(f"detection delay, windows of {result['design']['window_docs']} docs")
    stationary = result["scenarios"].get("stationary", {})
    fa = ", ".join(
        f"{g} {info['alerts_raised']}" for g, info in stationary.get("groups", {}).items()
    )
    ax.set_title(
        f"detection delay (bar: median of the seeds that detected; |: max)\n"
        f"alerts raised in {stationary.get('windows', 0)} stationary windows: {fa}",
        fontsize=9,
    )
    ax.legend(fontsize=7)
    fig.suptitle(
        f"drift detection · {result['model']['name']} · windows of "
        f"{result['design']['window_docs']} docs · {result['seeds']} seeds · "
        f"{result['machine']['device']}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
