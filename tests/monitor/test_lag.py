"""Consumer lag figures: the lag of a partition, the gauges on /metrics, what the monitor keeps.

The broker side (offsets read from a real broker) is tests/stream/test_lag_probe.py; a live
worker's lag under a backlog is tests/integration/test_operations.py.
"""

from __future__ import annotations

import math

from prometheus_client.parser import text_string_to_metric_families

from stream_trf.monitor.lag import LagReading, describe, partition_lag
from stream_trf.monitor.monitor import Monitor
from stream_trf.monitor.prometheus import Metrics


def samples(metrics: Metrics, name: str) -> dict[tuple[str, ...], float]:
    """{label values sorted by label name: value} of one metric."""
    out: dict[tuple[str, ...], float] = {}
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for s in family.samples:
            if s.name == name:
                out[tuple(v for _, v in sorted(s.labels.items()))] = s.value
    return out


def reading(*rows, topic: str = "in", at: float = 100.0, error: str | None = None) -> LagReading:
    return LagReading(topic, "g", at, tuple(rows), error)


def test_lag_is_the_end_minus_the_committed_offset() -> None:
    p = partition_lag(3, ends=(120, None), committed=100)
    assert (p.partition, p.end, p.committed, p.lag) == (3, 120, 100, 20)
    assert not p.owned and p.position is None


def test_the_larger_end_reading_wins_and_nothing_is_past_the_end() -> None:
    # ListOffsets said 101 (a broker that answers the last batch's start + 1), the worker's
    # own fetch said 130: 130 is the end. A committed offset or a position past every end
    # reading proves the end is at least there.
    assert partition_lag(0, ends=(101, 130), committed=100).end == 130
    assert partition_lag(0, ends=(101, 130), committed=100).lag == 30
    p = partition_lag(0, ends=(90,), committed=100, owned=True, position=110)
    assert (p.end, p.lag, p.position) == (110, 10, 110)
    assert partition_lag(0, ends=(None,), committed=None).lag == 0


def test_without_a_committed_offset_the_lag_counts_from_the_log_start() -> None:
    assert partition_lag(0, ends=(50,), committed=None, start=0).lag == 50
    # records deleted by retention are not lag: the group starts at the log start
    assert partition_lag(0, ends=(50,), committed=None, start=40).lag == 10


def test_only_owned_partitions_have_a_position() -> None:
    assert partition_lag(0, ends=(5,), committed=5, owned=False, position=5).position is None
    assert partition_lag(0, ends=(5,), committed=5, owned=True, position=5).position == 5


def test_a_reading_adds_up_and_says_so_in_a_few_words() -> None:
    r = reading(
        partition_lag(0, ends=(100,), committed=40, owned=True, position=90),
        partition_lag(1, ends=(10,), committed=10),
    )
    assert r.total == 60 and r.owned == (0,)
    as_json = r.to_json()
    assert as_json["total"] == 60 and as_json["error"] is None
    assert [p["lag"] for p in as_json["partitions"]] == [60, 0]
    text = describe(r, now=101.0)
    assert "consumer lag 60 on 2 partitions" in text
    assert "max 60 on partition 0" in text and "1 of them here" in text
    assert "read" not in text  # fresh
    assert "read 30 s ago" in describe(r, now=130.0)
    assert describe(None) == "consumer lag not read yet"
    failed = reading(error="KafkaConnectionError: no broker")
    assert failed.to_json()["total"] is None
    assert "unknown (KafkaConnectionError: no broker" in describe(failed, now=100.0)


def test_gauges_follow_the_readings() -> None:
    metrics = Metrics()
    metrics.consumer_lag(
        reading(
            partition_lag(0, ends=(100,), committed=40, owned=True, position=90),
            partition_lag(1, ends=(10,), committed=None, start=0),
            at=100.0,
        )
    )
    assert samples(metrics, "stream_trf_consumer_lag") == {("0", "in"): 60, ("1", "in"): 10}
    assert samples(metrics, "stream_trf_consumer_end_offset") == {("0", "in"): 100, ("1", "in"): 10}
    assert samples(metrics, "stream_trf_consumer_committed_offset") == {("0", "in"): 40}
    assert samples(metrics, "stream_trf_consumer_position") == {("0", "in"): 90}
    assert samples(metrics, "stream_trf_consumer_lag_timestamp_seconds") == {("in",): 100.0}

    # a failed reading changes nothing, not even the timestamp
    metrics.consumer_lag(reading(at=200.0, error="timeout"))
    assert samples(metrics, "stream_trf_consumer_lag") == {("0", "in"): 60, ("1", "in"): 10}
    assert samples(metrics, "stream_trf_consumer_lag_timestamp_seconds") == {("in",): 100.0}

    # partition 0 moved to another worker and partition 1 left: no stale series stay behind
    metrics.consumer_lag(
        reading(partition_lag(0, ends=(120,), committed=120, owned=False), at=300.0)
    )
    assert samples(metrics, "stream_trf_consumer_lag") == {("0", "in"): 0}
    assert samples(metrics, "stream_trf_consumer_end_offset") == {("0", "in"): 120}
    assert samples(metrics, "stream_trf_consumer_position") == {}
    assert samples(metrics, "stream_trf_consumer_lag_timestamp_seconds") == {("in",): 300.0}


def test_the_monitor_keeps_the_last_good_reading_and_shows_a_failure() -> None:
    monitor = Monitor()
    assert monitor.lag() is None and monitor.lag_summary() == "consumer lag not read yet"
    good = reading(partition_lag(0, ends=(100,), committed=40, owned=True, position=90), at=10.0)
    monitor.observe_lag(good)
    monitor.observe_lag(reading(at=20.0, error="KafkaTimeoutError"))
    shown = monitor.lag()
    assert shown is not None
    assert shown["total"] == 60 and shown["at"] == 10.0  # the last good reading's figures
    assert shown["error"] == "KafkaTimeoutError" and shown["error_at"] == 20.0
    assert shown["history"] == [[10.0, 60], [20.0, None]]  # a failure is a gap, not a zero
    assert "unknown (KafkaTimeoutError" in monitor.lag_summary(now=21.0)
    monitor.observe_lag(reading(partition_lag(0, ends=(100,), committed=100), at=30.0))
    shown = monitor.lag()
    assert shown is not None and shown["total"] == 0 and shown["error"] is None
    assert "error_at" not in shown
    assert math.isclose(samples(monitor.metrics, "stream_trf_consumer_lag")[("0", "in")], 0)
