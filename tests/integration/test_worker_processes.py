"""`stream-trf worker --processes 2`: two members of the group under one supervisor, on a real
broker — they split the partitions, a crashed one is restarted, SIGTERM stops both cleanly,
and killing the supervisor takes its processes with it."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from worker_harness import (
    assert_partitions_split,
    consume_until,
    create_topics,
    fresh_settings,
    ids_of,
    produce_json,
    wait_for,
)

from stream_trf.stream.local import WorkerProcess


def _docs(n: int, prefix: str) -> list[dict]:
    return [
        {"id": f"{prefix}{i}", "text": f"Record {i} of {prefix}. It has two sentences."}
        for i in range(n)
    ]


def _pids(records: list[dict]) -> set[int]:
    return {int(r["worker"].rsplit(":", 1)[1]) for r in records}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").exists() and " Z " not in Path(f"/proc/{pid}/stat").read_text()


def test_processes_share_partitions_restart_and_stop(broker, tiny_models, tmp_path: Path) -> None:
    settings = fresh_settings(broker.url, str(tiny_models["bert"]), max_batch=40, processes=2)
    create_topics(settings)
    worker = WorkerProcess(settings, tmp_path / "w.log")
    try:
        worker.wait_ready()
        assert "2 processes" in worker.log()
        first = _docs(400, "a")
        produce_json(settings, first)
        out = consume_until(settings, settings.output_topic, lambda r: ids_of(r) >= ids_of(first))
        pids = _pids(out)
        assert len(pids) == 2 and worker.pid not in pids, "two processes, not the supervisor"
        assert_partitions_split(out, settings.partitions)

        # A process that crashes is replaced; nothing is lost.
        crashed = min(pids)
        os.kill(crashed, signal.SIGKILL)
        assert wait_for(lambda: "restarting" in worker.log(), timeout=30)
        second = _docs(300, "b")
        produce_json(settings, second)
        out = consume_until(
            settings,
            settings.output_topic,
            lambda r: ids_of(r) >= ids_of(first) | ids_of(second),
            timeout=180,
        )
        late = _pids([r for r in out if r["id"].startswith("b")])
        assert crashed not in late and late, "the replacement enriches"

        # SIGTERM: both finish and leave, the supervisor exits 0, no process is left behind.
        children = (pids - {crashed}) | late
        assert worker.terminate(timeout=90) == 0
        assert not any(_alive(p) for p in children)
    finally:
        worker.stop()


def test_killing_the_supervisor_stops_its_processes(broker, tiny_models, tmp_path: Path) -> None:
    settings = fresh_settings(broker.url, str(tiny_models["bert"]), max_batch=40, processes=2)
    create_topics(settings)
    worker = WorkerProcess(settings, tmp_path / "w.log")
    try:
        worker.wait_ready()
        docs = _docs(100, "k")
        produce_json(settings, docs)
        out = consume_until(settings, settings.output_topic, lambda r: ids_of(r) >= ids_of(docs))
        pids = _pids(out) if len(_pids(out)) == 2 else set()
        worker.kill()
        assert pids, "both processes should have enriched something"
        assert wait_for(lambda: not any(_alive(p) for p in pids), timeout=60)
    finally:
        worker.stop()
