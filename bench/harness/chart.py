"""The harness's chart: throughput against the ceiling, words/s, the sub-batch sweep, the
host-side CPU per document and the worker's memory over a soak, in one PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def chart(result: dict[str, Any], path: Path) -> None:
    """Throughput bars against the ceiling, padding efficiency, the batch-shape sweep, and the
    worker's RSS over a memory soak (where there was one)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k, s in result["systems"].items() if "floor" not in s]
    systems = [result["systems"][k] for k in keys]
    host = result["systems"].get("host")
    sweep = result.get("sweep") or []
    soak = (result["systems"].get("worker") or {}).get("soak") or {}
    throughput = 2 if systems else 0
    panels = throughput + bool(sweep) + bool(host) + bool(soak.get("rss_samples"))
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 4.2), squeeze=False)
    axes = axes[0]
    if throughput:
        _throughput_panels(axes[0], axes[1], result, keys, systems)
    if sweep:
        _sweep_panel(axes[throughput], sweep)
    if host:
        _host_panel(axes[throughput + bool(sweep)], host)
    if soak.get("rss_samples"):
        _soak_panel(axes[-1], soak)
    fig.suptitle(f"{result['model']} · {result['docs']} docs · {result['machine']['device']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _throughput_panels(
    ax: Any, words_ax: Any, result: dict[str, Any], keys: list[str], systems: list[dict[str, Any]]
) -> None:
    """Wordpieces/s of each system against the ceiling, and words/s with padding efficiency."""
    names = [s["name"] for s in systems]
    wps = [s.get("wordpieces_per_s", 0) for s in systems]
    colors = ["#888888" if "ceiling" in n else "#1f77b4" for n in names]
    for i, n in enumerate(names):
        if n.startswith(("library", "worker")):
            colors[i] = "#2ca02c"
    ax.barh(names, wps, color=colors)
    ceiling = result["systems"].get("ceiling")
    if ceiling:
        ax.axvline(ceiling["wordpieces_per_s"], color="k", ls="--", lw=1)
        runs = [r["wordpieces_per_s"] for r in ceiling.get("runs") or []]
        if len(runs) > 1:  # how far the ceiling itself moved during the run
            ax.axvspan(min(runs), max(runs), color="k", alpha=0.08, lw=0)
        # Each system over the ceiling it is divided by in the ratios (the runs around it).
        baselines = result.get("ceiling_baselines", {})
        for i, (key, v) in enumerate(zip(keys, wps)):
            base = baselines.get(key, ceiling["wordpieces_per_s"])
            ax.text(v, i, f" {v / base:.2f}×", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("wordpieces/s (boundary tokens count)")
    ax.set_title("throughput vs the packed ceiling (band: its runs)")
    ax = words_ax
    words = [s.get("words_per_s", 0) for s in systems]
    ax.barh(names, words, color=colors)
    for i, v in enumerate(words):
        pad = systems[i].get("padding_efficiency")
        extra = "" if pad is None else f"  pad {pad:.2f}"
        ax.text(v, i, f" {v:.0f}{extra}", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_yticklabels([])
    ax.set_xlabel("words/s")
    ax.set_title("words/s (same texts, same word count)")


def _sweep_panel(ax: Any, sweep: list[dict[str, Any]]) -> None:
    """The library's throughput and padding over its sub-batch sizes."""
    if sweep:
        xs = [p["words_per_batch"] for p in sweep]
        ax.plot(xs, [p["wordpieces_per_s"] for p in sweep], "o-", label="library wp/s")
        ax2 = ax.twinx()
        ax2.plot(xs, [p["padding_efficiency"] for p in sweep], "s--", color="C1", label="padding")
        ax2.set_ylim(0, 1.05)
        ax2.set_ylabel("padding efficiency")
        ax.set_xscale("log")
        ax.set_xlabel("words_per_batch (padded wordpieces per sub-batch)")
        ax.set_ylabel("wordpieces/s")
        ax.set_title("sub-batch shape sweep")


def _host_panel(ax: Any, host: dict[str, Any]) -> None:
    """CPU per document on the near-zero model, all measured on the same slices in turn: the
    floor by part, the processor alone and the worker end to end, each labelled with its ratio
    to the floor (the worker's with the range of its slices' ratios), and the worker's target
    (1.5 × the floor)."""
    floor = host["floor"]
    left = 0.0
    colors = ("#bbbbbb", "#999999", "#777777")
    for (name, ms), color in zip(floor["parts_cpu_ms_per_doc"].items(), colors):
        ax.barh("floor", ms, left=left, color=color, label=name.replace("_", " "))
        left += ms
    ratios = host.get("ratios", {})
    bars = [
        ("processor alone", host["processor"]["cpu_ms_per_doc"], "#2ca02c", "processor_over_floor")
    ]
    if host["worker"].get("cpu_ms_per_doc"):
        bars.append(("worker", host["worker"]["cpu_ms_per_doc"], "#1f77b4", "worker_over_floor"))
    spread = host.get("worker_over_floor_by_slice")
    for name, ms, color, key in bars:
        ax.barh(name, ms, color=color)
        if key in ratios:
            label = f" {ratios[key]:.2f}× floor"
            if key == "worker_over_floor" and spread:
                label += f" (slices {spread['min']:.2f}–{spread['max']:.2f})"
            ax.text(ms, name, label, va="center", fontsize=8)
    target = 1.5 * floor["cpu_ms_per_doc"]
    ax.axvline(target, color="k", ls="--", lw=1, label="worker's target: 1.5× floor")
    ax.set_xlim(0, 1.6 * max([left, target] + [ms for _, ms, _, _ in bars]))
    ax.invert_yaxis()
    ax.set_xlabel("CPU ms per document")
    ax.set_title("host-side cost, near-zero model")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)


def _soak_panel(ax: Any, soak: dict[str, Any]) -> None:
    """RSS over the soak, with the two windows its growth figure compares and the fitted trend."""
    t = [s[0] / 60 for s in soak["rss_samples"]]
    rss = [s[1] for s in soak["rss_samples"]]
    ax.plot(t, rss, lw=0.8, color="#1f77b4", label="worker RSS")
    end = t[-1]
    if "rss_mb_after_warmup" in soak:
        ax.hlines(
            soak["rss_mb_after_warmup"],
            end * 0.25,
            end * 0.5,
            color="C1",
            lw=2,
            label="median, 2nd quarter",
        )
        ax.hlines(
            soak["rss_mb_end"], end * 0.75, end, color="C3", lw=2, label="median, last quarter"
        )
        ax.axvspan(0, end * 0.25, color="k", alpha=0.06, lw=0)
    ax.set_xlabel("minutes")
    ax.set_ylabel("RSS MB")
    ax.set_ylim(0, max(rss) * 1.1)
    growth = soak.get("rss_growth")
    pace = (
        ""
        if soak.get("kept_pace") is None
        else ("kept pace" if soak["kept_pace"] else "fell behind")
    )
    ax.set_title(
        f"memory soak at {soak['rate_docs_per_s']} docs/s\n"
        + ("" if growth is None else f"growth {growth:+.1%}")
        + (f", {pace}" if pace else "")
    )
    ax.legend(fontsize=7, loc="lower right")
