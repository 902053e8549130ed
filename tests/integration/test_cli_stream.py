"""`stream-trf broker`, `produce`, `consume` and `demo` as a user runs them, in real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def _cli(*args: str, **kwargs) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    return subprocess.run(
        [sys.executable, "-m", "stream_trf", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
        **kwargs,
    )


@pytest.fixture()
def cli_broker():
    proc = subprocess.Popen(
        [sys.executable, "-m", "stream_trf", "broker", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = proc.stdout.readline().strip()  # the first line is the URL
        assert url.startswith("kafka://127.0.0.1:")
        yield url
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0


def test_broker_produce_consume_round_trip(cli_broker: str, tmp_path: Path) -> None:
    lines = [json.dumps({"id": f"r{i}", "text": f"text {i}"}) for i in range(25)] + ["not json"]
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(lines) + "\n\n")
    done = _cli(
        "produce",
        str(path),
        "--topic",
        "cli-topic",
        "--create-topic",
        "--partitions",
        "3",
        "--broker",
        cli_broker,
        "--quiet",
    )
    assert done.returncode == 0, done.stderr
    assert "produced 26 records" in done.stderr
    got = _cli("consume", "--topic", "cli-topic", "--count", "26", "--broker", cli_broker,
               "--timeout", "60")  # fmt: skip
    assert got.returncode == 0, got.stderr
    printed = [json.loads(x) for x in got.stdout.splitlines() if x.strip()]
    assert len(printed) == 26
    assert {p["id"] for p in printed if "id" in p} == {f"r{i}" for i in range(25)}
    # A record that is not a JSON object is shown, wrapped, not a crash.
    assert {"_not_a_json_object": {"encoding": "utf-8", "data": "not json"}} in printed
    assert "26 records from cli-topic, 0 duplicates" in got.stderr


def test_worker_without_a_broker_says_what_to_do(tmp_path: Path) -> None:
    from stream_trf.stream.broker import free_port

    env = dict(os.environ, STREAM_TRF_BROKER=f"kafka://127.0.0.1:{free_port()}")
    proc = subprocess.Popen(
        [sys.executable, "-m", "stream_trf", "worker"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        first = ""
        for _ in range(200):
            first = proc.stdout.readline()
            if "cannot reach the broker" in first:
                break
        assert "cannot reach the broker" in first
        assert "stream-trf broker" in first and "STREAM_TRF_BROKER" in first
    finally:
        proc.kill()
        proc.wait()


def test_demo_runs_the_whole_job(tiny_models) -> None:
    done = _cli("demo", "--model", str(tiny_models["bert"]))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "20 enriched, 3 dead letters, 0 duplicates" in done.stdout
    assert "one enriched record:" in done.stdout
