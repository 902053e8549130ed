"""A real Prometheus server (Debian's ``prometheus`` binary) for the integration tests.

It runs on a free localhost port with its own storage in a temporary folder, scrapes the given
targets every ``scrape_interval`` and evaluates the given rule files; ``query`` and ``rules``
read its HTTP API. Prometheus is required, not optional: without it the tests that need it FAIL
(``.ci/run`` installs it with apt). Set ``STREAM_TRF_PROMETHEUS`` to use another binary.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
import yaml

from stream_trf.stream.broker import free_port


def prometheus_binary(name: str = "prometheus") -> str:
    """The ``prometheus`` (or ``promtool``) binary, or a test failure that says how to get it."""
    configured = os.environ.get("STREAM_TRF_" + name.upper())
    candidates = [configured] if configured else [f"/usr/bin/{name}", name]
    for candidate in candidates:
        found = shutil.which(candidate)
        if found:
            return found
    pytest.fail(
        f"{name} is required for these tests and was not found (looked for "
        f"{', '.join(candidates)}). Install it: `apt-get install -y prometheus` (Debian; "
        f".ci/run does this), or set STREAM_TRF_{name.upper()} to the binary.",
        pytrace=False,
    )


class PrometheusServer:
    """``with PrometheusServer(workdir, ["127.0.0.1:6066"]) as prom: prom.query("up")``."""

    def __init__(
        self,
        workdir: Path,
        targets: list[str],
        *,
        rule_files: Sequence[Path] = (),
        scrape_interval: str = "1s",
        job: str = "stream-trf",
    ) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = {
            "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
            "rule_files": [str(p) for p in rule_files],
            "scrape_configs": [{"job_name": job, "static_configs": [{"targets": targets}]}],
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.log_file = workdir / "prometheus.log"

    def start(self, timeout: float = 30.0) -> PrometheusServer:
        config = self.workdir / "prometheus.yml"
        config.write_text(yaml.safe_dump(self.config), encoding="utf-8")
        with open(self.log_file, "ab") as log:
            self.process = subprocess.Popen(
                [
                    prometheus_binary(),
                    f"--config.file={config}",
                    f"--storage.tsdb.path={self.workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"prometheus exited with {self.process.returncode}: {self.log()[-2000:]}"
                )
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=1) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"prometheus was not ready after {timeout:.0f}s: {self.log()[-2000:]}")

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def _get(self, path: str, **params: str) -> Any:
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as resp:
            body = json.load(resp)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's vector: ``[{"metric": {labels}, "value": [t, "text"]}, ...]``."""
        data = self._get("/api/v1/query", query=expr)
        assert data["resultType"] == "vector", data
        return list(data["result"])

    def values(self, expr: str) -> dict[tuple[tuple[str, str], ...], float]:
        """An instant query as {sorted labels: value}."""
        return {tuple(sorted(r["metric"].items())): float(r["value"][1]) for r in self.query(expr)}

    def rules(self) -> list[dict[str, Any]]:
        """Every loaded rule with its health (``ok``, ``err`` or ``unknown``) and last error."""
        return [r for g in self._get("/api/v1/rules")["groups"] for r in g["rules"]]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
