"""Freed heap handed back during a buffer (``ReleaseEvery`` on the lanes): memory against speed.

The worker's processor alone (no Kafka), as ``stream-trf worker`` builds it on a CPU (allocator
setup, ``outputs="pooled"``, no ``doc.tensor``, its sub-batch size), over the first 2,048 docs:
once in 16-doc buffers (a worker keeping pace under light load) and once in 256-doc buffers
(one that fell behind). A thread samples RSS every 5 ms. Per variant: docs/s and CPU-ms per doc
of the 256-doc pass, and the median RSS of each pass; the *step* (median at 256 minus median at
16) is what a worker's memory does when its buffers fill, the soak's climb. Each variant runs in
a fresh process, the variants alternate, ``--rounds`` times (this host drifts).

    python bench/lane_release_ab.py                        # variants 0 4000 16000, 3 rounds
    python bench/lane_release_ab.py --variants 0 1 8000 --rounds 2

Variant 0: ``malloc_trim`` after each buffer only (as before); 1: after every sub-batch; N:
every N wordpieces the lanes computed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
ap.add_argument("--variants", type=int, nargs="+", default=[0, 4000, 16000])
ap.add_argument("--rounds", type=int, default=3)
ap.add_argument("--out", type=Path, default=Path("bench/results/lane-release-ab-cpu.json"))
ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
args = ap.parse_args()


def child(every: int) -> dict:
    from stream_trf.stream.memory import ReleaseEvery, configure_allocator

    configure_allocator(4, True, onednn_cache=0)  # the worker's defaults
    import orjson

    import stream_trf
    from stream_trf.benchmark.corpus import default_data_path, read_texts
    from stream_trf.stream.enrich import ModelInfo
    from stream_trf.stream.processor import BatchProcessor, RawMessage
    from stream_trf.stream.records import Source
    from stream_trf.stream.worker import worker_words_per_batch

    page = os.sysconf("SC_PAGE_SIZE")

    def rss_mb() -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * page / 2**20

    texts = read_texts(default_data_path(), 2048)
    nlp = stream_trf.load(
        doc_tensor=False, outputs="pooled", words_per_batch=worker_words_per_batch(0, "cpu")
    )
    tok2vec = nlp.get_pipe("trf_tok2vec")
    hook = ReleaseEvery(every) if every > 0 else None
    tok2vec.after_sub_batch = hook
    proc = BatchProcessor(nlp, ModelInfo("bench", "1"))
    msgs = [
        RawMessage(orjson.dumps({"id": str(i), "text": t}), Source("in", 0, i))
        for i, t in enumerate(texts)
    ]
    samples: list[float] = []
    running = [True]

    def sample() -> None:
        while running[0]:
            samples.append(rss_mb())
            time.sleep(0.005)

    proc.process(msgs[:256])  # warm-up
    proc.process(msgs[256:272])
    threading.Thread(target=sample, daemon=True).start()
    out: dict = {"variant": every}
    for size in (16, 256):
        samples.clear()
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        n = 512 if size == 16 else len(msgs)
        for a in range(0, n, size):
            proc.process(msgs[a : a + size])
        wall = time.perf_counter() - t0
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
        ordered = sorted(samples)
        out[str(size)] = {
            "docs_per_s": round(n / wall, 2),
            "cpu_ms_per_doc": round(1000 * cpu / n, 2),
            "rss_median_mb": round(ordered[len(ordered) // 2], 1),
            "rss_max_mb": round(ordered[-1], 1),
        }
    running[0] = False
    out["step_mb"] = round(out["256"]["rss_median_mb"] - out["16"]["rss_median_mb"], 1)
    out["releases"] = hook.releases if hook is not None else 0
    return out


if args.child is not None:
    print(json.dumps(child(args.child)), flush=True)
    sys.exit(0)

from stream_trf.benchmark.machine import describe  # noqa: E402

runs = []
for r in range(args.rounds):
    for v in args.variants:
        proc = subprocess.run(
            [sys.executable, __file__, "--child", str(v)],
            capture_output=True,
            text=True,
            check=True,
        )
        line = json.loads(proc.stdout.strip().splitlines()[-1])
        line["round"] = r
        print(json.dumps(line), flush=True)
        runs.append(line)

summary = {}
for v in args.variants:
    mine = [x for x in runs if x["variant"] == v]
    summary[str(v)] = {
        "docs_per_s_256": [x["256"]["docs_per_s"] for x in mine],
        "cpu_ms_per_doc_256": [x["256"]["cpu_ms_per_doc"] for x in mine],
        "step_mb": [x["step_mb"] for x in mine],
        "rss_median_256_mb": [x["256"]["rss_median_mb"] for x in mine],
    }
result = {
    "benchmark": "freed heap handed back during a buffer: RSS step (256- vs 16-doc buffers) "
    "and speed",
    "command": "python bench/lane_release_ab.py --variants "
    + " ".join(map(str, args.variants))
    + f" --rounds {args.rounds}",
    "machine": describe(),
    "summary": summary,
    "runs": runs,
}
args.out.parent.mkdir(parents=True, exist_ok=True)
args.out.write_text(json.dumps(result, indent=2) + "\n")
print(json.dumps(summary, indent=1))
