"""The live dashboard in a real browser: headless Chromium loads ``page()`` from a small aiohttp
server that also serves a synthetic ``windows.json`` (two models, one in alert, one with hostile
names), then the test reads the DOM Chromium rendered (``--dump-dom``) and a screenshot.

Chromium is required, not optional: without it these tests FAIL (``.ci/run`` installs it with
apt). Set ``STREAM_TRF_CHROMIUM`` to use another binary, and ``STREAM_TRF_DASHBOARD_PNG`` to
also save the screenshot somewhere (that is how ``bench/results/dashboard.png`` was made).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from stream_trf.monitor.dashboard import CONTENT_SECURITY_POLICY, page

SCHEMA = "stream_trf/metrics/v1"
HOSTILE_IMG = "<img src=x onerror=alert(1)>"
HOSTILE_SCRIPT = '<script>document.title="pwned"</script>'
HOSTILE_MODEL = {"name": "evil" + HOSTILE_SCRIPT, "version": HOSTILE_IMG}
PROD_MODEL = {"name": "debian-sections-prod", "version": "1.4.2"}
WINDOW_S = 60.0
T0 = float(int(time.time() // 60 * 60)) - 12 * WINDOW_S  # the last windows end about now

CHART_SERIES = {  # every chart the page draws, and the series each one holds
    "agreement": ["ratio"],
    "embedding": ["cosine_distance"],
    "mmd": ["p_value"],
    "label_drift": ["js_distance", "psi"],
    "confidence": ["mean_confidence"],
    "volume": ["documents", "dead_letters", "duplicates"],
    "throughput": ["docs_per_second"],
    "latency": ["p50_s", "p99_s"],
    "text_words": ["mean_words"],
    "text_sentences": ["mean_sentences"],
    "text_shares": ["windowed_share", "unknown_share"],
}
TILES = ["agreement", "embedding", "label_drift", "throughput", "latency"]


# --------------------------------------------------------------------------- synthetic data


def window_record(
    model: dict[str, str],
    worker: str,
    i: int,
    rng: random.Random,
    *,
    drift: float = 0.0,
    labels: dict[str, float] | None = None,
    alerts: list[dict[str, Any]] | None = None,
    no_agreement: bool = False,
) -> dict[str, Any]:
    docs = rng.randint(900, 1100)
    compared = docs - rng.randint(0, 40)
    agree = round(compared * (0.91 - 0.25 * drift + rng.uniform(-0.015, 0.015)))
    ratio = agree / compared
    half = 1.96 * (ratio * (1 - ratio) / compared) ** 0.5
    labels = labels or {"admin": 0.3, "devel": 0.25, "libs": 0.2, "net": 0.15, "utils": 0.1}
    return {
        "schema": SCHEMA,
        "model": dict(model),
        "worker": worker,
        "window": {"start": T0 + i * WINDOW_S, "end": T0 + (i + 1) * WINDOW_S, "seconds": WINDOW_S},
        "volume": {
            "documents": docs,
            "words": docs * rng.randint(40, 60),
            "dead_letters": rng.choice([0, 0, 1, 2, 5]),
            "duplicates": rng.choice([0, 0, 0, 3]),
        },
        "agreement": (
            {"compared": 0, "agree": 0, "ratio": None, "lower": None, "upper": None}
            if no_agreement
            else {
                "compared": compared,
                "agree": agree,
                "ratio": ratio,
                "lower": ratio - half,
                "upper": ratio + half,
            }
        ),
        "labels": {
            "distribution": labels,
            "mean_confidence": 0.88 - 0.2 * drift + rng.uniform(-0.01, 0.01),
            "js_distance": 0.03 + 0.25 * drift + rng.uniform(0, 0.02),
            "psi": 0.02 + 0.4 * drift + rng.uniform(0, 0.02),
        },
        "embedding": {
            "cosine_distance": 0.012 + 0.09 * drift + rng.uniform(0, 0.004),
            "mmd2": 0.001 + 0.02 * drift + rng.uniform(0, 0.001),
            "p_value": 0.0 + 0.002 if drift else rng.uniform(0.08, 0.95),
        },
        "text": {
            "mean_words": 48 + 30 * drift + rng.uniform(-3, 3),
            "mean_sentences": 3.1 + drift + rng.uniform(-0.3, 0.3),
            "windowed_share": 0.004 + rng.uniform(0, 0.003),
            "unknown_share": 0.001 + 0.01 * drift + rng.uniform(0, 0.0005),
        },
        "latency": {
            "p50_s": 0.08 + rng.uniform(0, 0.02),
            "p99_s": 0.35 + 0.2 * drift + rng.uniform(0, 0.1),
            "docs_per_second": docs / WINDOW_S,
        },
        "reference": {"documents": 2000, "source": "first 2000 records of stream-trf-input"},
        "alerts": alerts or [],
    }


EMBEDDING_ALERT = {"figure": "embedding.cosine_distance", "threshold": 0.05, "windows": 3}


def synthetic_windows(prod_windows: int = 12) -> dict[str, Any]:
    """Model PROD: ``prod_windows`` windows on one worker, drifting from window 8 on (alert from 10
    on; window 3 compared no labels, so its agreement is null); model HOSTILE: 2 workers x 5
    windows, hostile label names, no alert."""
    rng = random.Random(0)
    records: list[dict[str, Any]] = []
    for i in range(prod_windows):
        drift = 0.0 if i < 8 else min(1.0, (i - 7) / 3)
        alerts = []
        if i >= 10:
            rec_value = 0.012 + 0.09 * drift
            alerts = [dict(EMBEDDING_ALERT, value=rec_value, windows=i - 7)]
        records.append(
            window_record(
                PROD_MODEL, "worker-a:4101", i, rng, drift=drift, alerts=alerts, no_agreement=i == 3
            )
        )
    hostile_labels = {HOSTILE_IMG: 0.5, HOSTILE_SCRIPT: 0.3, "ok": 0.2}
    for i in range(5):
        for worker in ("worker-b:77", "worker-c:78"):
            records.append(window_record(HOSTILE_MODEL, worker, i + 7, rng, labels=hostile_labels))
    records.sort(key=lambda r: r["window"]["end"])
    last = records[-1]["window"]["end"]
    current = [
        {
            "model": dict(PROD_MODEL),
            "figure": "embedding.cosine_distance",
            "value": 0.104,
            "threshold": 0.05,
            "windows": max(1, prod_windows - 9),
            "since": last - 2 * WINDOW_S,
        }
    ]
    return {"windows": records, "alerts": current if prod_windows > 10 else []}


# --------------------------------------------------------------------------- server and browser


@contextmanager
def serve(payload: Callable[[int], dict[str, Any]], poll_seconds: float = 5.0) -> Iterator[str]:
    """Serve ``page()`` at /dashboard and ``payload(n)`` (n: 0-based request count) at
    /dashboard/windows.json on 127.0.0.1, from a thread; yields the dashboard's URL."""
    html = page(poll_seconds=poll_seconds)
    requests = {"n": 0}

    async def dashboard(_: web.Request) -> web.Response:
        return web.Response(
            text=html,
            content_type="text/html",
            headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY},
        )

    async def windows(_: web.Request) -> web.Response:
        body = payload(requests["n"])
        requests["n"] += 1
        return web.Response(text=json.dumps(body), content_type="application/json")

    app = web.Application()
    app.router.add_get("/dashboard", dashboard)
    app.router.add_get("/dashboard/windows.json", windows)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = runner.addresses[0][1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/dashboard"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.run_until_complete(runner.cleanup())
        loop.close()


def chromium_binary() -> str:
    configured = os.environ.get("STREAM_TRF_CHROMIUM")
    candidates = (
        [configured]
        if configured
        else ["/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"]
    )
    for candidate in candidates:
        found = shutil.which(candidate)
        if found:
            return found
    pytest.fail(
        "Chromium is required for the dashboard's browser tests and was not found "
        f"(looked for {', '.join(candidates)}). Install it: "
        "`apt-get install -y chromium chromium-driver` (Debian; .ci/run does this), or set "
        "STREAM_TRF_CHROMIUM to a Chromium/Chrome binary.",
        pytrace=False,
    )


def chromium(url: str, profile: Path, *args: str, budget_ms: int = 4000) -> str:
    """Run headless Chromium on ``url`` with a fresh profile; return its stdout."""
    command = [
        chromium_binary(),
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-extensions",
        "--no-first-run",
        "--no-default-browser-check",
        "--hide-scrollbars",
        "--mute-audio",
        f"--user-data-dir={profile}",
        f"--virtual-time-budget={budget_ms}",
        *args,
        url,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        pytest.fail(
            f"chromium exited with {done.returncode}: {' '.join(command)}\n{done.stderr[-3000:]}"
        )
    return done.stdout


def dump_dom(url: str, profile: Path, budget_ms: int = 4000) -> Node:
    dom = chromium(url, profile, "--dump-dom", budget_ms=budget_ms)
    root = parse(dom)
    body = root.find("body")
    assert body is not None, f"no <body> in Chromium's DOM dump:\n{dom[:2000]}"
    assert body.attrs.get("data-ready") == "1", (
        "the page never finished a render (body[data-ready] != 1); status: "
        + " ".join(n.text() for n in root.select(id="status"))
    )
    return root


# --------------------------------------------------------------------------- a small DOM

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node | str] = field(default_factory=list)

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def walk(self) -> Iterator[Node]:
        yield self
        for child in self.children:
            if isinstance(child, Node):
                yield from child.walk()

    def select(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> list[Node]:
        found = []
        for node in self.walk():
            if tag is not None and node.tag != tag:
                continue
            if cls is not None and cls not in node.classes:
                continue
            if any(node.attrs.get(k.replace("_", "-")) != v for k, v in attrs.items()):
                continue
            found.append(node)
        return found

    def find(self, tag: str) -> Node | None:
        return next(iter(self.select(tag)), None)

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(html: str) -> Node:
    builder = _Builder()
    builder.feed(html)
    builder.close()
    return builder.root


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def data() -> dict[str, Any]:
    return synthetic_windows()


@pytest.fixture(scope="module")
def rendered(
    data: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Node, Path, float]:
    """One server; Chromium's DOM dump and a 1400x1000 screenshot of it, and their wall time."""
    out = tmp_path_factory.mktemp("dashboard")
    shot = out / "dashboard.png"
    started = time.perf_counter()
    with serve(lambda _: data) as url:
        dom = dump_dom(url, out / "profile-dom")
        chromium(url, out / "profile-shot", f"--screenshot={shot}", "--window-size=1400,1000")
    elapsed = time.perf_counter() - started
    print(f"chromium: DOM dump + screenshot in {elapsed:.1f} s; screenshot {shot}")
    saved = os.environ.get("STREAM_TRF_DASHBOARD_PNG")
    if saved:
        shutil.copyfile(shot, saved)
    return dom, shot, elapsed


def section(dom: Node, model: dict[str, str]) -> Node:
    found = dom.select("section", "model", data_model_name=model["name"])
    assert len(found) == 1, f"expected one section for model {model['name']!r}, got {len(found)}"
    assert found[0].attrs.get("data-model-version") == model["version"]
    return found[0]


def records_of(data: dict[str, Any], model: dict[str, str]) -> list[dict[str, Any]]:
    return [r for r in data["windows"] if r["model"] == model]


# --------------------------------------------------------------------------- tests


def test_page_is_self_contained_and_says_no_windows_yet() -> None:
    html = page()
    dom = parse(html)
    assert html.startswith("<!DOCTYPE html>")
    for node in dom.walk():  # nothing fetched from anywhere: no src/href, no CSS url(), no @import
        assert "src" not in node.attrs and "href" not in node.attrs, node
    assert (
        "url(" not in html
        and "@import" not in html
        and "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    )
    assert "https://" not in html
    assert "innerHTML" not in html and "outerHTML" not in html and "insertAdjacentHTML" not in html
    assert "document.write" not in html and "eval(" not in html
    (empty,) = dom.select(id="empty")
    assert "No windows yet" in empty.text()
    csp = dom.select("meta", http_equiv="Content-Security-Policy")[0].attrs["content"]
    assert csp == CONTENT_SECURITY_POLICY and "script-src 'sha256-" in csp
    assert "unsafe" not in csp
    with pytest.raises(ValueError):
        page(poll_seconds=0)


def test_header_tiles_and_alert(rendered: tuple[Node, Path, float], data: dict) -> None:
    dom, _, _ = rendered
    assert dom.select(id="empty")[0].attrs.get("hidden") is not None  # data arrived
    prod = section(dom, PROD_MODEL)
    head = prod.select(cls="model-head")[0].text()
    assert PROD_MODEL["name"] in head and PROD_MODEL["version"] in head
    assert "worker-a:4101" in head
    tiles = {t.attrs["data-figure"]: t for t in prod.select(cls="tile")}
    assert sorted(tiles) == sorted(TILES)
    assert "alert" in tiles["embedding"].classes  # the active embedding-drift alert
    assert [k for k, t in tiles.items() if "alert" in t.classes] == ["embedding"]
    assert "ALERT" in tiles["embedding"].text()
    # the newest window's agreement with its interval, as percentages
    last = records_of(data, PROD_MODEL)[-1]["agreement"]
    agreement = tiles["agreement"].text()
    assert f"{100 * last['ratio']:.1f}%" in agreement
    assert f"{100 * last['lower']:.1f}–{100 * last['upper']:.1f}%" in agreement
    # the other model: two workers, no alert anywhere
    hostile = section(dom, HOSTILE_MODEL)
    assert not [t for t in hostile.select(cls="tile") if "alert" in t.classes]
    assert "worker-b:77" in hostile.text() and "worker-c:78" in hostile.text()
    # the alert list
    alerts = dom.select("ul", id="alerts")[0].select("li")
    assert len(alerts) == 1 and "alert" in alerts[0].classes
    assert "embedding.cosine_distance" in alerts[0].text()
    assert PROD_MODEL["name"] in alerts[0].text()
    assert "(1 alert)" in dom.find("title").text()  # type: ignore[union-attr]
    # no lag reading in this payload: no lag panel; the newest window had documents
    assert dom.select(id="lag-panel")[0].attrs.get("hidden") is not None
    (age,) = prod.select(cls="tiles-age")
    assert "idle" not in age.classes and age.text().startswith("Latest window: ")


def test_one_chart_per_figure_with_one_point_per_window(
    rendered: tuple[Node, Path, float], data: dict
) -> None:
    dom, _, _ = rendered
    for model in (PROD_MODEL, HOSTILE_MODEL):
        recs = records_of(data, model)
        charts = section(dom, model).select("div", "chart")
        by_figure = {c.attrs["data-figure"]: c for c in charts}
        assert set(CHART_SERIES) <= set(by_figure), sorted(by_figure)
        assert len(charts) == len(by_figure)  # one chart per figure
        for figure, series in CHART_SERIES.items():
            svgs = by_figure[figure].select("svg", "plot")
            assert len(svgs) == 1, figure
            for key in series:
                points = svgs[0].select("circle", "pt", data_series=key)
                section_name = {
                    "ratio": "agreement",
                    "cosine_distance": "embedding",
                    "p_value": "embedding",
                    "js_distance": "labels",
                    "psi": "labels",
                    "mean_confidence": "labels",
                    "p50_s": "latency",
                    "p99_s": "latency",
                    "docs_per_second": "latency",
                }.get(key, "volume" if figure == "volume" else "text")
                expected = sum(r[section_name][key] is not None for r in recs)
                assert len(points) == expected, (model["name"], figure, key)
                assert svgs[0].select("path", "line", data_series=key), (figure, key)
    # a null is a gap, not a zero: PROD's agreement has 11 points and its line breaks in two
    prod_agreement = [c for c in section(dom, PROD_MODEL).select("div", "chart")]
    agreement = next(c for c in prod_agreement if c.attrs["data-figure"] == "agreement")
    assert len(agreement.select("circle", "pt")) == len(records_of(data, PROD_MODEL)) - 1
    (line,) = agreement.select("path", "line")
    assert line.attrs["d"].count("M") == 2
    assert len(agreement.select("path", "interval")) == 2  # the interval band, also broken
    # windows in alert are shaded on the embedding chart of PROD (windows 10 and 11), not elsewhere
    embedding = next(c for c in prod_agreement if c.attrs["data-figure"] == "embedding")
    assert "alert" in embedding.classes
    strong = [b for b in embedding.select("rect", "alert-band") if "other" not in b.classes]
    assert len(strong) == 2
    assert embedding.select("line", "threshold")
    hostile_bands = section(dom, HOSTILE_MODEL).select("rect", "alert-band")
    assert not hostile_bands


def test_hostile_names_are_text_not_markup(rendered: tuple[Node, Path, float]) -> None:
    dom, _, _ = rendered
    assert not dom.select("img"), "a record's text became an <img> element"
    scripts = dom.select("script")
    assert len(scripts) == 1 and "use strict" in scripts[0].text()  # only the page's own
    assert dom.find("title").text() != "pwned"  # type: ignore[union-attr]
    for node in dom.walk():
        assert not [a for a in node.attrs if a.startswith("on")], node.tag
    hostile = section(dom, HOSTILE_MODEL)
    head = hostile.select(cls="model-head")[0]
    assert HOSTILE_MODEL["name"] in head.text() and HOSTILE_IMG in head.text()
    labels = next(
        c for c in hostile.select("div", "chart") if c.attrs["data-figure"] == "label_distribution"
    )
    names = labels.select("div", "label-name")
    assert [n.text() for n in names] == [HOSTILE_IMG, HOSTILE_SCRIPT, "ok"]  # by share
    assert [n.attrs["title"] for n in names] == [HOSTILE_IMG, HOSTILE_SCRIPT, "ok"]
    nav = [b.text() for b in dom.select("nav", id="models-nav")[0].select("button")]
    assert any(HOSTILE_SCRIPT in b for b in nav)


def test_screenshot_is_a_real_picture(rendered: tuple[Node, Path, float]) -> None:
    from PIL import Image

    _, shot, elapsed = rendered
    assert shot.exists() and shot.stat().st_size > 30_000, shot
    with Image.open(shot) as image:
        assert image.size == (1400, 1000)
        rgb = image.convert("RGB")
        colours = rgb.getcolors(maxcolors=1_000_000)
        assert colours is not None and len(colours) > 200  # text, lines, tiles: not one colour
        reds = sum(n for n, (r, g, b) in colours if r > 190 and g < 90 and b < 90)
        assert reds > 300, "the alert (red) is not visible in the screenshot"
    assert elapsed < 60


def test_empty_stream_says_no_windows_yet(tmp_path: Path) -> None:
    with serve(lambda _: {"windows": [], "alerts": []}) as url:
        dom = dump_dom(url, tmp_path / "profile")
    (empty,) = dom.select(id="empty")
    assert "hidden" not in empty.attrs and "No windows yet" in empty.text()
    assert not dom.select("section", "model")
    assert not dom.select(cls="tile")


def test_page_follows_the_stream(tmp_path: Path) -> None:
    """The page polls: the second answer holds one more window, which it then draws."""
    with serve(lambda n: synthetic_windows(6 if n == 0 else 7), poll_seconds=1) as url:
        dom = dump_dom(url, tmp_path / "profile", budget_ms=2500)
    prod = section(dom, PROD_MODEL)
    throughput = next(
        c for c in prod.select("div", "chart") if c.attrs["data-figure"] == "throughput"
    )
    assert len(throughput.select("circle", "pt")) == 7
    assert "7 windows" in prod.select(cls="model-head")[0].text()


# --------------------------------------------------------------------------- idle windows, lag

LAG_PARTITIONS = [
    {"partition": 0, "end": 5200, "committed": 4000, "lag": 1200, "owned": True, "position": 4256},
    {"partition": 1, "end": 4100, "committed": 4100, "lag": 0, "owned": True, "position": 4100},
    {"partition": 2, "end": 3900, "committed": 3866, "lag": 34, "owned": False, "position": None},
    {"partition": 3, "end": 10, "committed": None, "lag": 10, "owned": False, "position": None},
]


def idle_record(model: dict[str, str], worker: str, i: int) -> dict[str, Any]:
    """A window in which nothing arrived, as the monitor writes it: zeros and nulls."""
    rec = window_record(model, worker, i, random.Random(i))
    rec["volume"] = {"documents": 0, "words": 0, "dead_letters": 0, "duplicates": 0}
    rec["agreement"] = {"compared": 0, "agree": 0, "ratio": None, "lower": None, "upper": None}
    rec["labels"] = {"distribution": {}, "mean_confidence": None, "js_distance": None, "psi": None}
    rec["embedding"] = {"cosine_distance": None, "mmd2": None, "p_value": None}
    rec["text"] = dict.fromkeys(rec["text"])
    rec["latency"] = {"p50_s": None, "p99_s": None, "docs_per_second": 0.0}
    return rec


def idle_then_lagging() -> dict[str, Any]:
    """PROD: 6 windows with documents, then 3 idle ones; a lag reading with a failed last read
    and a history with a gap."""
    rng = random.Random(3)
    busy = [window_record(PROD_MODEL, "worker-a:4101", i, rng) for i in range(6)]
    idle = [idle_record(PROD_MODEL, "worker-a:4101", i) for i in range(6, 9)]
    now = T0 + 9 * WINDOW_S
    history = [[now - 60 + 5 * k, v] for k, v in enumerate([0, 0, 400, 900, None, 1244])]
    lag = {
        "topic": "stream-trf-input",
        "group": "stream-trf",
        "at": now - 5,
        "total": sum(p["lag"] for p in LAG_PARTITIONS),
        "partitions": LAG_PARTITIONS,
        "error": "KafkaTimeoutError",
        "error_at": now - 1,
        "history": history,
    }
    return {"windows": busy + idle, "alerts": [], "lag": lag}


def test_idle_windows_keep_the_last_figures_and_the_lag_panel_shows_every_partition(
    tmp_path: Path,
) -> None:
    import jsonschema

    from stream_trf import schemas

    data = idle_then_lagging()
    validator = jsonschema.Draft202012Validator(schemas.load("metrics"))
    for rec in data["windows"]:
        validator.validate(rec)  # the idle windows are what a worker would publish
    with serve(lambda _: data) as url:
        dom = dump_dom(url, tmp_path / "profile")
    prod = section(dom, PROD_MODEL)
    tiles = {t.attrs["data-figure"]: t for t in prod.select(cls="tile")}
    last_busy = data["windows"][5]
    # the tiles hold the last window with documents, not the idle window's blanks
    agreement = last_busy["agreement"]
    assert f"{100 * agreement['ratio']:.1f}%" in tiles["agreement"].text()
    assert "nodata" not in tiles["agreement"].classes
    assert f"{last_busy['latency']['docs_per_second']:.1f}" in tiles["throughput"].text()
    assert "—" not in tiles["latency"].select(cls="value")[0].text()
    (age,) = prod.select(cls="tiles-age")
    assert "idle" in age.classes
    assert float(age.attrs["data-window-end"]) == last_busy["window"]["end"]
    assert age.text().startswith("Last window with documents: ")
    assert " min ago" in age.text() and "no documents since" in age.text()
    # the charts still draw every window (the idle ones as zeros or gaps)
    throughput = next(
        c for c in prod.select("div", "chart") if c.attrs["data-figure"] == "throughput"
    )
    assert len(throughput.select("circle", "pt")) == 9
    # the lag panel: total, one row per partition (this worker's marked), the failed reading
    (panel,) = dom.select(id="lag-panel")
    assert panel.attrs.get("hidden") is None
    assert {"lagging", "error"} <= panel.classes
    assert panel.attrs["data-total"] == "1244"
    assert dom.select(id="lag-total")[0].text() == "1,244"
    rows = panel.select("tr", "partition")
    assert [r.attrs["data-partition"] for r in rows] == ["0", "1", "2", "3"]
    assert ["here" in r.classes for r in rows] == [True, True, False, False]
    cells = {r.attrs["data-partition"]: r for r in rows}
    assert cells["0"].select("td", "lag")[0].text() == "1,200"
    assert cells["0"].select("td", "position")[0].text() == "4,256"
    assert cells["3"].select("td", "committed")[0].text() == "—"
    text = panel.text()
    assert "stream-trf-input" in text and "2 read by this worker" in text
    assert "last reading failed" in text and "KafkaTimeoutError" in text
    # the history: one point per reading that succeeded, the failed one a gap
    points = panel.select("circle", "pt", data_series="lag")
    assert len(points) == 5
    (line,) = panel.select("path", "line", data_series="lag")
    assert line.attrs["d"].count("M") == 2
