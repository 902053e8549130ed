"""The C library the interpreter runs on, loaded once for the few calls Python has no word for
(``prctl`` to name a thread, glibc's ``malloc_trim`` and ``mallinfo2``).

Loaded through the process's own symbols rather than ``ctypes.util.find_library``, which runs
``ldconfig -p`` in a subprocess on every call.
"""

from __future__ import annotations

import ctypes
import functools
import sys


@functools.cache
def libc() -> ctypes.CDLL | None:
    """The C library, or None where it cannot be loaded (not a POSIX system)."""
    if sys.platform == "win32":
        return None
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
