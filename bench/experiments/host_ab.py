"""The worker of this checkout against the worker of an earlier commit, on the host system's
slices (`stream-trf bench --systems host`, issue 29).

One run of bench/harness/host.py with a second worker: the baseline's ``stream_trf`` from a git
worktree of ``--baseline`` (on its ``PYTHONPATH``, with PYTHONSAFEPATH=1 so that this checkout
does not shadow it). Both workers, the floor and the processor take turns on the same slices of
the same documents, so a drift of this host's speed reaches both workers alike: the figure is
the worker's CPU per document against the baseline's, slice by slice (a paired comparison), and
each one's ratio to the floor. ``--rounds`` repeats the whole run. The summary pools every
slice of every round (``baseline_over_this_pooled``) and gives a 95 % bootstrap interval over
the pairs of slices: a change of 1-2 % is inside this host's noise unless the interval says
otherwise.

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


def paired_interval(runs: list[dict[str, Any]], confidence: float = 0.95) -> dict[str, Any]:
    """The baseline's CPU over this checkout's, pooled over every slice of every round (CPU
    summed), with a bootstrap interval that resamples the slices in pairs (scipy's BCa): how
    far the figure could move with other slices of this host's noise. An interval that holds
    1 has not told the two apart."""
    from scipy.stats import bootstrap

    docs = np.array([s["docs"] for r in runs for s in r["slices"]], dtype=np.float64)
    this = docs * [s["worker_cpu_ms_per_doc"] for r in runs for s in r["slices"]]
    base = docs * [c for r in runs for c in r["variants"]["baseline"]["cpu_ms_per_doc_by_slice"]]

    def ratio(b: np.ndarray, t: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.asarray(b.sum(axis=axis) / t.sum(axis=axis))

    found = bootstrap(
        (base, this), ratio, paired=True, vectorized=True, confidence_level=confidence,
        n_resamples=9_999, random_state=0,
    )  # fmt: skip
    interval = found.confidence_interval
    return {
        "baseline_over_this_pooled": round(float(ratio(base, this)), 4),
        f"baseline_over_this_ci{round(confidence * 100)}": [
            round(float(interval.low), 4),
            round(float(interval.high), 4),
        ],
        "paired_slices": len(docs),
    }


def _round_summary(run: dict[str, Any]) -> dict[str, Any]:
    base = run["variants"]["baseline"]
    return {
        "floor_cpu_ms_per_doc": run["floor"]["cpu_ms_per_doc"],
        "this_cpu_ms_per_doc": run["worker"]["cpu_ms_per_doc"],
        "baseline_cpu_ms_per_doc": base["cpu_ms_per_doc"],
        "this_over_floor": run["ratios"]["worker_over_floor"],
        "baseline_over_floor": base["over_floor"],
        # per slice: the baseline's CPU over this checkout's, on the same slice
        "baseline_over_this_by_slice": base["over_worker_by_slice"],
    }


if __name__ == "__main__":
    main()
