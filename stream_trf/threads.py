"""The worker's threads named for the operating system, not only for Python.

Python's thread names stay inside the interpreter; ``top -H``, ``perf``, ``/proc/PID/task`` and
the host benchmark see every thread as ``python``. The worker's threads (the model thread, the
lanes, the prefetch thread) give the OS a short form of their names, so that an operator can
tell which one burns a core, and the benchmark can split a worker's CPU by thread.
"""

from __future__ import annotations

import ctypes
import sys
import threading

from .libc import libc

_PR_SET_NAME = 15  # prctl(2): name the calling thread (at most 15 bytes)
_PREFIX = "stream-trf-"  # Python's names carry it; the OS's 15 bytes do not have room


def os_thread_name(name: str) -> str:
    """The name the OS is given for a thread Python calls ``name``: without the package's
    prefix (``stream-trf-lane_0`` → ``trf-lane_0``), at most 15 bytes."""
    if name.startswith(_PREFIX):
        name = "trf-" + name[len(_PREFIX) :]
    return name.encode("utf-8")[:15].decode("utf-8", errors="ignore")


def name_os_thread(name: str | None = None) -> bool:
    """Give the calling thread's name (``name``, or its Python name) to the OS; on Linux only.
    True when named."""
    if not sys.platform.startswith("linux"):
        return False
    text = os_thread_name(name or threading.current_thread().name)
    try:
        prctl = libc().prctl  # type: ignore[union-attr]
        return int(prctl(_PR_SET_NAME, ctypes.c_char_p(text.encode("utf-8")), 0, 0, 0)) == 0
    except (OSError, AttributeError):  # no prctl: the name is a convenience, never a failure
        return False
