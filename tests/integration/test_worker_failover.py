"""Nothing lost: SIGKILL and restart, two workers sharing partitions, SIGTERM draining."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from worker_harness import (
    assert_partitions_split,
    consume_until,
    create_topics,
    fresh_settings,
    ids_of,
    produce_json,
)

from stream_trf.stream import clients
from stream_trf.stream.local import WorkerProcess


def _docs(n: int, prefix: str) -> list[dict]:
    words = [
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
    ]
    return [
        {"id": f"{prefix}{i}", "text": " ".join(words[: 3 + i % 9]) + f". Record {i} ends here."}
        for i in range(n)
    ]


def _same_source_for_duplicates(records: list[dict]) -> None:
    """Every duplicate carries the same source as the original, so consumers can drop it."""
    by_id: dict[str, set] = defaultdict(set)
    for r in records:
        s = r["source"]
        by_id[r["id"]].add((s["topic"], s["partition"], s["offset"]))
    assert all(len(sources) == 1 for sources in by_id.values())


def test_sigkill_mid_stream_then_restart_loses_no_id(broker, tiny_models, tmp_path: Path) -> None:
    settings = fresh_settings(
        broker.url, str(tiny_models["bert"]), max_batch=40, commit_interval=0.5
    )
    create_topics(settings)
    docs = _docs(3000, "k")
    produce_json(settings, docs)
    first = WorkerProcess(settings, tmp_path / "first.log")
    try:
        first.wait_ready()
        partial = consume_until(settings, settings.output_topic, lambda r: len(r) >= 300)
        first.kill()  # SIGKILL mid-stream: no drain, no commit of the in-flight batch
    finally:
        first.stop()
    assert 300 <= len(ids_of(partial)) < len(docs), "the kill must land mid-stream"
    second = WorkerProcess(settings, tmp_path / "second.log")
    try:
        second.wait_ready()
        out = consume_until(
            settings, settings.output_topic, lambda r: ids_of(r) >= ids_of(docs), timeout=180
        )
        assert second.terminate() == 0
    finally:
        second.stop()
    assert ids_of(out) == ids_of(docs)
    dups = clients.duplicates(out)
    print(f"SIGKILL after {len(partial)} outputs: {len(out)} records, {dups} duplicates")
    assert len(out) == len(docs) + dups
    _same_source_for_duplicates(out)


def test_two_workers_share_partitions_and_one_takes_over(
    broker, tiny_models, tmp_path: Path
) -> None:
    settings = fresh_settings(broker.url, str(tiny_models["bert"]), max_batch=40)
    create_topics(settings)
    a = WorkerProcess(settings, tmp_path / "a.log")
    b = WorkerProcess(settings, tmp_path / "b.log")
    try:
        a.wait_ready()
        b.wait_ready()
        before = _docs(800, "p")
        produce_json(settings, before)
        out = consume_until(settings, settings.output_topic, lambda r: ids_of(r) >= ids_of(before))
        # Partitions are the unit of scale: no partition is served by both at once.
        assert_partitions_split(out, settings.partitions)

        a.kill()
        after = _docs(400, "q")
        produce_json(settings, after)
        out = consume_until(
            settings,
            settings.output_topic,
            lambda r: ids_of(r) >= ids_of(before) | ids_of(after),
            timeout=180,
        )
        survivor = f"{b.proc.pid}"
        late = [r for r in out if r["id"].startswith("q")]
        assert {r["worker"].rsplit(":", 1)[1] for r in late} == {survivor}
        assert ids_of(out) >= ids_of(after)
        _same_source_for_duplicates(out)
        assert b.terminate() == 0
    finally:
        a.stop()
        b.stop()


def test_sigterm_drains_commits_and_leaves(broker, tiny_models, tmp_path: Path) -> None:
    settings = fresh_settings(broker.url, str(tiny_models["bert"]), max_batch=40)
    create_topics(settings)
    docs = _docs(3000, "t")
    produce_json(settings, docs)
    first = WorkerProcess(settings, tmp_path / "first.log")
    try:
        first.wait_ready()
        consume_until(settings, settings.output_topic, lambda r: len(r) >= 300)
        assert first.terminate(timeout=60) == 0
    finally:
        first.stop()
    drained = consume_until(settings, settings.output_topic, lambda r: False, timeout=3)
    assert len(ids_of(drained)) < len(docs), "SIGTERM must land mid-stream"
    second = WorkerProcess(settings, tmp_path / "second.log")
    try:
        second.wait_ready()
        out = consume_until(
            settings, settings.output_topic, lambda r: ids_of(r) >= ids_of(docs), timeout=180
        )
        assert second.terminate() == 0
    finally:
        second.stop()
    assert ids_of(out) == ids_of(docs)
    # Drained and committed: the second worker redoes nothing the first one published.
    assert clients.duplicates(out) == 0
    assert "Worker]: Stopping" in first.log()
