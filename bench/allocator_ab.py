"""Does the worker's allocator setup (stream/memory.py) keep RSS flat, and what does it cost?

The batch processor alone (no Kafka), the same docs several times over in 256-doc buffers, once
per allocator setup, each in a fresh process, setups alternating over ``--repeats`` rounds
(this host drifts): docs/s and the RSS sampled every 50 ms, per pass.

    python bench/allocator_ab.py --docs 2048 --passes 2 --repeats 2 \
        --out bench/results/allocator-ab-cpu.json

Setups: ``glibc`` (its sliding mmap threshold), ``pinned`` (threshold 4 MiB), ``pinned+thp``
(and torch's huge pages: the worker's default).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from stream_trf.benchmark.corpus import default_data_path
from stream_trf.benchmark.machine import describe

SETUPS = {"glibc": (0.0, False), "pinned": (4.0, False), "pinned+thp": (4.0, True)}

ONE = """
import gzip, json, os, resource, sys, threading, time
from stream_trf.stream.memory import configure_allocator
threshold, huge, data, docs, passes = float(sys.argv[1]), sys.argv[2] == "1", sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
os.environ.pop("THP_MEM_ALLOC_ENABLE", None)
setup = configure_allocator(threshold, huge)
import numpy as np, orjson
from stream_trf.settings import Settings
from stream_trf.stream.processor import RawMessage
from stream_trf.stream.records import Source
from stream_trf.stream.worker import build_processor

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

texts = [json.loads(l)["text"] for l, _ in zip(gzip.open(data, "rt"), range(docs))]
proc = build_processor(Settings())
msgs = [RawMessage(orjson.dumps({"id": f"d{i}", "text": t}), Source("in", 0, i), None) for i, t in enumerate(texts)]
proc.process(msgs[:64])
out = []
for p in range(passes):
    samples, stop = [], threading.Event()
    def sample():
        while not stop.wait(0.05):
            samples.append(rss())
    th = threading.Thread(target=sample, daemon=True)
    th.start()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    for i in range(0, len(msgs), 256):
        proc.process(msgs[i : i + 256])
    secs = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    stop.set(); th.join()
    q = np.percentile(samples, [10, 50, 90, 100])
    out.append({"docs_per_s": round(len(msgs) / secs, 2), "rss_mb_p10": round(q[0]), "rss_mb_p50": round(q[1]), "rss_mb_p90": round(q[2]), "rss_mb_max": round(q[3]), "user_s": round(r1.ru_utime - r0.ru_utime, 2), "kernel_s": round(r1.ru_stime - r0.ru_stime, 2), "minor_faults_per_doc": round((r1.ru_minflt - r0.ru_minflt) / len(msgs))})
print(json.dumps({"setup": setup.describe(), "passes": out}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=default_data_path())
    ap.add_argument("--docs", type=int, default=2048)
    ap.add_argument("--passes", type=int, default=2, help="passes over the docs per process")
    ap.add_argument("--repeats", type=int, default=2, help="rounds of alternating setups")
    ap.add_argument(
        "--setups",
        default="",
        help="NAME=MiB:huge,... instead of the three above, e.g. 'pinned-2=2:0,pinned-2+thp=2:1'",
    )
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    setups = dict(SETUPS)
    if args.setups:
        setups = {}
        for item in args.setups.split(","):
            name, spec = item.split("=")
            mib, huge = spec.split(":")
            setups[name] = (float(mib), huge == "1")
    runs: list[dict[str, Any]] = []
    for r in range(args.repeats):
        for name, (threshold, huge) in setups.items():
            cmd = [sys.executable, "-c", ONE, str(threshold), "1" if huge else "0"]
            cmd += [str(args.data), str(args.docs), str(args.passes)]
            res = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
            runs.append({"round": r, "name": name, **res})
            p = res["passes"]
            print(
                f"round {r} {name:11s} docs/s {[x['docs_per_s'] for x in p]}  "
                f"RSS p50 {[x['rss_mb_p50'] for x in p]}  max {[x['rss_mb_max'] for x in p]}  "
                f"kernel s {[x['kernel_s'] for x in p]}  faults/doc {[x['minor_faults_per_doc'] for x in p]}",
                flush=True,
            )
    result = {
        "benchmark": "allocator A/B (batch processor alone)",
        "command": " ".join(sys.argv),
        "machine": describe(),
        "docs": args.docs,
        "runs": runs,
    }
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
