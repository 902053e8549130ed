"""Consumer lag after a burst: its peak, and how long one worker takes to catch up.

Starts the embedded broker and one worker with its web port, warms the worker on ``--warmup``
docs, then produces ``--docs`` Debian package descriptions as fast as the producer can and
reads the worker's own lag (``/dashboard/windows.json``, every ``--lag-interval`` s) until the
group has committed every record. It records the lag over time, the peak, the time from the
burst's first record to lag 0, and the worker's rate over that time, which is the figure to size
replicas with (``docs/operations.md``): catch-up time ~ burst / rate.

    python -m bench.experiments.lag_burst --docs 3000 --out bench/results/lag-burst-cpu.json
    python -m bench.experiments.lag_burst --model /path/to/tiny --docs 20000   # pipeline, no model

Figures from a shared machine are indicative: ``--note`` says how it was shared.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson

from bench.harness.corpus import default_data_path, read_texts
from bench.harness.machine import describe, source_revision
from bench.harness.worker import bench_settings
from stream_trf.settings import Settings
from stream_trf.stream import clients
from stream_trf.stream.broker import EmbeddedBroker, free_port
from stream_trf.stream.local import WorkerProcess


def produce(settings: Settings, docs: list[dict[str, Any]]) -> None:
    import asyncio

    asyncio.run(
        clients.produce(
            settings,
            settings.input_topic,
            [orjson.dumps(d) for d in docs],
            [d["id"].encode() for d in docs],
        )
    )


def read_lag(port: int) -> dict[str, Any] | None:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/dashboard/windows.json", timeout=5) as r:
        lag = json.load(r)["lag"]
    return lag if isinstance(lag, dict) and not lag.get("error") else None


def documents_total(port: int) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return sum(
        s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "stream_trf_documents_total"
    )


def wait_caught_up(
    port: int, produced: int, timeout: float, poll: float, trace: list[tuple[float, int]], t0: float
) -> float:
    """Poll the worker's lag until every produced record is committed; the time it was."""
    deadline = time.monotonic() + timeout
    last_at = None
    while time.monotonic() < deadline:
        lag = read_lag(port)
        if lag is not None and lag["at"] != last_at and lag["at"] >= t0:
            last_at = lag["at"]
            trace.append((round(lag["at"] - t0, 3), int(lag["total"])))
            ends = sum(p["end"] for p in lag["partitions"])
            if ends >= produced and lag["total"] == 0:
                return float(lag["at"])
        time.sleep(poll)
    raise TimeoutError(f"the worker did not catch up within {timeout:.0f} s (last: {trace[-3:]})")


def run(args: argparse.Namespace) -> dict[str, Any]:
    texts = read_texts(args.data, args.warmup + args.docs)
    warm = [{"id": f"w{i}", "text": t} for i, t in enumerate(texts[: args.warmup])]
    burst = [{"id": f"b{i}", "text": t} for i, t in enumerate(texts[args.warmup :])]
    with tempfile.TemporaryDirectory(prefix="stream-trf-lag-") as tmp, EmbeddedBroker() as broker:
        port = free_port()
        settings = bench_settings(
            broker.url,
            args.model,
            web_port=port,
            lag_interval=args.lag_interval,
            partitions=args.partitions,
            metrics_topic="",
        )
        import asyncio

        asyncio.run(clients.ensure_worker_topics(settings))
        worker = WorkerProcess(settings, Path(tmp) / "worker.log")
        try:
            worker.wait_ready(timeout=600)
            trace: list[tuple[float, int]] = []
            produce(settings, warm)
            wait_caught_up(port, len(warm), 600, args.lag_interval / 2, [], time.time())
            docs_before = documents_total(port)
            t0 = time.time()
            produce(settings, burst)
            produced_s = time.time() - t0
            done_at = wait_caught_up(
                port, len(warm) + len(burst), 3600, args.lag_interval / 2, trace, t0
            )
            enriched = documents_total(port) - docs_before
        finally:
            worker.terminate()
    catch_up = done_at - t0
    peak_at, peak = max(trace, key=lambda p: p[1])
    return {
        "docs": len(burst),
        "enriched": int(enriched),
        "produce_seconds": round(produced_s, 2),
        "offered_docs_per_s": round(len(burst) / produced_s, 1),
        "lag_peak": peak,
        "lag_peak_at_s": peak_at,
        "catch_up_s": round(catch_up, 2),
        "worker_docs_per_s": round(len(burst) / catch_up, 1),
        "lag_interval_s": args.lag_interval,
        # (seconds since the burst's first record, total lag) of every reading
        "trace_s_lag": trace,
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--docs", type=int, default=3000, help="records in the burst")
    ap.add_argument("--warmup", type=int, default=200, help="records before the burst")
    ap.add_argument("--model", default="all-MiniLM-L6-v2", help="the worker's model")
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--lag-interval", type=float, default=0.5, help="seconds between readings")
    ap.add_argument("--data", type=Path, default=None, help="JSONL(.gz) of {'text': ...}")
    ap.add_argument("--note", default="", help="how the machine was shared, anything else")
    ap.add_argument("--out", type=Path, default=None, help="write the result here (JSON)")
    args = ap.parse_args()
    args.data = args.data or default_data_path()
    load_before = os.getloadavg()
    result = run(args)
    load_after = os.getloadavg()
    out = {
        "benchmark": "lag_burst",
        "command": shlex.join(["python", "-m", "bench.experiments.lag_burst", *sys.argv[1:]]),
        "commit": source_revision(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": describe(),
        "model": args.model,
        "note": args.note,
        # other processes on the machine: 1/5/15-minute load averages before and after the run
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        **result,
    }
    summary = {k: v for k, v in out.items() if k not in ("trace_s_lag", "machine")}
    print(json.dumps(summary, indent=2))
    if args.out:
        args.out.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
