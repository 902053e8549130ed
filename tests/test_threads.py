"""The worker's threads named for the operating system (stream_trf/threads.py)."""

from __future__ import annotations

import sys
import threading

import pytest

from stream_trf.pipeline.prefetch import iter_ahead
from stream_trf.threads import name_os_thread, os_thread_name


def _os_name() -> str:
    with open(f"/proc/self/task/{threading.get_native_id()}/comm") as f:
        return f.read().strip()


def test_os_names_drop_the_package_prefix_and_fit_fifteen_bytes() -> None:
    assert os_thread_name("stream-trf-lane_0") == "trf-lane_0"
    assert os_thread_name("stream-trf-model_0") == "trf-model_0"
    assert os_thread_name("a-rather-long-thread-name") == "a-rather-long-t"
    assert len(os_thread_name("stream-trf-" + "é" * 20).encode()) <= 15


def test_a_thread_gives_the_os_its_python_name() -> None:
    got: list[tuple[bool, str]] = []

    def run() -> None:
        got.append((name_os_thread(), _os_name()))

    thread = threading.Thread(target=run, name="stream-trf-example")
    thread.start()
    thread.join()
    assert got == [(True, "trf-example")]
    # the prefetch thread names itself
    seen = list(iter_ahead((_os_name() for _ in range(3)), ahead=2))
    assert seen == ["trf-prefetch"] * 3


def test_elsewhere_naming_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    assert name_os_thread("anything") is False


def test_naming_a_thread_runs_no_subprocess(monkeypatch: pytest.MonkeyPatch) -> None:
    """A prefetch thread starts with every buffer: naming it must not run ``ldconfig -p`` (what
    ``ctypes.util.find_library`` does on each call)."""
    import subprocess

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a subprocess was started: {args}")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    seen = list(iter_ahead((_os_name() for _ in range(2)), ahead=1))
    assert seen == ["trf-prefetch"] * 2
    got: list[tuple[bool, str]] = []
    thread = threading.Thread(target=lambda: got.append((name_os_thread(), _os_name())), name="x-y")
    thread.start()
    thread.join()
    assert got == [(True, "x-y")]


def test_a_prefetch_thread_that_fails_to_start_raises_in_the_consumer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import stream_trf.pipeline.prefetch as prefetch

    def broken(name: str | None = None) -> bool:
        raise RuntimeError("naming failed")

    monkeypatch.setattr(prefetch, "name_os_thread", broken)
    with pytest.raises(RuntimeError, match="naming failed"):
        list(iter_ahead(iter(range(3)), ahead=1))
