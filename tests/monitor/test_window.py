"""Tumbling windows: aligned, closed on time (also when empty), duplicates and dead letters."""

from __future__ import annotations

import pytest
from monitor_helpers import RecordStream

from stream_trf.monitor.window import Windows, record_latency

MODEL = ("m", "1")


def test_windows_are_aligned_and_close_when_the_clock_passes_their_end() -> None:
    stream = RecordStream()
    w = Windows(10.0, started=95.0)
    for t in (100.0, 101.5, 109.9):
        w.observe_enriched(stream.record(now=t), t)
    assert w.close_due(109.99) == []
    (closed,) = w.close_due(110.0)
    assert closed["model"] == MODEL
    assert (closed["start"], closed["end"], closed["seconds"]) == (100.0, 110.0, 10.0)
    assert closed["documents"] == 3
    assert closed["latencies"] == pytest.approx([0.2, 0.2, 0.2])
    assert closed["vectors"] is not None and closed["vectors"].shape == (3, 16)
    # The model's next window closes on time even with nothing in it.
    (empty,) = w.close_due(120.5)
    assert (empty["start"], empty["end"], empty["documents"]) == (110.0, 120.0, 0)
    assert empty["mean_vector"] is None and empty["text"]["mean_words"] is None


def test_the_first_window_starts_when_the_monitor_did() -> None:
    w = Windows(60.0, started=130.0)
    w.observe_enriched(RecordStream().record(), 131.0)
    (closed,) = w.close_due(180.0)
    assert (closed["start"], closed["end"], closed["seconds"]) == (130.0, 180.0, 50.0)


def test_a_record_after_the_end_closes_the_window_before_the_timer_does() -> None:
    stream = RecordStream()
    w = Windows(10.0, started=0.0)
    w.observe_enriched(stream.record(), 5.0)
    w.observe_enriched(stream.record(), 12.0)
    closed = w.close_due(12.5)
    assert [(c["start"], c["documents"]) for c in closed] == [(0.0, 1)]
    closed = w.close_due(20.0)
    assert [(c["start"], c["documents"]) for c in closed] == [(10.0, 1)]


def test_duplicates_are_counted_apart_and_the_memory_of_sources_is_bounded() -> None:
    stream = RecordStream()
    w = Windows(10.0, started=0.0, dedupe_size=3)
    first = stream.record(offset=1)
    assert w.observe_enriched(first, 1.0)
    assert not w.observe_enriched(dict(first), 2.0)  # redelivered: same source
    for offset in (2, 3, 4):
        assert w.observe_enriched(stream.record(offset=offset), 3.0)
    # offset 1 has been forgotten (only the last 3 sources are kept)
    assert w.observe_enriched(stream.record(offset=1), 4.0)
    # The same source from another model is no duplicate.
    other = RecordStream(name="other").record(offset=4)
    assert w.observe_enriched(other, 4.0)
    closed = {c["model"]: c for c in w.close_due(10.0)}
    assert closed[MODEL]["documents"] == 5
    assert closed[MODEL]["duplicates"] == 1
    assert closed[("other", "1")]["documents"] == 1


def test_dead_letters_and_volume() -> None:
    stream = RecordStream()
    w = Windows(10.0, started=0.0)
    recs = [stream.record(agrees=i % 4 != 0, words=10, unknown=1) for i in range(8)]
    for r in recs:
        w.observe_enriched(r, 1.0)
    for _ in range(3):
        w.observe_dead_letter(MODEL, 2.0)
    w.observe_dead_letter(("quiet", "2"), 2.0)
    closed = {c["model"]: c for c in w.close_due(10.0)}
    c = closed[MODEL]
    assert (c["documents"], c["words"], c["dead_letters"]) == (8, 80, 3)
    assert (c["compared"], c["agree"]) == (8, 6)
    assert sum(c["label_counts"].values()) == 8
    assert c["text"]["mean_words"] == 10
    assert c["text"]["unknown_share"] == pytest.approx(8 / (8 * 14))
    assert closed[("quiet", "2")]["dead_letters"] == 1
    assert closed[("quiet", "2")]["documents"] == 0


def test_latency_comes_from_the_broker_timestamp_else_the_batch_time() -> None:
    assert record_latency({"timings": {"ingested_at_ms": 1000.0, "batch_ms": 9}}, 3.5) == 2.5
    assert record_latency({"timings": {"batch_ms": 250.0}}, 3.5) == 0.25
    assert record_latency({}, 3.5) is None


def test_the_window_size_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Windows(0)
