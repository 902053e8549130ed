"""The processor alone over new docs: does its memory keep growing, and is it live bytes or holes?

Each pass takes the next 2,048 docs of the corpus (a stream brings new words, shapes and
lengths; the same docs again would hide what grows with novelty), in 256-doc buffers, under the
worker's allocator setup; after each pass it prints RSS and glibc's ``malloc_info`` totals:
the heap's system bytes, its free chunks, and the difference (live bytes). Live bytes that
grow are a cache or a leak; system bytes that grow while live bytes stay are fragmentation.

    python bench/processor_growth.py 2048 6                                   # oneDNN's cache
    ONEDNN_PRIMITIVE_CACHE_CAPACITY=0 python bench/processor_growth.py 2048 6 # the worker's
"""

import ctypes
import json
import os
import re
import sys
import tempfile

import orjson

from stream_trf.stream.memory import configure_allocator

setup = configure_allocator(4, True)

import stream_trf  # noqa: E402  (after the allocator setup, as the worker does)
from stream_trf.benchmark.corpus import default_data_path, read_texts  # noqa: E402
from stream_trf.stream.enrich import ModelInfo  # noqa: E402
from stream_trf.stream.processor import BatchProcessor, RawMessage  # noqa: E402
from stream_trf.stream.records import Source  # noqa: E402

per_pass, passes = int(sys.argv[1]), int(sys.argv[2])
texts = read_texts(default_data_path(), per_pass * passes)
nlp = stream_trf.load()
proc = BatchProcessor(nlp, ModelInfo("bench", "1"))
msgs = [
    RawMessage(orjson.dumps({"id": str(i), "text": t}), Source("in", 0, i))
    for i, t in enumerate(texts)
]
libc = ctypes.CDLL("libc.so.6")
libc.fopen.restype = ctypes.c_void_p
libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
libc.fclose.argtypes = [ctypes.c_void_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]


def heap_mb() -> dict[str, float]:
    """glibc's totals over every arena (the part of malloc_info's XML after the last heap)."""
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
    system = int(re.search(r'<system type="current" size="(\d+)"', tail).group(1))
    return {
        "heap_system_mb": round(system / 2**20, 1),
        "heap_free_mb": round(free / 2**20, 1),
        "heap_live_mb": round((system - free) / 2**20, 1),
    }


def rss_mb() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 // 2**20


print(
    json.dumps(
        {
            "setup": setup.describe(),
            "onednn_cache_env": os.environ.get("ONEDNN_PRIMITIVE_CACHE_CAPACITY"),
        }
    )
)
for p in range(passes):
    chunk = msgs[p * per_pass : (p + 1) * per_pass]
    for k in range(0, len(chunk), 256):
        proc.process(chunk[k : k + 256])
    print(
        json.dumps({"pass": p, "docs": (p + 1) * per_pass, "rss_mb": rss_mb(), **heap_mb()}),
        flush=True,
    )
