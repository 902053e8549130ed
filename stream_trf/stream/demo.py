"""`stream-trf demo`: the product end to end on one machine, for a newcomer.

Embedded broker → a real worker process → sample records in → enriched records and dead letters
shown as they arrive → a summary with throughput and latency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..schemas.vectors import decode
from ..settings import Settings
from . import clients
from .broker import EmbeddedBroker
from .local import WorkerProcess


def sample_records() -> list[bytes]:
    text = resources.files("stream_trf").joinpath("samples/demo.jsonl").read_bytes()
    return [line for line in text.splitlines() if line.strip()]


def _with_new_ids(lines: list[bytes], round_: int) -> list[bytes]:
    if round_ == 0:
        return lines
    out = []
    for line in lines:
        try:
            obj = json.loads(line)
            obj["id"] = f"{obj['id']}-r{round_}"
            out.append(json.dumps(obj, ensure_ascii=False).encode())
        except Exception:
            out.append(line)
    return out


def _line(rec: dict[str, Any], now_ms: float) -> str:
    if "error" in rec:
        src = rec["source"]
        return (
            f"  ✗ dead letter  {rec['error']['type']:<14} {rec['error']['message'][:60]}"
            f"  (partition {src['partition']}, offset {src['offset']})"
        )
    parts = [f"  ✓ {rec['id']:<22} {rec['n_tokens']:>4} tokens {rec['n_wordpieces']:>4} wordpieces"]
    if "label" in rec:
        parts.append(f" label {rec['label']} ({rec['score']:.2f})")
    if "production" in rec:
        prod = rec["production"]
        agrees = {True: "agrees", False: "DISAGREES", None: "n/a"}[prod["agrees"]]
        parts.append(f" production {prod['label']} [{agrees}]")
    ingested = rec["timings"].get("ingested_at_ms")
    if ingested:
        parts.append(f" {now_ms - ingested:6.0f} ms")
    return "".join(parts)


def run_demo(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    lines = Path(args.file).read_bytes().splitlines() if args.file else sample_records()
    lines = [x for x in lines if x.strip()]
    values = [v for r in range(args.repeat) for v in _with_new_ids(lines, r)]
    log_dir = Path(tempfile.mkdtemp(prefix="stream-trf-demo-"))
    print(f"stream-trf demo: {len(values)} records, model {args.model}, logs in {log_dir}")
    with EmbeddedBroker(log_file=log_dir / "broker.log") as broker:
        print(f"  broker   {broker.url} (embedded Tansu, in-memory)")
        settings = Settings(
            broker=broker.url, session_timeout=4.0, heartbeat_interval=1.0, model=args.model
        )
        asyncio.run(clients.ensure_worker_topics(settings, partitions=4))
        worker = WorkerProcess(settings, log_dir / "worker.log")
        print(
            f"  worker   pid {worker.pid}: loading the model and joining the group ...",
            end="",
            flush=True,
        )
        ready_s = worker.wait_ready()
        print(f" ready in {ready_s:.1f}s")
        t0 = time.time()
        keys: list[bytes | None] = []
        for v in values:
            try:
                keys.append(str(json.loads(v)["id"]).encode())
            except Exception:
                keys.append(None)
        asyncio.run(clients.produce(settings, settings.topics.input_topic, values, keys))
        print(f"  produced {len(values)} records to {settings.topics.input_topic}\n")
        try:
            results = asyncio.run(
                _watch(settings, len(values), worker.proc, tqdm, verbose=len(values) <= 200)
            )
        finally:
            if not args.keep_running:
                try:
                    worker.terminate()
                except subprocess.TimeoutExpired:
                    worker.stop()
        elapsed = time.time() - t0
        if args.keep_running:
            print(f"\nbroker {broker.url} and worker pid {worker.pid} keep running; Ctrl-C to stop")
            try:
                worker.proc.wait()
            except KeyboardInterrupt:
                worker.terminate()
    enriched = [r for r in results if "error" not in r]
    dead = [r for r in results if "error" in r]
    latencies = [
        r["_kafka"]["received_ms"] - r["timings"]["ingested_at_ms"]
        for r in enriched
        if r["timings"].get("ingested_at_ms")
    ]
    words = sum(r["n_words"] for r in enriched)
    print(
        f"\n{len(enriched)} enriched, {len(dead)} dead letters, "
        f"{clients.duplicates(results)} duplicates, {words} words, in {elapsed:.1f}s"
    )
    if latencies:
        print(
            f"latency from produce to enriched record: p50 {np.percentile(latencies, 50):.0f} ms, "
            f"p99 {np.percentile(latencies, 99):.0f} ms"
        )
    if enriched:
        r = enriched[0]
        shown = {k: v for k, v in r.items() if k not in ("doc_vector", "_kafka")}
        shown["doc_vector"] = f"[{decode(r['doc_vector']).size} floats]"
        print("\none enriched record:\n" + json.dumps(shown, indent=2, ensure_ascii=False))
    missing = len(values) - len(results) + clients.duplicates(results)
    if missing > 0:
        print(
            f"stream-trf demo: {missing} records did not come back; see {log_dir}/worker.log",
            file=sys.stderr,
        )
        return 1
    return 0


async def _watch(
    settings: Settings, total: int, worker: subprocess.Popen[bytes], tqdm: Any, verbose: bool
) -> list[dict[str, Any]]:
    """Consume the enriched and dead-letter topics until every record is accounted for."""
    results: list[dict[str, Any]] = []
    bar = tqdm(total=total, unit="rec", desc="enriched + dead letters", file=sys.stderr)

    def on_record(rec: dict[str, Any]) -> None:
        results.append(rec)
        bar.update(1)
        if verbose:
            bar.write(_line(rec, time.time() * 1000))

    def done(_: list[dict[str, Any]]) -> bool:
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited with code {worker.returncode}")
        return len({(r["source"]["partition"], r["source"]["offset"]) for r in results}) >= total

    try:
        await asyncio.gather(
            clients.consume(
                settings, settings.topics.output_topic, until=done, timeout=600, on_record=on_record
            ),
            clients.consume(
                settings, settings.topics.dlq_topic, until=done, timeout=600, on_record=on_record
            ),
        )
    finally:
        bar.close()
    return results
