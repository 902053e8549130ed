"""The harness's result: ratios against the ceiling and the peers, the targets, a table."""

from __future__ import annotations

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
    # Issue 29: the worker's CPU per document on a near-zero-compute model over the floor (at most).
    "host_worker_over_floor": 1.5,
}
# Targets met by staying at or below them; the rest by reaching them.
AT_MOST = ("paced_latency_p99_ms", "soak_rss_growth", "host_worker_over_floor")


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
        # The same ratio with the two sides alternating every few seconds (bench/harness/library.py).
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
    host = systems.get("host")
    if host and "worker_over_floor" in host.get("ratios", {}):
        ratios["host_worker_over_floor"] = host["ratios"]["worker_over_floor"]
        ratios["host_processor_over_floor"] = host["ratios"]["processor_over_floor"]
        if "worker_less_forward_over_floor" in host["ratios"]:  # the model's own CPU taken off
            ratios["host_worker_less_forward_over_floor"] = host["ratios"][
                "worker_less_forward_over_floor"
            ]
        if "worker_over_floor_as_spacy_ships" in host["ratios"]:  # spaCy's every lexeme attribute
            ratios["host_worker_over_floor_as_spacy_ships"] = host["ratios"][
                "worker_over_floor_as_spacy_ships"
            ]
        met["host_worker_over_floor"] = (
            ratios["host_worker_over_floor"] <= TARGETS["host_worker_over_floor"]
        )
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
        if "floor" in s:  # the host-side system: CPU per document, not throughput
            continue
        pad = s.get("padding_efficiency")
        lines.append(
            f"{s['name']:<34} {s.get('words_per_s', float('nan')):>9.0f} "
            f"{s.get('wordpieces_per_s', float('nan')):>9.0f} "
            f"{'' if pad is None else f'{pad:.3f}':>8} "
            f"{s.get('peak_rss_mb') or float('nan'):>8.0f}"
        )
    for k, v in result.get("ratios", {}).items():
        target = TARGETS.get(k)
        if target is None:
            mark = ""
        elif k in AT_MOST:
            mark = " ✓" if v <= target else f" ✗ (target ≤ {target})"
        else:
            mark = " ✓" if v >= target else f" ✗ (target ≥ {target})"
        lines.append(f"{k}: {v}{mark}")
    for name, f in result.get("precisions", {}).items():
        lines.append(
            f"{name}: {f['speedup']}× fp32, min cosine {f['min_cosine']}, label agreement "
            f"{f.get('label_agreement', 'n/a')} → {'passes' if f['passes'] else 'fails'} the gate"
        )
    host = result["systems"].get("host")
    if host:
        spread = host.get("worker_over_floor_by_slice")
        lines.append(
            "host-side CPU per doc on a near-zero model: floor "
            f"{host['floor']['cpu_ms_per_doc']} ms, processor alone "
            f"{host['processor']['cpu_ms_per_doc']} ms, worker {host['worker']['cpu_ms_per_doc']} ms"
            + (
                f" (the worker's ratio slice by slice: {spread['min']}–{spread['max']}, "
                f"median {spread['median']})"
                if spread
                else ""
            )
        )
    worker = result["systems"].get("worker")
    if worker and worker.get("paced"):
        p = worker["paced"]
        lines.append(
            f"worker latency at {p['rate_docs_per_s']} docs/s: p50 {p.get('latency_ms_p50')} ms, "
            f"p99 {p.get('latency_ms_p99')} ms"
        )
    return "\n".join(lines)
