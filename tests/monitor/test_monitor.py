"""The monitor end to end on synthetic streams: reference, window records, alerts, history."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
from monitor_helpers import SHIFTED, RecordStream

from stream_trf import schemas
from stream_trf.monitor.alerts import Thresholds
from stream_trf.monitor.monitor import Monitor, MonitorConfig
from stream_trf.monitor.reference import Reference

METRICS = jsonschema.Draft202012Validator(schemas.load("metrics"))
WINDOW = 10.0


def _config(**overrides: Any) -> MonitorConfig:
    base: dict[str, Any] = {
        "window_seconds": WINDOW,
        "reference_size": 200,
        "alert_windows": 2,
        "permutations": 100,
        "thresholds": Thresholds(min_documents=50),
    }
    return MonitorConfig(**(base | overrides))


def _window(
    monitor: Monitor, stream: RecordStream, start: float, n: int, **kwargs: Any
) -> list[dict[str, Any]]:
    """n records spread over the window [start, start + WINDOW), then close it."""
    for i in range(n):
        t = start + i * (WINDOW / n)
        monitor.observe_enriched(stream.record(now=t, **kwargs), t)
    records = monitor.tick(start + WINDOW)
    for rec in records:
        METRICS.validate(rec)
    return records


def _figures(record: dict[str, Any]) -> set[str]:
    return {a["figure"] for a in record["alerts"]}


def test_the_window_record_has_the_documented_shape() -> None:
    monitor = Monitor(_config(reference_size=20), worker="host:1", started=0.0)
    stream = RecordStream()
    (first,) = _window(monitor, stream, 0.0, 30, agrees=True)
    assert first["schema"] == "stream_trf/metrics/v1"
    assert first["model"] == {"name": "m", "version": "1"}
    assert first["worker"] == "host:1"
    assert first["window"] == {"start": 0.0, "end": 10.0, "seconds": 10.0}
    assert first["volume"] == {
        "documents": 30,
        "words": first["volume"]["words"],
        "dead_letters": 0,
        "duplicates": 0,
    }
    assert first["agreement"]["compared"] == 30 and first["agreement"]["ratio"] == 1.0
    assert first["agreement"]["lower"] < 1.0 == first["agreement"]["upper"]
    assert sum(first["labels"]["distribution"].values()) == pytest.approx(1.0)
    assert first["latency"]["p50_s"] == pytest.approx(0.2)
    assert first["latency"]["docs_per_second"] == 3.0
    # The reference (the first 20 documents) came from this window: drift figures now exist.
    assert first["reference"] == {"documents": 20, "source": "stream:first-20"}
    assert first["labels"]["js_distance"] is not None
    assert first["embedding"]["p_value"] is not None
    assert set(first) == {
        "schema",
        "model",
        "worker",
        "window",
        "volume",
        "agreement",
        "labels",
        "embedding",
        "text",
        "latency",
        "reference",
        "alerts",
    }


def test_until_the_reference_is_complete_drift_figures_are_null() -> None:
    monitor = Monitor(_config(), started=0.0)
    (rec,) = _window(monitor, RecordStream(), 0.0, 50)
    assert rec["reference"] == {"documents": 50, "source": "building from the stream (50/200)"}
    assert rec["labels"]["js_distance"] is None and rec["labels"]["psi"] is None
    assert rec["embedding"] == {"cosine_distance": None, "mmd2": None, "p_value": None}
    assert rec["agreement"]["ratio"] is None  # no production labels in these records
    assert rec["labels"]["mean_confidence"] is not None


def test_a_stationary_stream_is_quiet_and_a_shift_alerts_after_k_windows_then_clears() -> None:
    monitor = Monitor(_config(), started=0.0)
    stream = RecordStream(seed=1)
    t = 0.0
    for _ in range(2):  # 200 documents: the reference
        _window(monitor, stream, t, 100, agrees=True)
        t += WINDOW
    for _ in range(4):
        (rec,) = _window(monitor, stream, t, 150, agrees=True)
        t += WINDOW
        assert rec["alerts"] == []
        assert rec["embedding"]["p_value"] > 0.01
    # The input drifts: other labels, other vectors.
    (first,) = _window(monitor, stream, t, 150, agrees=True, label_p=SHIFTED, shift=1.0)
    t += WINDOW
    assert first["alerts"] == []  # one window is not a trend
    assert first["embedding"]["p_value"] <= 0.01
    assert first["labels"]["js_distance"] > 0.25
    (second,) = _window(monitor, stream, t, 150, agrees=True, label_p=SHIFTED, shift=1.0)
    t += WINDOW
    assert {"embedding_p_value", "embedding_cosine", "label_js", "label_psi"} <= _figures(second)
    assert "agreement" not in _figures(second)
    alert = next(a for a in second["alerts"] if a["figure"] == "embedding_cosine")
    assert alert["windows"] == 2 and alert["value"] > alert["threshold"] == 0.05
    current = monitor.current_alerts()
    assert {a["figure"] for a in current} == _figures(second)
    assert current[0]["model"] == {"name": "m", "version": "1"} and current[0]["since"] == t
    (back,) = _window(monitor, stream, t, 150, agrees=True)
    assert back["alerts"] == [] and monitor.current_alerts() == []


def test_corrupted_production_labels_raise_the_agreement_alert() -> None:
    monitor = Monitor(_config(reference_size=100), started=0.0)
    stream = RecordStream(seed=2)
    _window(monitor, stream, 0.0, 100, agrees=True)
    t = WINDOW
    for _ in range(2):
        (ok,) = _window(monitor, stream, t, 100, agrees=True)
        t += WINDOW
        assert ok["alerts"] == []
    records = []
    for _ in range(2):
        for j in range(100):
            now = t + j * 0.1
            monitor.observe_enriched(stream.record(now=now, agrees=j % 2 == 0), now)
        t += WINDOW
        records += monitor.tick(t)
    assert records[0]["alerts"] == []
    assert records[0]["agreement"]["ratio"] == 0.5
    assert records[0]["agreement"]["upper"] < 0.95  # the reference's 1.0 minus the 0.05 drop
    assert _figures(records[1]) == {"agreement"}
    (alert,) = records[1]["alerts"]
    assert alert == {"figure": "agreement", "value": 0.5, "threshold": 0.95, "windows": 2}


def test_one_very_long_document_is_not_text_drift_but_a_real_shift_is() -> None:
    """The windowed share is a ratio of sums: one 5,000-wordpiece description moves it a lot.
    The noise-aware threshold lets that pass and still catches every document changing."""
    monitor = Monitor(_config(), started=0.0)
    stream = RecordStream(seed=4)
    t = 0.0
    for _ in range(2):
        _window(monitor, stream, t, 100, agrees=True)
        t += WINDOW
    for _ in range(3):  # each window: 149 ordinary documents and one huge, mostly windowed
        for i in range(150):
            now = t + i * WINDOW / 150
            huge = {"wordpieces": 5000, "windowed": 4500} if i == 75 else {}
            monitor.observe_enriched(stream.record(now=now, agrees=True, **huge), now)
        (rec,) = monitor.tick(t + WINDOW)
        t += WINDOW
        assert rec["text"]["windowed_share"] > 0.2  # far beyond text_share_max (0.05) ...
        assert "windowed_share" not in _figures(rec)  # ... but one document is not a trend
    for _ in range(2):  # every document now has a long sentence: a real change
        (rec,) = _window(monitor, stream, t, 150, agrees=True, wordpieces=40, windowed=8)
        t += WINDOW
    alert = next(a for a in rec["alerts"] if a["figure"] == "windowed_share")
    assert alert["value"] == pytest.approx(0.2) and alert["threshold"] == pytest.approx(0.05)


def test_small_windows_neither_raise_nor_clear_alerts() -> None:
    monitor = Monitor(_config(reference_size=100, alert_windows=1), started=0.0)
    stream = RecordStream(seed=3)
    _window(monitor, stream, 0.0, 100)
    (shifted,) = _window(monitor, stream, WINDOW, 60, shift=1.0)
    assert "embedding_cosine" in _figures(shifted)
    (small,) = _window(monitor, stream, 2 * WINDOW, 10)  # fewer than min_documents
    assert "embedding_cosine" in _figures(small)  # still active: no evidence either way
    (empty,) = monitor.tick(4 * WINDOW)  # nothing at all in this window
    assert empty["volume"]["documents"] == 0 and "embedding_cosine" in _figures(empty)


def test_duplicates_and_dead_letters_reach_the_record() -> None:
    monitor = Monitor(_config(), started=0.0)
    stream = RecordStream()
    rec = stream.record()
    monitor.observe_enriched(rec, 1.0)
    monitor.observe_enriched(dict(rec), 2.0)
    monitor.observe_dead_letter(("m", "1"), 3.0)
    (window,) = monitor.tick(WINDOW)
    assert window["volume"]["documents"] == 1
    assert window["volume"]["duplicates"] == 1
    assert window["volume"]["dead_letters"] == 1


def test_history_keeps_the_last_windows() -> None:
    monitor = Monitor(_config(history_size=3), started=0.0)
    stream = RecordStream()
    for i in range(5):
        _window(monitor, stream, i * WINDOW, 5)
    ends = [r["window"]["end"] for r in monitor.history()]
    assert ends == [30.0, 40.0, 50.0]


def test_a_reference_built_from_the_stream_is_saved_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "ref.json"
    monitor = Monitor(_config(reference_size=50, reference_file=str(path)), started=0.0)
    stream = RecordStream()
    _window(monitor, stream, 0.0, 60)
    saved = Reference.load(path)
    assert saved.documents == 50 and saved.source == "stream:first-50"
    # A restarted worker takes it from the file, before any record arrives.
    again = Monitor(_config(reference_size=50, reference_file=str(path)), started=0.0)
    (rec,) = _window(again, stream, 0.0, 5)
    assert rec["reference"] == {"documents": 50, "source": "stream:first-50"}
    assert rec["embedding"]["cosine_distance"] is not None


def test_a_reference_file_of_another_width_leaves_embedding_figures_null(tmp_path: Path) -> None:
    ref = Reference.from_records(RecordStream().records(30), source="file:x.json")
    ref.mean_vector = ref.mean_vector[:8]
    assert ref.vector_sample is not None
    ref.vector_sample = ref.vector_sample[:, :8]
    monitor = Monitor(_config(), reference=ref, started=0.0)
    (rec,) = _window(monitor, RecordStream(seed=9), 0.0, 20)
    assert rec["embedding"] == {"cosine_distance": None, "mmd2": None, "p_value": None}
    assert rec["labels"]["js_distance"] is not None


def test_flush_reports_the_unfinished_window_as_partial() -> None:
    monitor = Monitor(_config(reference_size=20), started=0.0)
    stream = RecordStream()
    (full,) = _window(monitor, stream, 0.0, 30, agrees=True)
    for i in range(25):  # half of the next window
        monitor.observe_enriched(stream.record(agrees=True), WINDOW + i * 0.2)
    records = monitor.flush(WINDOW + 5.0)
    assert len(records) == 1
    (last,) = records
    METRICS.validate(last)
    assert last["window"] == {"start": WINDOW, "end": WINDOW + 5.0, "seconds": 5.0, "partial": True}
    assert last["volume"]["documents"] == 25
    assert "partial" not in full["window"]
    assert monitor.tick(WINDOW * 5) == []  # nothing left open, nothing reported twice
    assert monitor.history()[-1] == last
