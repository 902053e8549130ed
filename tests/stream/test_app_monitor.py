"""The worker's web pages, served by faust's aiohttp app (no broker needed), and the monitor
settings."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiohttp.test_utils import TestClient, TestServer
from monitor_helpers import RecordStream
from prometheus_client.parser import text_string_to_metric_families

from stream_trf.monitor.prometheus import CONTENT_TYPE
from stream_trf.settings import Settings
from stream_trf.stream.app import build_app


def _get_all(settings: Settings, paths: list[str]) -> dict[str, tuple[int, dict, bytes]]:
    async def run() -> dict[str, tuple[int, dict, bytes]]:
        app = build_app(settings, processor=None)  # type: ignore[arg-type]
        monitor = app._stream_trf_monitor  # type: ignore[attr-defined]
        stream = RecordStream()
        for i in range(5):
            monitor.observe_enriched(stream.record(now=100.0 + i), 100.0 + i)
        monitor.tick(10_000.0)
        client = TestClient(TestServer(app.web.web_app))
        await client.start_server()
        out: dict[str, tuple[int, dict, bytes]] = {}
        try:
            for path in paths:
                resp = await client.get(path)
                out[path] = (resp.status, dict(resp.headers), await resp.read())
        finally:
            await client.close()
        return out

    return asyncio.run(run())


def test_metrics_dashboard_and_window_data_are_served() -> None:
    got = _get_all(
        Settings(web_port=6066, window_seconds=60.0),
        ["/metrics", "/dashboard", "/dashboard/windows.json"],
    )
    status, headers, body = got["/metrics"]
    assert status == 200 and headers["Content-Type"] == CONTENT_TYPE
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    (sample,) = [s for s in families["stream_trf_documents"].samples if s.name.endswith("_total")]
    assert sample.value == 5
    status, headers, body = got["/dashboard"]
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert body.lstrip().lower().startswith(b"<!doctype html")
    status, headers, body = got["/dashboard/windows.json"]
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    data: dict[str, Any] = orjson.loads(body)
    assert set(data) == {"windows", "alerts", "lag"}
    assert data["lag"] is None  # not read yet (no broker here)
    assert len(data["windows"]) == 1 and data["windows"][0]["volume"]["documents"] == 5
    assert data["alerts"] == []


def test_the_web_server_binds_to_localhost_unless_told_otherwise() -> None:
    app = build_app(Settings(web_port=6067), processor=None)  # type: ignore[arg-type]
    assert app.conf.web_bind == "127.0.0.1"
    assert app.conf.web_enabled
    assert not build_app(Settings(), processor=None).conf.web_enabled  # type: ignore[arg-type]


def test_monitor_settings_come_from_flags_and_the_environment() -> None:
    s = Settings.from_sources(
        env={
            "STREAM_TRF_WINDOW_SECONDS": "2.5",
            "STREAM_TRF_METRICS_TOPIC": "m-topic",
            "STREAM_TRF_ALERT_WINDOWS": "3",
            "STREAM_TRF_LABEL_JS_MAX": "0.4",
        }
    )
    assert s.window_seconds == 2.5 and s.metrics_topic == "m-topic"
    assert s.alert_windows == 3 and s.label_js_max == 0.4
    # the monitoring section is the monitor's configuration itself
    monitor = build_app(s, processor=None)._stream_trf_monitor  # type: ignore[arg-type]
    assert monitor.config is s.monitor
    assert (monitor.config.window_seconds, monitor.config.alert_windows) == (2.5, 3)
    assert monitor.config.thresholds.label_js_max == 0.4
    defaults = Settings()
    assert defaults.metrics_topic == "stream-trf-metrics" and defaults.window_seconds == 60.0
    assert defaults.reference_size == 500 and defaults.reference_file == ""
    for bad in ({"window_seconds": 0.0}, {"alert_windows": 0}, {"reference_size": 0}):
        try:
            defaults.with_(**bad).validate()
        except ValueError:
            continue
        raise AssertionError(f"{bad} was accepted")
