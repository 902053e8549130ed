"""The harness's result: ratios against the ceiling and the peers, targets, a PNG chart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

# Issue 5's targets, as ratios measured in one run.
TARGETS = {
    "library_over_ceiling": 0.90,
    "library_over_ceiling_paired": 0.90,
    "library_padding_efficiency": 0.90,
    "worker_over_ceiling": 0.85,
    "worker_over_spacy_transformers": 1.5,
    "paced_latency_p99_ms": 2000.0,
    "soak_rss_growth": 0.05,
}


def local_ceiling(ceiling: dict[str, Any], system: str) -> float:
    """The ceiling a system is divided by: the mean of the ceiling runs just before and just
    after it when the harness measured those (``ceiling["runs"]``, in order), else the one."""
    runs = ceiling.get("runs") or []
    order = [r["after"] for r in runs]
    if system not in order:
        return float(ceiling["wordpieces_per_s"])
    i = order.index(system)
    around = [runs[i]["wordpieces_per_s"]] + ([runs[i - 1]["wordpieces_per_s"]] if i else [])
    return sum(around) / len(around)


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    """Words/s and wordpieces/s for every system, ratios, and which targets are met."""
    words = result["words"]
    systems = result["systems"]
    library = systems.get("library")
    # Wordpieces per word of *this library's* segmentation (boundary tokens per sentence
    # included): the worker runs the same, so its wordpieces/s follow from its words/s. The
    # ceiling packs the same sentences, so without the library its count gives the same.
    ceiling = systems.get("ceiling")
    wp_per_word = None
    if library:
        wp_per_word = library["wordpieces"] / words
    elif ceiling and ceiling.get("corpus_wordpieces"):
        wp_per_word = ceiling["corpus_wordpieces"] / words
    for s in systems.values():
        if "seconds" in s and "words_per_s" not in s:
            s["words_per_s"] = round(words / s["seconds"], 1)
        if "wordpieces_per_s" not in s and s.get("wordpieces") and s.get("seconds"):
            s["wordpieces_per_s"] = round(s["wordpieces"] / s["seconds"], 1)
    worker = systems.get("worker")
    if worker and wp_per_word and "wordpieces_per_s" not in worker:
        worker["wordpieces_per_s"] = round(worker["words_per_s"] * wp_per_word, 1)
    if ceiling and ceiling.get("runs"):
        runs = [r["wordpieces_per_s"] for r in ceiling["runs"]]
        ceiling["wordpieces_per_s"] = round(sum(runs) / len(runs), 1)
    if ceiling and wp_per_word:
        ceiling["words_per_s"] = round(ceiling["wordpieces_per_s"] / wp_per_word, 1)
    ratios: dict[str, float] = {}
    peer = next((s for k, s in systems.items() if k.startswith("spacy-transformers")), None)
    baselines: dict[str, float] = {}
    if ceiling and library:
        baselines["library"] = round(local_ceiling(ceiling, "library"), 1)
        ratios["library_over_ceiling"] = round(
            library["wordpieces_per_s"] / baselines["library"], 3
        )
    if library and library.get("paired", {}).get("library_over_ceiling") is not None:
        # The same ratio with the two sides alternating every few seconds (benchmark/library.py).
        ratios["library_over_ceiling_paired"] = library["paired"]["library_over_ceiling"]
    if ceiling and worker and "wordpieces_per_s" in worker:
        baselines["worker"] = round(local_ceiling(ceiling, "worker"), 1)
        ratios["worker_over_ceiling"] = round(worker["wordpieces_per_s"] / baselines["worker"], 3)
    if peer and worker:
        ratios["worker_over_spacy_transformers"] = round(
            worker["words_per_s"] / peer["words_per_s"], 3
        )
    if peer and library:
        ratios["library_over_spacy_transformers"] = round(
            library["words_per_s"] / peer["words_per_s"], 3
        )
    met: dict[str, bool] = {}
    for key in (
        "library_over_ceiling",
        "library_over_ceiling_paired",
        "worker_over_ceiling",
        "worker_over_spacy_transformers",
    ):
        if key in ratios:
            met[key] = ratios[key] >= TARGETS[key]
    if library:
        met["library_padding_efficiency"] = (
            library["padding_efficiency"] >= TARGETS["library_padding_efficiency"]
        )
    if worker and worker.get("paced", {}).get("latency_ms_p99") is not None:
        met["paced_latency_p99_ms"] = (
            worker["paced"]["latency_ms_p99"] < TARGETS["paced_latency_p99_ms"]
        )
    if worker and worker.get("soak") and "rss_growth" in worker["soak"]:
        met["soak_rss_growth"] = worker["soak"]["rss_growth"] < TARGETS["soak_rss_growth"]
    result["wordpieces_per_word"] = round(wp_per_word, 4) if wp_per_word else None
    result["ratios"] = ratios
    if baselines:
        result["ceiling_baselines"] = baselines
    result["targets"] = TARGETS
    result["met"] = met
    return result


def table(result: dict[str, Any]) -> str:
    lines = [f"{'system':<34} {'words/s':>9} {'wp/s':>9} {'pad eff':>8} {'RSS MB':>8}"]
    for s in result["systems"].values():
        pad = s.get("padding_efficiency")
        lines.append(
            f"{s['name']:<34} {s.get('words_per_s', float('nan')):>9.0f} "
            f"{s.get('wordpieces_per_s', float('nan')):>9.0f} "
            f"{'' if pad is None else f'{pad:.3f}':>8} "
            f"{s.get('peak_rss_mb') or float('nan'):>8.0f}"
        )
    for k, v in result.get("ratios", {}).items():
        target = TARGETS.get(k)
        mark = "" if target is None else (" ✓" if v >= target else f" ✗ (target ≥ {target})")
        lines.append(f"{k}: {v}{mark}")
    for name, f in result.get("precisions", {}).items():
        lines.append(
            f"{name}: {f['speedup']}× fp32, min cosine {f['min_cosine']}, label agreement "
            f"{f.get('label_agreement', 'n/a')} → {'passes' if f['passes'] else 'fails'} the gate"
        )
    worker = result["systems"].get("worker")
    if worker and worker.get("paced"):
        p = worker["paced"]
        lines.append(
            f"worker latency at {p['rate_docs_per_s']} docs/s: p50 {p.get('latency_ms_p50')} ms, "
            f"p99 {p.get('latency_ms_p99')} ms"
        )
    return "\n".join(lines)


def chart(result: dict[str, Any], path: Path) -> None:
    """Throughput bars against the ceiling, padding efficiency, the batch-shape sweep, and the
    worker's RSS over a memory soak (where there was one)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    systems = list(result["systems"].values())
    sweep = result.get("sweep") or []
    soak = (result["systems"].get("worker") or {}).get("soak") or {}
    panels = 2 + bool(sweep) + bool(soak.get("rss_samples"))
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 4.2))
    ax = axes[0]
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
        for i, (key, v) in enumerate(zip(result["systems"], wps)):
            base = baselines.get(key, ceiling["wordpieces_per_s"])
            ax.text(v, i, f" {v / base:.2f}×", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("wordpieces/s (boundary tokens count)")
    ax.set_title("throughput vs the packed ceiling (band: its runs)")
    ax = axes[1]
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
    if sweep:
        ax = axes[2]
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
    if soak.get("rss_samples"):
        _soak_panel(axes[-1], soak)
    fig.suptitle(f"{result['model']} · {result['docs']} docs · {result['machine']['device']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


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
