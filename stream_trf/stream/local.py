"""Workers as local processes — for the demo, the benchmarks and the integration tests.

A worker is configured the way production configures it: through ``STREAM_TRF_*`` variables.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ..settings import ENV_PREFIX, Settings
from .worker import READY_LINE

READY_MARKER = READY_LINE.encode()


def env_for(settings: Settings) -> dict[str, str]:
    """The environment that makes ``stream-trf worker`` run with ``settings``."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    for name, value in settings.public().items():
        env[ENV_PREFIX + name.upper()] = str(value)
    env[ENV_PREFIX + "SASL_PASSWORD"] = settings.kafka.sasl_password
    return env


def wait_until_ready(
    log_file: Path, worker: subprocess.Popen[bytes], timeout: float = 180.0, offset: int = 0
) -> float:
    """Wait for a worker process to say it is ready (model loaded, partitions assigned).

    Only what the log holds after byte ``offset`` counts: a log file that a worker before this
    one wrote to already says "ready", and that must not answer for this one."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited with code {worker.returncode}; see {log_file}")
        if log_file.exists() and READY_MARKER in log_file.read_bytes()[offset:]:
            return time.monotonic() - t0
        time.sleep(0.1)
    raise TimeoutError(f"the worker was not ready after {timeout:.0f}s; see {log_file}")


class WorkerProcess:
    """``stream-trf worker`` in its own process, its output in ``log_file``."""

    def __init__(
        self, settings: Settings, log_file: Path, extra_env: dict[str, str] | None = None
    ) -> None:
        self.settings = settings
        self.log_file = log_file
        self.log_offset = log_file.stat().st_size if log_file.exists() else 0
        with open(log_file, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "stream_trf", "worker"],
                env={**env_for(settings), **(extra_env or {})},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, timeout: float = 180.0) -> float:
        return wait_until_ready(self.log_file, self.proc, timeout, offset=self.log_offset)

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM, as an orchestrator would; returns the exit code."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
