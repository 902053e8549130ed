"""The batch processor alone (no Kafka) over 256-doc buffers: speed, CPU and peak memory.

Prints one JSON line: docs/s, user and kernel CPU-seconds, CPU-ms and minor page faults per doc,
RSS at the end and the peak (VmHWM), under one allocator setup. Run it once per variant, in
fresh processes, alternating (this host drifts); an earlier commit runs through PYTHONPATH set to
a git worktree of it. The CPU and peak figures move far less with the host than docs/s do.

    python bench/processor_alone.py 4 1 1 8      # mmap threshold MiB, torch huge pages,
                                                # malloc_trim per buffer, buffers
    PYTHONPATH=/tmp/old python bench/processor_alone.py 4 1 1 8
"""

import json
import resource
import sys
import time

import orjson

from stream_trf.stream.memory import configure_allocator

thr, huge, trim = float(sys.argv[1]), sys.argv[2] == "1", sys.argv[3] == "1"
nbuf = int(sys.argv[4]) if len(sys.argv) > 4 else 8
setup = configure_allocator(thr, huge)

import stream_trf  # noqa: E402  (after the allocator setup, as the worker does)
from stream_trf.benchmark.corpus import default_data_path, read_texts  # noqa: E402
from stream_trf.stream import processor as proc_module  # noqa: E402
from stream_trf.stream.enrich import ModelInfo  # noqa: E402
from stream_trf.stream.processor import BatchProcessor, RawMessage  # noqa: E402
from stream_trf.stream.records import Source  # noqa: E402

if not trim:
    proc_module.release_freed_memory = lambda: False  # type: ignore[assignment]
texts = read_texts(default_data_path(), 2048)
nlp = stream_trf.load()
proc = BatchProcessor(nlp, ModelInfo("bench", "1"))
msgs = [
    RawMessage(orjson.dumps({"id": str(i), "text": t}), Source("in", 0, i))
    for i, t in enumerate(texts)
]
bufs = [msgs[k : k + 256] for k in range(0, len(msgs), 256)]
for b in bufs[:2]:  # warm-up
    proc.process(b)
r0 = resource.getrusage(resource.RUSAGE_SELF)
t0 = time.perf_counter()
for k in range(nbuf):
    proc.process(bufs[k % len(bufs)])
wall = time.perf_counter() - t0
r1 = resource.getrusage(resource.RUSAGE_SELF)
with open("/proc/self/status") as f:
    status = dict(line.split(":", 1) for line in f if ":" in line)
docs = 256 * nbuf
cpu = r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime
print(
    json.dumps(
        {
            "code": stream_trf.__file__,
            "setup": setup.describe(),
            "trim": trim,
            "docs": docs,
            "seconds": round(wall, 2),
            "docs_per_s": round(docs / wall, 2),
            "user_s": round(r1.ru_utime - r0.ru_utime, 2),
            "kernel_s": round(r1.ru_stime - r0.ru_stime, 2),
            "cpu_ms_per_doc": round(1000 * cpu / docs, 2),
            "minor_faults_per_doc": round((r1.ru_minflt - r0.ru_minflt) / docs),
            "rss_mb_end": int(status["VmRSS"].split()[0]) // 1024,
            "rss_mb_peak": int(status["VmHWM"].split()[0]) // 1024,
        }
    )
)
