"""Model lanes: several sub-batches through the model at once, each on its own CPU threads.

On a CPU, one forward pass spread over every core by PyTorch's OpenMP pool is not the fastest
way to use them: the small matrices of a sentence-sized sub-batch keep the cores waiting at
each operator's barrier, and single-threaded passes side by side do more
(docs/decisions/processes-and-lanes.md). Lanes also leave no core spinning idle while the
Python around the model (spaCy, the tokenizer, alignment) runs: the operating system simply
shares the cores.

A lane is a thread with its own intra-op thread count (``torch.set_num_threads`` is per
thread); PyTorch releases the GIL inside its kernels, so lanes really run in parallel. One lane
runs inline in the caller's thread, as before. On a GPU one lane is the default: its kernels
queue on one device anyway.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import torch

from ..threads import name_os_thread

T = TypeVar("T")


def cpu_cores() -> int:
    """Cores this process may run on (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def resolve_lanes(lanes: int, device: torch.device) -> int:
    """``lanes`` as set, or for 0 ("auto"): one per intra-op thread on a CPU, one on a GPU."""
    if lanes < 0:
        raise ValueError(f"lanes must be 0 (auto) or positive, got {lanes}")
    if lanes:
        return lanes
    if device.type != "cpu":
        return 1
    return max(1, min(torch.get_num_threads(), cpu_cores()))


def _start_lane(threads: int) -> None:
    """A lane thread's own intra-op thread count, and its name for the OS (``trf-lane_N``)."""
    torch.set_num_threads(threads)
    name_os_thread()


class Lanes:
    """``n`` threads that each call the model with ``threads`` intra-op threads."""

    def __init__(self, n: int, threads: int | None = None) -> None:
        if n < 1:
            raise ValueError(f"need at least one lane, got {n}")
        self.n = n
        self.threads = threads or max(1, torch.get_num_threads() // n)
        self._pool: ThreadPoolExecutor | None = None
        if n > 1:
            self._pool = ThreadPoolExecutor(
                max_workers=n,
                thread_name_prefix="stream-trf-lane",
                initializer=_start_lane,
                initargs=(self.threads,),
            )

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Run ``fn(*args)`` on the next free lane; with one lane, right here."""
        if self._pool is not None:
            return self._pool.submit(fn, *args)
        done: Future[T] = Future()
        try:
            done.set_result(fn(*args))
        except Exception as err:  # handed to whoever asks for the result
            done.set_exception(err)
        return done

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
