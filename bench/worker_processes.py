"""One worker process with a lane per core, or one single-threaded process per core?

Runs the worker end to end (saturation, then latency at half of it) once per ``--processes``
value, one after the other, with the packed ceiling's shape measured before, between and after
(this host drifts):

    python bench/worker_processes.py --processes 1,2 --out bench/results/worker-processes-ab-cpu.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from stream_trf.benchmark.corpus import default_data_path, read_texts
from stream_trf.benchmark.harness import _measure
from stream_trf.benchmark.machine import describe
from stream_trf.benchmark.worker import run_worker
from stream_trf.model.source import DEFAULT_MODEL


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=default_data_path())
    ap.add_argument("--docs", type=int, default=2000)
    ap.add_argument("--processes", default="1,2", help="comma-separated values to compare")
    ap.add_argument("--paced-seconds", type=float, default=60.0)
    ap.add_argument("--out", type=Path, default=Path("bench/results/worker-processes-ab-cpu.json"))
    args = ap.parse_args()
    texts = read_texts(args.data, args.docs)
    work = Path(tempfile.mkdtemp(prefix="stream-trf-bench-"))
    texts_file = work / "texts.jsonl"
    texts_file.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    shape = {"engines": [2], "row_lengths": [64], "tokens_per_batch": [1024], "max_tokens": 2048}

    def ceiling() -> float:
        return float(_measure("ceiling", texts_file, DEFAULT_MODEL, shape)["wordpieces_per_s"])

    result: dict[str, Any] = {
        "benchmark": "worker processes A/B",
        "command": "python bench/worker_processes.py --processes " + args.processes,
        "machine": describe(),
        "model": DEFAULT_MODEL,
        "docs": len(texts),
        "ceiling_wordpieces_per_s": [ceiling()],
        "runs": {},
    }
    for n in [int(x) for x in args.processes.split(",")]:
        w = run_worker(
            texts,
            model=DEFAULT_MODEL,
            paced_seconds=args.paced_seconds,
            overrides={"processes": n},
            log_dir=work,
        )
        s, paced = w["saturation"], w["paced"]
        result["runs"][str(n)] = {
            "settings": w["worker_settings"],
            "words_per_s": s["words_per_s"],
            "docs_per_s": s["docs_per_s"],
            "by_process": s["by_process"],
            "paced_docs_per_s": paced["rate_docs_per_s"],
            "latency_ms_p50": paced["latency_ms_p50"],
            "latency_ms_p99": paced["latency_ms_p99"],
            "batch_ms_p50": paced.get("batch_ms_p50"),
            "peak_rss_mb": w["peak_rss_mb"],
        }
        print(n, result["runs"][str(n)], flush=True)
        result["ceiling_wordpieces_per_s"].append(ceiling())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
