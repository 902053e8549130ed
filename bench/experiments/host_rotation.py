"""The host system with one worker in its rotation against the same with two workers of the same
code, run after run, interleaved: does a second worker in the rotation (as ``host_ab`` runs
one) change what the first one reads?

Each run is a whole ``run_host`` (``bench/harness/host.py``) on the same documents: the floor,
the processor and the worker, plus, every other run, a second worker of this checkout as a
variant. The order of the two kinds alternates from one pair of runs to the next, so that a
drift of this host's speed reaches both alike.

    python -m bench.experiments.host_rotation --pairs 4 \\
        --out bench/results/host-rotation-cpu.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.harness.corpus import default_data_path, read_texts
from bench.harness.host import run_host
from bench.harness.machine import describe, source_revision


def one_run(docs: list[str], warmup: list[str], two: bool) -> dict[str, Any]:
    """One ``run_host``, with a second worker of the same code when ``two``."""
    with tempfile.TemporaryDirectory(prefix="stream-trf-host-rotation-") as tmp:
        variants = {"second": {"STREAM_TRF_HOST_ROTATION": "second"}} if two else None
        result = run_host(docs, warmup, log_dir=Path(tmp), variants=variants)
    row = {
        "workers": 2 if two else 1,
        "floor_cpu_ms_per_doc": result["floor"]["cpu_ms_per_doc"],
        "worker_over_floor": result["ratios"]["worker_over_floor"],
        "worker_over_floor_as_spacy_ships": result["ratios"]["worker_over_floor_as_spacy_ships"],
    }
    if two:
        row["second_worker_over_floor"] = result["variants"]["second"]["over_floor"]
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=int, default=6144)
    ap.add_argument("--warmup-docs", type=int, default=3000)
    ap.add_argument("--pairs", type=int, default=4, help="runs of each kind, interleaved")
    ap.add_argument("--out", type=Path, default=None, help="write the result here as JSON")
    args = ap.parse_args()

    texts = read_texts(default_data_path(), args.docs + args.warmup_docs)
    docs, warmup = texts[: args.docs], texts[args.docs :]
    started = time.perf_counter()
    runs: list[dict[str, Any]] = []
    for p in range(args.pairs):
        for two in (False, True) if p % 2 == 0 else (True, False):
            runs.append(one_run(docs, warmup, two))
            print(json.dumps(runs[-1]), flush=True)

    def ratios(workers: int) -> list[float]:
        return [r["worker_over_floor"] for r in runs if r["workers"] == workers]

    result = {
        "benchmark": "host_rotation",
        "command": "python -m bench.experiments.host_rotation "
        f"--docs {args.docs} --warmup-docs {args.warmup_docs} --pairs {args.pairs}",
        "revision": source_revision(),
        "machine": describe(),
        "seconds": round(time.perf_counter() - started, 1),
        "runs": runs,
        "worker_over_floor_median": {
            "one worker": round(statistics.median(ratios(1)), 3),
            "two workers": round(statistics.median(ratios(2)), 3),
        },
    }
    print(json.dumps(result["worker_over_floor_median"]))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
