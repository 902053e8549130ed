"""Model lanes: where a call runs, with how many threads, and what happens to its errors."""

from __future__ import annotations

import threading

import pytest
import torch

from stream_trf.model.lanes import Lanes, cpu_cores, resolve_lanes


def _where() -> tuple[int, int]:
    return threading.get_ident(), torch.get_num_threads()


def test_one_lane_runs_inline_in_the_caller() -> None:
    lanes = Lanes(1)
    ident, threads = lanes.submit(_where).result()
    assert ident == threading.get_ident()
    assert threads == torch.get_num_threads()


def test_several_lanes_run_on_their_own_single_threaded_threads() -> None:
    before = torch.get_num_threads()
    lanes = Lanes(2, threads=1)
    try:
        barrier = threading.Barrier(2, timeout=10)

        def meet() -> tuple[int, int]:
            barrier.wait()  # both calls are in flight at once, or this times out
            return _where()

        def os_name() -> str:
            with open(f"/proc/self/task/{threading.get_native_id()}/comm") as f:
                return f.read().strip()

        results = [f.result() for f in [lanes.submit(meet), lanes.submit(meet)]]
        names = {lanes.submit(os_name).result() for _ in range(4)}
    finally:
        lanes.close()
    assert names <= {"trf-lane_0", "trf-lane_1"} and names  # top -H tells the lanes apart
    idents = {ident for ident, _ in results}
    assert len(idents) == 2 and threading.get_ident() not in idents
    assert {threads for _, threads in results} == {1}
    assert torch.get_num_threads() == before


def test_an_error_reaches_whoever_asks_for_the_result() -> None:
    def fail() -> None:
        raise ValueError("bad batch")

    for n in (1, 2):
        lanes = Lanes(n, threads=1)
        future = lanes.submit(fail)
        with pytest.raises(ValueError, match="bad batch"):
            future.result()
        lanes.close()


def test_auto_is_one_lane_per_thread_on_cpu_and_one_on_gpu() -> None:
    assert resolve_lanes(3, torch.device("cpu")) == 3
    assert resolve_lanes(0, torch.device("cpu")) == max(
        1, min(torch.get_num_threads(), cpu_cores())
    )
    assert resolve_lanes(0, torch.device("cuda")) == 1
    with pytest.raises(ValueError, match="lanes"):
        resolve_lanes(-1, torch.device("cpu"))
    with pytest.raises(ValueError, match="lane"):
        Lanes(0)
