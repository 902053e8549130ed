"""The harness's process figures, read from /proc for a live process tree."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bench.harness.machine import (
    cpu_between,
    cpu_generation,
    process_cpu,
    thread_cpu,
    threads_between,
)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

# Touches 256 MiB of fresh pages (65,536 minor faults at 4 KiB, fewer on huge pages), spins in
# user code for a while, then waits for a line on stdin so that it is still alive when read.
CHILD = """
import mmap, sys
m = mmap.mmap(-1, 256 * 2**20)
for i in range(0, len(m), 4096):
    m[i] = 1
sum(i * i for i in range(8_000_000))  # ~0.4 s of user time: well above the 0.1 asked
print("done", flush=True)
sys.stdin.readline()
"""


def test_cpu_and_page_faults_of_a_child_are_counted_with_its_parent() -> None:
    # the parent is a shell, so the figures must come from its descendant (a supervised worker)
    shell = subprocess.Popen(
        ["/bin/sh", "-c", f'exec 3<&0; "{sys.executable}" -c "$0" <&3', CHILD],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        before = process_cpu(shell.pid)
        assert shell.stdout is not None and shell.stdout.readline().strip() == "done"
        after = process_cpu(shell.pid)
        used = cpu_between(before, after, docs=4)
        assert used is not None
        assert used["user_s"] >= 0.1  # the loop (no system calls in it)
        assert used["minor_faults_per_doc"] * 4 >= 60_000  # every page of the mapping
        assert used["kernel_s"] > 0.0
        assert 0.0 < used["kernel_share"] < 1.0
        assert used["cpu_ms_per_doc"] == pytest.approx(
            1000 * (used["user_s"] + used["kernel_s"]) / 4, abs=0.01
        )
    finally:
        assert shell.stdin is not None
        shell.stdin.write("\n")
        shell.stdin.close()
        shell.wait(timeout=30)


def test_a_process_that_is_gone_has_no_figures() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert process_cpu(proc.pid) is None
    assert cpu_between(None, {"user_s": 1.0, "kernel_s": 0.0, "minor_faults": 0.0}, 1) is None


def test_a_processs_cpu_splits_by_thread_role_and_ended_threads_still_count() -> None:
    """Two named threads burn 0.3 s of CPU each, one ends before the second reading: the live
    one's time is under its role, the ended one's under ``ended threads``."""
    import os
    import threading
    import time

    from stream_trf.threads import name_os_thread

    burned, stop = threading.Event(), threading.Event()

    def burn(then: threading.Event | None) -> None:
        name_os_thread()
        end = time.thread_time() + 0.3
        while time.thread_time() < end:
            pass
        if then is not None:
            burned.set()
            then.wait()

    pid = os.getpid()

    def own_threads() -> dict[tuple[int, int], tuple[str, float]]:
        # this process's threads only: another test's child may exit in between
        return {k: v for k, v in thread_cpu(pid).items() if k[0] == pid}

    before, cpu_before = own_threads(), time.process_time()
    live = threading.Thread(target=burn, args=(stop,), name="stream-trf-burn_0")
    live.start()
    gone = threading.Thread(target=burn, args=(None,), name="stream-trf-gone_0")
    gone.start()
    gone.join()
    # join() returns when Python is done with the thread, a moment before the OS is: wait
    # until its task is gone from /proc, or its time would still read as a live thread's
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{pid}/task/{gone.native_id}") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert burned.wait(10)
    after, total = own_threads(), time.process_time() - cpu_before
    stop.set()
    live.join()
    split = threads_between(before, after, total, docs=1)  # ms per "document": ms in all
    assert 250 <= split["trf-burn"] <= 450
    assert 250 <= split["ended threads"] <= 450 + split.get("event loop", 0)
    assert "trf-gone" not in split  # ended: only the process total knows it


def test_cpu_generation_names_family_model_and_stepping(tmp_path) -> None:
    """Two processors' blocks: the first one's fields, in a fixed order; none without them."""
    info = tmp_path / "cpuinfo"
    info.write_text(
        "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 26\nmodel\t\t: 2\n"
        "model name\t: AMD EPYC\nstepping\t: 1\n\n"
        "processor\t: 1\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 143\n"
    )
    assert cpu_generation(str(info)) == "AuthenticAMD family 26 model 2 stepping 1"
    assert cpu_generation(str(tmp_path / "missing")) is None
    (tmp_path / "bare").write_text("processor\t: 0\n")
    assert cpu_generation(str(tmp_path / "bare")) is None
