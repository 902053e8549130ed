"""Freed heap goes back to the OS after a buffer (stream/memory.py), on glibc."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from stream_trf.stream.memory import release_freed_memory

PROBE = textwrap.dedent(
    """
    import json
    from stream_trf.stream.memory import release_freed_memory

    def rss_mb():
        return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20

    base = rss_mb()
    # 2 KB blocks (past pymalloc, under the mmap threshold): they come from the heap
    blocks = [bytearray(2048) for _ in range(100_000)]
    pin = bytearray(2048)  # allocated last, kept: the heap's top cannot shrink past it
    full = rss_mb()
    del blocks
    freed = rss_mb()
    ok = release_freed_memory()
    print(json.dumps({"base": base, "full": full, "freed": freed, "after": rss_mb(), "ok": ok}))
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; glibc only")
def test_freed_heap_is_returned_only_when_asked() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True
    ).stdout
    import json

    r = json.loads(out)
    assert r["ok"] is True
    assert r["full"] - r["base"] > 150  # ~200 MB of blocks really were resident
    assert r["freed"] - r["base"] > 150  # freeing them alone returned (almost) nothing
    assert r["freed"] - r["after"] > 150  # the release did


def test_release_is_safe_to_call_repeatedly() -> None:
    assert release_freed_memory() == release_freed_memory()
