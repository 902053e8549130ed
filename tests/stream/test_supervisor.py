"""How many worker processes, with what settings each, and what exit status they add up to."""

from __future__ import annotations

import signal
from types import SimpleNamespace

import pytest
import torch

from stream_trf.model.lanes import cpu_cores
from stream_trf.settings import Settings
from stream_trf.stream.supervisor import (
    Supervisor,
    _Child,
    process_settings,
    resolve_processes,
    threads_per_process,
)


def test_auto_is_one_process_per_four_cores_at_most_one_per_partition(monkeypatch) -> None:
    from stream_trf.model import lanes

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_processes(Settings(processes=3)) == 3
    for cores, expected in ((1, 1), (2, 1), (7, 1), (8, 2), (16, 4)):
        monkeypatch.setattr(lanes, "cpu_cores", lambda cores=cores: cores)
        assert resolve_processes(Settings(partitions=64)) == expected
    assert resolve_processes(Settings(partitions=3)) == 3
    assert resolve_processes(Settings(partitions=1)) == 1
    # A GPU does not change it: the CPU side is what several processes share out.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_processes(Settings(partitions=64)) == 4
    monkeypatch.undo()
    assert threads_per_process(1) == cpu_cores()
    assert threads_per_process(10 * cpu_cores()) == 1


def test_negative_processes_are_refused() -> None:
    with pytest.raises(ValueError, match="processes"):
        Settings(processes=-1).validate()


def test_each_process_gets_its_own_port_and_data_directory() -> None:
    base = Settings(processes=3, web_port=6066, data_dir="/var/lib/stream-trf")
    second = process_settings(base, 1)
    assert (second.processes, second.web_port, second.data_dir) == (
        1,
        6067,
        "/var/lib/stream-trf/process-1",
    )
    quiet = process_settings(Settings(processes=2), 1)
    assert (quiet.web_port, quiet.data_dir) == (0, "")  # off stays off; a temporary dir each


def test_exit_status_of_the_processes() -> None:
    sup = Supervisor(Settings(processes=2), 2)

    def child(code: int | None) -> _Child:
        return _Child(0, SimpleNamespace(exitcode=code), None)

    sup._stopping = True
    assert sup._exit_code(child(0)) == 0
    assert sup._exit_code(child(-signal.SIGTERM)) == 0  # stopped by us while still loading
    assert sup._exit_code(child(-signal.SIGKILL)) == 128 + signal.SIGKILL
    assert sup._exit_code(child(3)) == 3
    sup._gave_up = True  # a crash loop: nothing about the stop was clean
    assert sup._exit_code(child(-signal.SIGTERM)) == 128 + signal.SIGTERM
    with pytest.raises(ValueError):
        Supervisor(Settings(), 1)
