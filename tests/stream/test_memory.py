"""The worker's allocator (stream/memory.py): freed heap goes back to the OS after a buffer, and
large blocks get their own mappings once the threshold is pinned (glibc)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

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


KEEP = textwrap.dedent(
    """
    import json
    from stream_trf.stream.memory import free_heap_bytes, release_freed_memory

    def rss_mb():
        return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20

    blocks = [bytearray(2048) for _ in range(100_000)]
    pin = bytearray(2048)
    del blocks
    free_mb = free_heap_bytes() / 2**20
    freed = rss_mb()
    kept = release_freed_memory(keep=400 * 2**20)  # more than is free: nothing goes
    after_kept = rss_mb()
    released = release_freed_memory(keep=50 * 2**20)  # less than is free: it goes
    print(json.dumps({"free_mb": free_mb, "freed": freed, "after_kept": after_kept,
                      "after": rss_mb(), "kept": kept, "released": released}))
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; glibc only")
def test_freed_heap_under_the_keep_figure_stays_and_above_it_goes() -> None:
    """``keep_free_mb``: what the next buffers take again is not handed back (a page fault per
    page when they do); more than that free is."""
    out = subprocess.run(
        [sys.executable, "-c", KEEP], capture_output=True, text=True, check=True
    ).stdout
    r = json.loads(out)
    assert r["free_mb"] > 150  # the heap knows what it holds free
    assert r["kept"] is False and abs(r["after_kept"] - r["freed"]) < 10
    assert r["released"] is True and r["freed"] - r["after"] > 150


def test_release_is_safe_to_call_repeatedly() -> None:
    assert release_freed_memory() == release_freed_memory()


# Whether a block comes from its own mapping shows in mallinfo2's ``hblkhd`` (bytes in mmapped
# blocks). A 20 MiB block freed first raises glibc's sliding threshold past 8 MiB, so a later
# 8 MiB block comes from the heap, unless the threshold is pinned.
PINNED = textwrap.dedent(
    """
    import ctypes, json, os, sys
    from stream_trf.stream.memory import configure_allocator

    class Info(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
            "fordblks", "keepcost")]

    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = Info
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    libc.free(libc.malloc(20 << 20))  # glibc now serves blocks up to 20 MiB from the heap
    setup = None
    if sys.argv[1] == "pin":
        setup = configure_allocator(4, huge_pages=False, environ={})
    before = libc.mallinfo2().hblkhd
    block = libc.malloc(8 << 20)
    own_mapping = libc.mallinfo2().hblkhd - before >= 8 << 20
    print(json.dumps({"own_mapping": own_mapping,
                      "pinned": setup.mmap_threshold_mb if setup else None}))
    """
)


def _pinned(mode: str, **env: str) -> dict[str, object]:
    import json
    import os

    out = subprocess.run(
        [sys.executable, "-c", PINNED, mode],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **env},
    ).stdout
    result: dict[str, object] = json.loads(out)
    return result


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallinfo2")
def test_pinned_threshold_gives_large_blocks_their_own_mapping() -> None:
    assert _pinned("leave") == {"own_mapping": False, "pinned": None}  # glibc's sliding one
    assert _pinned("pin") == {"own_mapping": True, "pinned": 4}


def test_the_operators_environment_wins() -> None:
    from stream_trf.stream.memory import configure_allocator

    env = {"MALLOC_MMAP_THRESHOLD_": "131072", "THP_MEM_ALLOC_ENABLE": "0"}
    setup = configure_allocator(4, huge_pages=True, environ=env)
    assert setup.mmap_threshold_mb is None and "environment" in setup.note
    assert setup.huge_pages is False and env["THP_MEM_ALLOC_ENABLE"] == "0"
    tunables = configure_allocator(
        4, True, environ={"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=1"}
    )
    assert tunables.mmap_threshold_mb is None


def test_huge_pages_are_asked_of_torch_only_when_wanted() -> None:
    from stream_trf.stream.memory import configure_allocator

    on: dict[str, str] = {}
    assert configure_allocator(0, huge_pages=True, environ=on).huge_pages is True
    assert on == {"THP_MEM_ALLOC_ENABLE": "1"}
    off: dict[str, str] = {}
    setup = configure_allocator(0, huge_pages=False, environ=off)
    assert setup.huge_pages is False and off == {} and setup.mmap_threshold_mb is None
    assert "not pinned" in setup.describe() and "huge pages off" in setup.describe()


def test_threshold_out_of_glibcs_range_is_refused() -> None:
    from stream_trf.stream.memory import configure_allocator

    with pytest.raises(ValueError, match="mmap_threshold_mb"):
        configure_allocator(64, huge_pages=False, environ={})


def test_kernel_mode_is_read_from_the_bracket(tmp_path: Path) -> None:
    from stream_trf.stream.memory import kernel_huge_pages_mode

    f = tmp_path / "enabled"
    f.write_text("always [madvise] never\n")
    assert kernel_huge_pages_mode(f) == "madvise"
    assert kernel_huge_pages_mode(f.with_name("missing")) == "unknown"


HUGE = textwrap.dedent(
    """
    import json
    from stream_trf.stream.memory import configure_allocator, kernel_huge_pages_mode

    configure_allocator(4, huge_pages=True)  # before torch's first allocation, as the worker
    import torch

    x = torch.ones(16 << 18)  # 16 MiB
    huge = sum(int(l.split()[1]) for l in open("/proc/self/smaps") if l.startswith("AnonHuge"))
    print(json.dumps({"huge_kb": huge, "kernel": kernel_huge_pages_mode()}))
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_torch_tensors_land_on_huge_pages_where_the_kernel_allows() -> None:
    import json
    import os

    env = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    out = subprocess.run(
        [sys.executable, "-c", HUGE], capture_output=True, text=True, check=True, env=env
    ).stdout
    r = json.loads(out)
    if r["kernel"] in ("always", "madvise"):
        assert r["huge_kb"] >= 8 * 1024  # most of the 16 MiB tensor on 2 MiB pages
    else:  # the kernel has THP off: nothing can be on huge pages
        assert r["huge_kb"] == 0


ONEDNN = textwrap.dedent(
    """
    import json, sys
    from stream_trf.stream.memory import configure_allocator

    cache = None if sys.argv[1] == "default" else int(sys.argv[1])
    setup = configure_allocator(0, huge_pages=False, onednn_cache=cache)  # as the worker
    import torch

    x = torch.ones(3, 7, 1536)
    for _ in range(3):  # the same shape three times: a kernel cache compiles it once
        torch.nn.functional.gelu(x)
    print(json.dumps({"cache": setup.onednn_cache}))
    """
)


def _gelu_kernels(cache: str) -> tuple[list[str], int | None]:
    env = {k: v for k, v in os.environ.items() if k != "ONEDNN_PRIMITIVE_CACHE_CAPACITY"}
    env["ONEDNN_VERBOSE"] = "2"  # oneDNN reports each kernel it creates: cache hit or miss
    out = subprocess.run(
        [sys.executable, "-c", ONEDNN, cache], capture_output=True, text=True, check=True, env=env
    ).stdout.splitlines()
    created = [
        line.split(",")[3]
        for line in out
        if line.startswith("onednn_verbose") and ",eltwise," in line and ",create:" in line
    ]
    return created, json.loads(out[-1])["cache"]


def test_onednn_kernel_cache_is_sized_before_the_first_kernel() -> None:
    """The model's GELU runs through oneDNN: with its default cache a shape is compiled once and
    then found; with the worker's 0 it is compiled at each call and nothing is kept."""
    default, reported = _gelu_kernels("default")
    assert reported is None
    assert default == ["create:cache_miss", "create:cache_hit", "create:cache_hit"]
    none, reported = _gelu_kernels("0")
    assert reported == 0
    assert none == ["create:cache_miss"] * 3


def test_the_operators_onednn_cache_wins_and_a_negative_one_is_refused() -> None:
    from stream_trf.stream.memory import configure_allocator

    env = {"ONEDNN_PRIMITIVE_CACHE_CAPACITY": "64"}
    assert configure_allocator(0, False, environ=env, onednn_cache=0).onednn_cache == 64
    assert env["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == "64"
    mine: dict[str, str] = {}
    setup = configure_allocator(0, False, environ=mine, onednn_cache=0)
    assert mine == {"ONEDNN_PRIMITIVE_CACHE_CAPACITY": "0"}
    assert "oneDNN kernel cache 0" in setup.describe()
    with pytest.raises(ValueError, match="onednn_cache"):
        configure_allocator(0, False, environ={}, onednn_cache=-1)


def test_release_every_hands_back_once_per_n_wordpieces_from_any_thread() -> None:
    import threading

    from stream_trf.stream.memory import ReleaseEvery

    calls = []
    hook = ReleaseEvery(1000, release=lambda: calls.append(1) or True)
    hook(400)
    hook(500)
    assert calls == []  # 900 so far
    hook(200)
    assert len(calls) == 1 and hook.releases == 1  # 1,100: once, and the count starts again
    hook(999)
    assert len(calls) == 1

    # lanes call it from their own threads: no release lost or doubled
    hook = ReleaseEvery(100, release=lambda: calls.append(1) or True)
    calls.clear()

    def lane() -> None:
        for _ in range(1000):
            hook(10)

    threads = [threading.Thread(target=lane) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == hook.releases == 400
    with pytest.raises(ValueError, match="positive"):
        ReleaseEvery(0)


def test_freed_heap_asks_glibc_only_after_growth() -> None:
    """``FreedHeap.if_grown`` (after each buffer and on the lanes): glibc, asked with the keep
    figure, decides only once resident memory rose more than the keep figure since it was
    last asked (the real parts: the tests above, and ``resident_bytes`` below)."""
    from stream_trf.stream.memory import FreedHeap

    rss = [1000]
    asked: list[int] = []
    free_is_over_keep = [True]

    def release(keep: int) -> bool:
        asked.append(keep)
        if free_is_over_keep[0]:
            rss[0] -= 50  # a hand-back lowers what is resident
        return free_is_over_keep[0]

    heap = FreedHeap(100, release=release, resident=lambda: rss[0])
    assert heap.if_grown() is False and asked == []  # nothing grew since it was made
    rss[0] = 1101
    assert heap.if_grown() is True and asked == [100]  # glibc decides, with the keep figure
    level = rss[0]  # 1051: the level after it was asked
    rss[0] = level + 100
    assert heap.if_grown() is False and asked == [100]  # grew by keep: not asked
    rss[0] = level + 101
    assert heap.if_grown() is True and asked == [100, 100]  # past it: asked, handed back
    rss[0] += 60  # 10 above the new level
    assert heap.if_grown() is False and len(asked) == 2
    # glibc holding too little free: nothing goes, and the grown level is the new reference
    free_is_over_keep[0] = False
    rss[0] += 200
    assert heap.if_grown() is False and len(asked) == 3
    assert heap.if_grown() is False and len(asked) == 3  # not asked again at that level
    # without /proc glibc decides every time
    blind = FreedHeap(100, release=release, resident=lambda: None)
    asked.clear()
    assert blind.if_grown() is False and blind.if_grown() is False
    assert asked == [100, 100]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_resident_bytes_follows_what_the_process_touches() -> None:
    from stream_trf.stream.memory import resident_bytes

    before = resident_bytes()
    block = bytearray(64 * 2**20)  # zeroed by the allocator: every page touched
    after = resident_bytes()
    assert before is not None and after is not None
    assert after - before > 48 * 2**20
    del block
