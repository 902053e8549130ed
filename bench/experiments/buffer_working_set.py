"""How much resident memory one buffer of the worker's processor takes, by buffer size.

The memory soak's step (RSS ~50-90 MB higher once a worker falls behind and takes full buffers)
is this working set: the processor alone (no Kafka), the worker's allocator setup and pipeline
(``doc_tensor`` off and ``outputs="pooled"`` as without ``--emit-tokens``, freed heap handed
back every ``--release-every`` wordpieces), buffers of 16 to 256 docs from the first 2,048 docs
of the corpus, each run after ``malloc_trim`` from the same base. A
thread samples RSS every 5 ms; per buffer it reports the peak over the base and the size of the
array that holds the buffer's wordpiece rows (the one part known to grow with the buffer).

    python -m bench.experiments.buffer_working_set   # sizes 16 64 256 32 128 256 16
    python -m bench.experiments.buffer_working_set --sizes 16 256 --repeats 5
    python -m bench.experiments.buffer_working_set --words-per-batch 1000   # default: auto (500)
    python -m bench.experiments.buffer_working_set --outputs rows   # default: pooled, as the worker
    python -m bench.experiments.buffer_working_set --release-every -1   # default: the worker's
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from pathlib import Path

from stream_trf.stream.memory import configure_allocator, release_freed_memory

ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
ap.add_argument("--sizes", type=int, nargs="+", default=[16, 64, 256, 32, 128, 256, 16])
ap.add_argument("--repeats", type=int, default=3, help="buffers per size (different docs)")
ap.add_argument(
    "--words-per-batch", type=int, default=0, help="sub-batch size (0: the worker's auto on a CPU)"
)
ap.add_argument(
    "--outputs",
    choices=["pooled", "rows"],
    default="pooled",
    help="trf_tok2vec outputs: pooled (the worker without --emit-tokens) or every row",
)
ap.add_argument(
    "--release-every",
    type=int,
    default=0,
    help="freed heap back every N wordpieces on the lanes, as --release-every of the worker "
    "(0: its auto, -1: after each buffer only)",
)
ap.add_argument("--out", type=Path, default=Path("bench/results/buffer-working-set-cpu.json"))
args = ap.parse_args()
setup = configure_allocator(4, True, onednn_cache=0)  # the worker's defaults

import orjson  # noqa: E402

import stream_trf  # noqa: E402
from bench.harness.corpus import default_data_path, read_texts  # noqa: E402
from bench.harness.machine import describe  # noqa: E402
from stream_trf.stream.enrich import ModelInfo  # noqa: E402
from stream_trf.stream.memory import ReleaseEvery  # noqa: E402
from stream_trf.stream.processor import BatchProcessor, RawMessage  # noqa: E402
from stream_trf.stream.records import Source  # noqa: E402
from stream_trf.stream.worker import worker_release_every, worker_words_per_batch  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**20


texts = read_texts(default_data_path(), 2048)
wpb = args.words_per_batch or worker_words_per_batch(0, "cpu")
nlp = stream_trf.load(doc_tensor=False, words_per_batch=wpb, outputs=args.outputs)
proc = BatchProcessor(nlp, ModelInfo("bench", "1"))
msgs = [
    RawMessage(orjson.dumps({"id": str(i), "text": t}), Source("in", 0, i))
    for i, t in enumerate(texts)
]
tok2vec = nlp.get_pipe("trf_tok2vec")
every = worker_release_every(args.release_every, "cpu")
tok2vec.after_sub_batch = ReleaseEvery(every) if every is not None else None
rows_mb: list[float] = []
# The one private name here: the method that allocates the array of a buffer's rows, spied on
# for that array's size (the part of the working set known to grow with the buffer).
if not hasattr(tok2vec, "_rows_for_lanes"):
    raise SystemExit("trf_tok2vec no longer has _rows_for_lanes: update the spy in this script")
_rows_for_lanes = tok2vec._rows_for_lanes


def _spy(inputs: object) -> object:
    out = _rows_for_lanes(inputs)
    rows_mb.append(out[0].nbytes / 2**20 if out[0] is not None else 0.0)
    return out


tok2vec._rows_for_lanes = _spy
peak = [0.0]
running = [True]


def sample() -> None:
    while running[0]:
        peak[0] = max(peak[0], rss_mb())
        time.sleep(0.005)


threading.Thread(target=sample, daemon=True).start()
proc.process(msgs[:256])  # warm-up: kernels, lazily built state
rows_out = []
for n in args.sizes:
    for rep in range(args.repeats):
        start = (rep * 300) % (len(msgs) - n)
        release_freed_memory()
        time.sleep(0.05)
        base = rss_mb()
        peak[0] = base
        rows_mb.clear()
        t0 = time.perf_counter()
        proc.process(msgs[start : start + n])
        line = {
            "docs": n,
            "base_rss_mb": round(base, 1),
            "peak_over_base_mb": round(peak[0] - base, 1),
            "rows_array_mb": round(sum(rows_mb), 1),
            "seconds": round(time.perf_counter() - t0, 2),
        }
        print(json.dumps(line), flush=True)
        rows_out.append(line)
running[0] = False

by_size: dict[int, list[dict]] = {}
for line in rows_out:
    by_size.setdefault(line["docs"], []).append(line)
summary = {
    str(n): {
        "peak_over_base_mb_median": sorted(x["peak_over_base_mb"] for x in v)[len(v) // 2],
        "rows_array_mb_median": sorted(x["rows_array_mb"] for x in v)[len(v) // 2],
    }
    for n, v in sorted(by_size.items())
}
result = {
    "benchmark": "resident memory of one processor buffer, by buffer size",
    "command": "python -m bench.experiments.buffer_working_set "
    + " ".join(["--sizes", *map(str, args.sizes), "--repeats", str(args.repeats)])
    + f" --words-per-batch {wpb} --outputs {args.outputs} --release-every {every or -1}",
    "machine": describe(),
    "allocator": setup.describe(),
    "words_per_batch": wpb,
    "outputs": args.outputs,
    "release_every": every,
    "summary": summary,
    "buffers": rows_out,
}
args.out.parent.mkdir(parents=True, exist_ok=True)
args.out.write_text(json.dumps(result, indent=2) + "\n")
print(json.dumps(summary))
