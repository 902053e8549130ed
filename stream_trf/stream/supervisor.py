"""Several worker processes under one command, each a full member of the consumer group.

Why processes as well as lanes: within a process the model runs as single-threaded passes side
by side (model/lanes.py), but everything around it (parsing, spaCy, the wordpiece tokenizer,
alignment, building and serializing records, the Kafka client) is Python that holds the GIL.
On a few cores that serial share hides among the lanes; on many it would cap the process, so
"auto" starts one process per few cores (``stream_trf.auto.processes``). Kafka partitions are the
unit of scale, so each process simply takes its share of them: the same thing as starting N
workers by hand, with one command to start, stop and watch.

The supervisor starts the processes (``spawn``: a fresh interpreter each, no forked torch
state), waits until every one has its partitions before it says it is ready, forwards SIGTERM
and SIGINT so each finishes and publishes its in-flight batch, and restarts a process that
dies unexpectedly, at once (its partitions wait for it), giving up when one crashes more than
``MAX_RESTARTS`` times a minute: a crash loop is then the orchestrator's to back off from.
Process ``i`` serves its web pages on ``web_port + i``.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import auto
from ..model import lanes
from ..settings import Settings
from .worker import configure_logging, run_worker, say_ready

log = logging.getLogger("stream_trf.supervisor")

MAX_RESTARTS = 5  # per process per minute


def resolve_processes(settings: Settings) -> int:
    """``--processes``, or for 0 ("auto") what ``stream_trf.auto.processes`` picks for this
    machine's cores and the topics' partitions."""
    return settings.operations.processes or auto.processes(
        lanes.cpu_cores(), settings.topics.partitions
    )


def threads_per_process(processes: int) -> int:
    return max(1, lanes.cpu_cores() // processes)


def process_settings(settings: Settings, index: int) -> Settings:
    """What process ``index`` runs with: one process, its own web port and data directory."""
    ops = settings.operations
    changes: dict[str, Any] = {"processes": 1}
    if ops.web_port:
        changes["web_port"] = ops.web_port + index
    if ops.data_dir:
        changes["data_dir"] = str(Path(ops.data_dir) / f"process-{index}")
    return settings.with_(**changes)


def supervise(settings: Settings, processes: int) -> int:
    """``stream-trf worker`` with ``processes`` (at least 2) worker processes; runs until
    SIGTERM/SIGINT and returns the exit status they add up to."""
    configure_logging(settings)
    group = settings.topics.group_id
    log.info(
        "%d worker processes of %d thread(s) each in group %s",
        processes,
        threads_per_process(processes),
        group,
    )
    supervisor = Supervisor(settings, processes)
    return supervisor.run(on_ready=lambda: say_ready(f"group {group}, {processes} processes"))


def _die_with_parent() -> None:
    """Linux: SIGTERM this process when the supervisor dies, even by SIGKILL (no orphans that
    keep partitions)."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _process_main(settings: Settings, threads: int, ready: Any) -> None:
    import os

    import torch

    os.setpgrp()  # a terminal's Ctrl-C reaches the supervisor only; it forwards one SIGTERM
    _die_with_parent()
    torch.set_num_threads(threads)
    sys.exit(run_worker(settings, on_ready=ready.set))


@dataclass
class _Child:
    index: int
    process: Any
    ready: Any
    crashes: deque[float] = field(default_factory=deque)


class Supervisor:
    def __init__(self, settings: Settings, processes: int) -> None:
        if processes < 2:
            raise ValueError("a supervisor runs at least two processes")
        self.settings = settings
        self.n = processes
        self.threads = threads_per_process(processes)
        self._ctx = multiprocessing.get_context("spawn")
        self._children: list[_Child] = []
        self._stopping = False
        self._gave_up = False

    def _start(self, index: int, crashes: deque[float] | None = None) -> _Child:
        ready = self._ctx.Event()
        process = self._ctx.Process(
            target=_process_main,
            args=(process_settings(self.settings, index), self.threads, ready),
            name=f"stream-trf-worker-{index}",
        )
        process.start()
        log.info("worker process %d started (pid %d)", index, process.pid)
        return _Child(index, process, ready, crashes if crashes is not None else deque())

    def stop(self, *_: Any) -> None:
        """Ask every process to finish its in-flight batch and leave (once)."""
        if self._stopping:
            return
        self._stopping = True
        log.info("stopping %d worker processes", self.n)
        for child in self._children:
            if child.process.is_alive():
                child.process.terminate()  # SIGTERM

    def run(self, on_ready: Callable[[], None]) -> int:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        self._children = [self._start(i) for i in range(self.n)]
        announced = False
        while True:
            if not announced and all(c.ready.is_set() for c in self._children):
                announced = True
                on_ready()
            alive = 0
            for k, child in enumerate(self._children):
                if child.process.is_alive():
                    alive += 1
                    continue
                if self._stopping:
                    continue
                if not self._restart(k, child):
                    self.stop()
            if self._stopping and alive == 0:
                break
            time.sleep(0.2)
        return max(self._exit_code(c) for c in self._children)

    def _exit_code(self, child: _Child) -> int:
        """A process's exit status for the shell: a process the supervisor itself stopped
        with SIGTERM before it had installed its own handler (still loading) exited cleanly;
        death by another signal N is 128 + N."""
        code = child.process.exitcode or 0
        if code == -signal.SIGTERM and self._stopping and not self._gave_up:
            return 0
        return 128 - code if code < 0 else code

    def _restart(self, k: int, child: _Child) -> bool:
        now = time.monotonic()
        crashes = child.crashes
        crashes.append(now)
        while crashes and now - crashes[0] > 60:
            crashes.popleft()
        code = child.process.exitcode
        if len(crashes) > MAX_RESTARTS:
            log.error(
                "worker process %d exited (code %s) %d times in a minute: stopping all",
                child.index,
                code,
                len(crashes),
            )
            self._gave_up = True
            return False
        log.error("worker process %d exited unexpectedly (code %s): restarting", child.index, code)
        self._children[k] = self._start(child.index, crashes)
        return True
