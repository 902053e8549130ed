"""Local worker processes: readiness is read from the worker's own log lines only."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from stream_trf.stream.local import READY_MARKER, wait_until_ready


def _writer(log: Path, delay: float, say_ready: bool) -> subprocess.Popen[bytes]:
    """A stand-in worker: after ``delay`` seconds it appends the ready line (or exits)."""
    line = READY_MARKER.decode() if say_ready else "starting"
    code = (
        f"import time; time.sleep({delay}); "
        f"open({str(log)!r}, 'a').write({line!r} + '\\n'); time.sleep(30)"
        if say_ready
        else f"import time; time.sleep({delay})"
    )
    return subprocess.Popen([sys.executable, "-c", code])


def test_a_stale_ready_line_does_not_answer_for_a_new_worker(tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    log.write_text(f"an earlier worker\n{READY_MARKER.decode()}\n")
    offset = log.stat().st_size
    proc = _writer(log, 1.0, say_ready=True)
    try:
        waited = wait_until_ready(log, proc, timeout=30, offset=offset)
        assert waited >= 0.9  # it waited for this worker's own line
    finally:
        proc.kill()
        proc.wait()


def test_a_worker_that_exits_is_reported_even_after_a_stale_ready_line(tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    log.write_text(f"{READY_MARKER.decode()}\n")
    proc = _writer(log, 0.2, say_ready=False)
    with pytest.raises(RuntimeError, match="exited with code 0"):
        wait_until_ready(log, proc, timeout=30, offset=log.stat().st_size)
