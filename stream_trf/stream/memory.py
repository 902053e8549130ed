"""Keep a long-running worker's resident memory low and level: how its process allocates and frees.

Three things make a worker's RSS climb with time and with load; this module answers them:

* **Freed heap kept.** glibc keeps the heap pages its batch-sized arrays (activations, wordpiece
  rows, serialized outputs: MBs each, a different size every sub-batch) leave free.
  ``FreedHeap`` hands whole free pages back (``malloc_trim``) after each buffer once more than
  ``keep_free_mb`` is free, and on the lanes (``ReleaseEvery`` N wordpieces) once resident
  memory rose more than that: below it the pages are what the next buffer takes again, and
  handing them back cost a page fault each (a sixth of the host's CPU per document on a fast
  device).
* **Fragmentation.** glibc raises its mmap threshold each time a large block is freed (up to
  32 MiB), so such blocks come from the heap and fragment it. ``configure_allocator`` pins the
  threshold (4 MiB by default): every block at least that large gets its own mapping and goes
  back to the OS the moment it is freed. It lowers the level and the creep, without removing
  it. Fresh mappings cost page faults, which torch's huge pages (``THP_MEM_ALLOC_ENABLE``) take
  back. (docs/decisions/allocator.md)
* **A kernel per shape, kept.** oneDNN compiles a kernel for each tensor shape it runs (the
  model's GELU) and keeps up to 1,024. Sub-batch shapes hardly repeat, so that cache only
  grows; the worker turns it off (``ONEDNN_PRIMITIVE_CACHE_CAPACITY=0``), and compiling at each
  call costs less than the cache did. (docs/decisions/onednn-cache.md)

All are process-wide, so the worker sets them (``stream-trf worker``), not the library: a
host application's allocator is its own business. An operator's own ``MALLOC_MMAP_THRESHOLD_``,
``GLIBC_TUNABLES``, ``THP_MEM_ALLOC_ENABLE`` or ``ONEDNN_PRIMITIVE_CACHE_CAPACITY`` wins. The
allocator settings are no-ops where the C library is not glibc (musl, macOS, Windows).
"""

from __future__ import annotations

import ctypes
import functools
import os
import threading
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path

from ..libc import libc
from ..settings import MAX_MMAP_THRESHOLD_MB

# mallopt's parameter number for the mmap threshold (malloc.h)
M_MMAP_THRESHOLD = -3
THP_SYSFS = Path("/sys/kernel/mm/transparent_hugepage/enabled")
ONEDNN_CACHE_ENV = "ONEDNN_PRIMITIVE_CACHE_CAPACITY"


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    trim = getattr(libc(), "malloc_trim", None)
    if trim is None:
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
            "fordblks", "keepcost",
        )
    ]  # fmt: skip


@functools.cache
def _mallinfo2() -> Callable[[], _MallInfo2] | None:
    info = getattr(libc(), "mallinfo2", None)  # glibc 2.33+
    if info is None:
        return None
    info.argtypes = []
    info.restype = _MallInfo2
    return info


def free_heap_bytes() -> int | None:
    """Bytes the heap holds free (glibc's ``fordblks``, every arena); None where unknown.

    Not cheap: glibc walks every free chunk of every arena to answer, milliseconds on a
    worker's fragmented heap (4 ms a call measured: a tenth of a millisecond per document when
    asked every few sub-batches). Ask it once a buffer, not on the lanes."""
    info = _mallinfo2()
    return None if info is None else int(info().fordblks)


def resident_bytes() -> int | None:
    """This process's resident memory (``/proc/self/statm``, microseconds); None without /proc."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return None


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def release_freed_memory(keep: int = 0) -> bool:
    """Return free heap pages to the OS, when the heap holds more than ``keep`` bytes free (see
    ``free_heap_bytes`` for what asking costs): what a next buffer takes again costs a page
    fault per page handed back. True when it did."""
    trim = _malloc_trim()
    if trim is None:
        return False
    free = free_heap_bytes() if keep > 0 else None
    if free is not None and free <= keep:
        return False
    trim(0)
    return True


class FreedHeap:
    """When a worker hands its freed heap back (``release_freed_memory``, glibc asked whether
    more than ``keep`` bytes are free): after a buffer and on the lanes, only once resident
    memory rose more than ``keep`` since glibc was last asked, since asking costs milliseconds
    (a hundredth of a CPU-ms per document, asked after every 256-doc buffer) and reading
    resident memory microseconds. Heap holes piling up show as growth; a heap that did not grow
    has nothing new to hand back. Thread-safe."""

    def __init__(
        self,
        keep: int,
        *,
        release: Callable[[int], bool] = release_freed_memory,
        resident: Callable[[], int | None] = resident_bytes,
    ) -> None:
        self.keep = keep
        self._release = release
        self._resident = resident
        self._lock = threading.Lock()
        self._level = resident()

    def if_grown(self) -> bool:
        """Ask glibc (and hand back what it holds free above ``keep``) if resident memory rose
        more than ``keep`` since it was last asked, or if there is no /proc to tell; True when
        heap went back."""
        now = self._resident()
        with self._lock:
            level = self._level
        if now is not None and level is not None and now - level <= self.keep:
            return False
        return self._ask()  # grown, or no /proc to tell: glibc decides

    def _ask(self) -> bool:
        released = self._release(self.keep)
        level = self._resident()
        with self._lock:
            self._level = level
        return released


class ReleaseEvery:
    """``release_freed_memory`` every ``wordpieces`` the model has computed: a hook for the
    lanes (``trf_tok2vec.after_sub_batch``). Within one buffer the lanes free activations of a
    different size at every sub-batch and the heap's holes pile up, which is the step a
    worker's memory takes when it falls behind and its buffers fill. Thread-safe: lanes call it
    from their own threads."""

    def __init__(self, wordpieces: int, release: Callable[[], bool] = release_freed_memory):
        if wordpieces < 1:
            raise ValueError(f"wordpieces must be positive, got {wordpieces}")
        self.wordpieces = wordpieces
        self.releases = 0
        self._release = release
        self._since = 0
        self._lock = threading.Lock()

    def __call__(self, wordpieces: int) -> None:
        with self._lock:
            self._since += wordpieces
            if self._since < self.wordpieces:
                return
            self._since = 0
            self.releases += 1
        self._release()


@dataclass(frozen=True)
class AllocatorSetup:
    """What ``configure_allocator`` did, for the worker's startup log."""

    mmap_threshold_mb: float | None  # pinned here; None: glibc's dynamic one or the operator's
    huge_pages: bool  # torch asked for huge pages (THP_MEM_ALLOC_ENABLE set, by us or the operator)
    kernel_huge_pages: str  # the kernel's THP mode: always, madvise, never or unknown
    note: str
    onednn_cache: int | None = None  # oneDNN's kernel cache capacity; None: oneDNN's default

    def describe(self) -> str:
        threshold = (
            f"mmap threshold pinned at {self.mmap_threshold_mb:g} MiB"
            if self.mmap_threshold_mb is not None
            else "mmap threshold not pinned"
        )
        pages = f"torch huge pages {'on' if self.huge_pages else 'off'}"
        cache = (
            f"oneDNN kernel cache {self.onednn_cache}"
            if self.onednn_cache is not None
            else "oneDNN kernel cache default"
        )
        text = f"{threshold}; {pages} (kernel THP: {self.kernel_huge_pages}); {cache}"
        return f"{text}; {self.note}" if self.note else text


def kernel_huge_pages_mode(path: Path = THP_SYSFS) -> str:
    """The bracketed choice in the kernel's THP setting, e.g. ``madvise``; ``unknown`` if none."""
    try:
        text = path.read_text()
    except OSError:
        return "unknown"
    start, end = text.find("["), text.find("]")
    return text[start + 1 : end] if 0 <= start < end else "unknown"


def configure_allocator(
    mmap_threshold_mb: float,
    huge_pages: bool,
    environ: MutableMapping[str, str] | None = None,
    *,
    onednn_cache: int | None = None,
) -> AllocatorSetup:
    """Pin the mmap threshold, ask torch for huge pages and size oneDNN's kernel cache, unless
    the operator chose.

    Call it before the model loads: torch reads ``THP_MEM_ALLOC_ENABLE`` once, at its first CPU
    allocation, and oneDNN its cache size at its first kernel. ``mmap_threshold_mb`` 0 leaves
    glibc's dynamic threshold; ``onednn_cache`` None leaves oneDNN's (1,024 kernels)."""
    env = os.environ if environ is None else environ
    if not 0 <= mmap_threshold_mb <= MAX_MMAP_THRESHOLD_MB:
        raise ValueError(
            f"mmap_threshold_mb must be in [0, {MAX_MMAP_THRESHOLD_MB}] (glibc's cap), got "
            f"{mmap_threshold_mb}"
        )
    notes = []
    pinned: float | None = None
    operator = "MALLOC_MMAP_THRESHOLD_" in env or "mmap_threshold" in env.get("GLIBC_TUNABLES", "")
    if operator:
        notes.append("the environment sets the mmap threshold")
    elif mmap_threshold_mb > 0:
        mallopt = getattr(libc(), "mallopt", None)
        if mallopt is None:
            notes.append("no mallopt in this C library")
        else:
            mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
            mallopt.restype = ctypes.c_int
            if mallopt(M_MMAP_THRESHOLD, int(mmap_threshold_mb * 2**20)) == 1:
                pinned = mmap_threshold_mb
            else:
                notes.append("mallopt refused the mmap threshold")
    if huge_pages:
        env.setdefault("THP_MEM_ALLOC_ENABLE", "1")
    if onednn_cache is not None:
        if onednn_cache < 0:
            raise ValueError(f"onednn_cache must be at least 0, got {onednn_cache}")
        env.setdefault(ONEDNN_CACHE_ENV, str(onednn_cache))
    cache = env.get(ONEDNN_CACHE_ENV, "")
    return AllocatorSetup(
        mmap_threshold_mb=pinned,
        huge_pages=env.get("THP_MEM_ALLOC_ENABLE", "0") not in ("", "0"),
        kernel_huge_pages=kernel_huge_pages_mode(),
        note="; ".join(notes),
        onednn_cache=int(cache) if cache.isdigit() else None,
    )
