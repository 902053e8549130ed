"""The batch processor alone (no Kafka) over 256-doc buffers: speed, CPU, peak memory, growth.

Speed (the default): the first 2,048 docs, 2 buffers of warm-up, then NBUF buffers cycling over
them. Prints one JSON line: docs/s, user and kernel CPU-seconds, CPU-ms and minor page faults per
doc, RSS at the end and the peak (VmHWM), under one allocator setup. Run it once per variant, in
fresh processes, alternating (this host drifts); an earlier commit runs through PYTHONPATH set to
a git worktree of it, with PYTHONSAFEPATH=1 so that ``-m`` does not put this checkout first (the
result's ``code`` says which stream_trf ran). The CPU and peak figures move far less with the
host than docs/s do.

Growth (``--new-docs-passes N``): N passes, each over the *next* 2,048 docs of the corpus (a
stream brings new words, shapes and lengths; the same docs again would hide what grows with
novelty); after each pass a JSON line with RSS and glibc's ``malloc_info`` totals: the heap's
system bytes, its free chunks, and the difference (live bytes). Live bytes that grow are a cache
or a leak; system bytes that grow while live bytes stay are fragmentation.

    python -m bench.experiments.processor_alone 4 1 1 8   # mmap threshold MiB, torch huge
                                                          # pages, malloc_trim per buffer, buffers
    python -m bench.experiments.processor_alone 4 1 1 8 --trace off   # the eager model
    PYTHONSAFEPATH=1 PYTHONPATH=/tmp/old:. python -m bench.experiments.processor_alone 4 1 1 8
    ONEDNN_PRIMITIVE_CACHE_CAPACITY=0 python -m bench.experiments.processor_alone 4 1 1 \\
        --new-docs-passes 6
"""

import argparse
import ctypes
import json
import os
import re
import resource
import tempfile
import time

import orjson

from stream_trf.stream.memory import configure_allocator, release_freed_memory

ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
ap.add_argument("threshold_mb", type=float, help="mmap threshold (0: glibc's own)")
ap.add_argument("huge", choices=("0", "1"), help="torch's huge pages")
ap.add_argument("trim", choices=("0", "1"), help="malloc_trim after each buffer")
ap.add_argument("buffers", type=int, nargs="?", default=8, help="timed buffers (speed mode)")
ap.add_argument("--new-docs-passes", type=int, default=0, help="growth mode: passes over new docs")
ap.add_argument("--trace", choices=("auto", "on", "off"), default="auto", help="trf_tok2vec trace")
ap.add_argument("--pipe-batch", type=int, default=256, help="nlp.pipe batch size in a buffer")
args = ap.parse_args()
setup = configure_allocator(args.threshold_mb, args.huge == "1")

import stream_trf  # noqa: E402  (after the allocator setup, as the worker does)
from bench.harness.corpus import default_data_path, read_texts  # noqa: E402
from stream_trf.stream.enrich import ModelInfo  # noqa: E402
from stream_trf.stream.processor import BatchProcessor, RawMessage  # noqa: E402
from stream_trf.stream.records import Source  # noqa: E402

PER_PASS = 2048

texts = read_texts(default_data_path(), PER_PASS * max(1, args.new_docs_passes))
nlp = stream_trf.load(trace=args.trace)
proc = BatchProcessor(
    nlp,
    ModelInfo("bench", "1"),
    batch_size=args.pipe_batch,
    release=(lambda: False) if args.trim == "0" else release_freed_memory,
)
msgs = [
    RawMessage(orjson.dumps({"id": str(i), "text": t}), Source("in", 0, i))
    for i, t in enumerate(texts)
]
bufs = [msgs[k : k + 256] for k in range(0, len(msgs), 256)]


def status() -> dict[str, str]:
    with open("/proc/self/status") as f:
        return dict(line.split(":", 1) for line in f if ":" in line)


def heap_mb() -> dict[str, float]:
    """glibc's totals over every arena (the part of malloc_info's XML after the last heap)."""
    libc = ctypes.CDLL("libc.so.6")
    libc.fopen.restype = ctypes.c_void_p
    libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    fd, path = tempfile.mkstemp()
    os.close(fd)
    f = libc.fopen(path.encode(), b"w")
    libc.malloc_info(0, f)
    libc.fclose(f)
    with open(path) as fh:
        tail = fh.read().split("</heap>")[-1]
    os.unlink(path)
    free = sum(
        int(x) for x in re.findall(r'<total type="(?:fast|rest)" count="\d+" size="(\d+)"', tail)
    )
    found = re.search(r'<system type="current" size="(\d+)"', tail)
    system = int(found.group(1)) if found else 0
    return {
        "heap_system_mb": round(system / 2**20, 1),
        "heap_free_mb": round(free / 2**20, 1),
        "heap_live_mb": round((system - free) / 2**20, 1),
    }


if args.new_docs_passes:
    per = PER_PASS // 256
    for p in range(args.new_docs_passes):
        for b in bufs[p * per : (p + 1) * per]:
            proc.process(b)
        rss = int(status()["VmRSS"].split()[0]) // 1024
        line = {"pass": p, "docs": (p + 1) * PER_PASS, "rss_mb": rss, **heap_mb()}
        print(json.dumps(line), flush=True)
    raise SystemExit(0)

for b in bufs[:2]:  # warm-up
    proc.process(b)
r0 = resource.getrusage(resource.RUSAGE_SELF)
t0 = time.perf_counter()
for k in range(args.buffers):
    proc.process(bufs[k % len(bufs)])
wall = time.perf_counter() - t0
r1 = resource.getrusage(resource.RUSAGE_SELF)
st = status()
docs = 256 * args.buffers
cpu = r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime
print(
    json.dumps(
        {
            "code": stream_trf.__file__,
            "setup": setup.describe(),
            "trim": args.trim == "1",
            "graph": "traced" if nlp.get_pipe("trf_tok2vec").runner.traced is not None else "eager",
            "pipe_batch": args.pipe_batch,
            "docs": docs,
            "seconds": round(wall, 2),
            "docs_per_s": round(docs / wall, 2),
            "user_s": round(r1.ru_utime - r0.ru_utime, 2),
            "kernel_s": round(r1.ru_stime - r0.ru_stime, 2),
            "cpu_ms_per_doc": round(1000 * cpu / docs, 2),
            "minor_faults_per_doc": round((r1.ru_minflt - r0.ru_minflt) / docs),
            "rss_mb_end": int(st["VmRSS"].split()[0]) // 1024,
            "rss_mb_peak": int(st["VmHWM"].split()[0]) // 1024,
        }
    )
)
