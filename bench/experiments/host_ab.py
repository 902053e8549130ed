"""The worker of this checkout against the worker of an earlier commit, on the host system's
slices (`stream-trf bench --systems host`, issue 29).

One run of bench/harness/host.py with a second worker: the baseline's ``stream_trf`` from a git
worktree of ``--baseline`` (on its ``PYTHONPATH``, with PYTHONSAFEPATH=1 so that this checkout
does not shadow it). Both workers, the floor and the processor take turns on the same slices of
the same documents, so a drift of this host's speed reaches both workers alike: the figure is
the worker's CPU per document against the baseline's, slice by slice (a paired comparison), and
each one's ratio to the floor. ``--rounds`` repeats the whole run, with processes of its own.
The summary pools every slice of every round (``baseline_over_this_pooled``) with a 95 %
bootstrap interval over rounds and pairs of slices: a change of a few percent is inside this
host's noise unless the interval says otherwise.

    python -m bench.experiments.host_ab --baseline 417b1f3 --docs 6144 \\
        --out bench/results/host-ab-cpu-9.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from bench.harness.corpus import default_data_path, read_texts
from bench.harness.host import run_host
from bench.harness.machine import describe, source_revision, worktree


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--baseline", required=True, help="git revision to compare this checkout with")
    ap.add_argument("--docs", type=int, default=6144)
    ap.add_argument("--warmup-docs", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=1, help="whole runs, one after the other")
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--note", default="")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    texts = read_texts(args.data or default_data_path(), args.docs + args.warmup_docs)
    runs: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory(prefix="stream-trf-host-ab-") as tmp,
        worktree(args.baseline, Path(tmp) / "baseline") as base,
    ):
        for r in range(args.rounds):
            logs = Path(tmp) / f"round-{r}"
            logs.mkdir()
            run = run_host(
                texts[: args.docs],
                texts[args.docs :],
                log_dir=logs,
                variants={"baseline": {"PYTHONPATH": str(base), "PYTHONSAFEPATH": "1"}},
            )
            runs.append(run)
            print(json.dumps(_round_summary(run)), flush=True)
    summary = {
        # the baseline's CPU per document over this checkout's, the median of the slices'
        # (over rounds, the median of those): above 1, this checkout costs less
        "baseline_over_this": round(
            statistics.median(
                r["variants"]["baseline"]["over_worker_by_slice"]["median"] for r in runs
            ),
            3,
        ),
        **paired_interval(runs),
        "rounds": [_round_summary(r) for r in runs],
    }
    result = {
        "benchmark": "host-side cost, this checkout's worker against a baseline commit's",
        "command": "python -m bench.experiments.host_ab " + " ".join(sys.argv[1:]),
        "machine": describe(),
        "note": args.note,
        "baseline": args.baseline,
        "this": source_revision(),
        "target": "worker_over_floor <= 1.5",
        "summary": summary,
        "runs": runs,
    }
    print(json.dumps(summary, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


def paired_interval(
    runs: list[dict[str, Any]], confidence: float = 0.95, resamples: int = 9_999, seed: int = 0
) -> dict[str, Any]:
    """The baseline's CPU over this checkout's, pooled over every slice of every round (CPU
    summed), with a bootstrap interval that resamples the rounds, then the pairs of slices
    within each: two processes of the same code differ by several percent on this host (a
    round starts its own), so slices of one round are not independent of each other. With one
    round the interval sees the slices' noise only. An interval that holds 1 has not told the
    two apart. (A two-level resampling: scipy's ``bootstrap`` resamples one level.)"""
    per_round = []
    for run in runs:
        docs = np.array([s["docs"] for s in run["slices"]], dtype=np.float64)
        this = docs * [s["worker_cpu_ms_per_doc"] for s in run["slices"]]
        base = docs * run["variants"]["baseline"]["cpu_ms_per_doc_by_slice"]
        per_round.append((base, this))
    rng = np.random.default_rng(seed)
    found = np.empty(resamples)
    for k in range(resamples):
        base_sum = this_sum = 0.0
        for r in rng.integers(0, len(per_round), len(per_round)):
            base, this = per_round[r]
            picked = rng.integers(0, len(this), len(this))
            base_sum += base[picked].sum()
            this_sum += this[picked].sum()
        found[k] = base_sum / this_sum
    low, high = np.quantile(found, [(1 - confidence) / 2, (1 + confidence) / 2])
    pooled = sum(b.sum() for b, _ in per_round) / sum(t.sum() for _, t in per_round)
    return {
        "baseline_over_this_pooled": round(float(pooled), 4),
        f"baseline_over_this_ci{round(confidence * 100)}": [
            round(float(low), 4),
            round(float(high), 4),
        ],
        "paired_slices": sum(len(t) for _, t in per_round),
    }


def _round_summary(run: dict[str, Any]) -> dict[str, Any]:
    base = run["variants"]["baseline"]
    return {
        "floor_cpu_ms_per_doc": run["floor"]["cpu_ms_per_doc"],
        "this_cpu_ms_per_doc": run["worker"]["cpu_ms_per_doc"],
        "baseline_cpu_ms_per_doc": base["cpu_ms_per_doc"],
        "this_over_floor": run["ratios"]["worker_over_floor"],
        "baseline_over_floor": base["over_floor"],
        "this_over_floor_as_spacy_ships": run["ratios"].get("worker_over_floor_as_spacy_ships"),
        # per slice: the baseline's CPU over this checkout's, on the same slice
        "baseline_over_this_by_slice": base["over_worker_by_slice"],
    }


if __name__ == "__main__":
    main()
