"""End-to-end worker figures through the embedded broker: docs/s, words/s, latency p50/p99.

    python bench/worker_throughput.py --docs 2000 --out bench/results/worker-throughput-cpu.json

1. saturation: the worker is ready, N docs are produced at once; throughput is N over the time
   from the first produce to the last enriched record consumed from the output topic.
2. paced: docs are produced at a fixed share of that throughput for a while; latency is, per
   record, the time from the input record's broker timestamp to the enriched record's arrival
   at a consumer.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
from worker_harness import create_topics, fresh_settings

from stream_trf.stream import clients
from stream_trf.stream.broker import EmbeddedBroker
from stream_trf.stream.local import WorkerProcess


def read_docs(path: Path, n: int) -> list[dict]:
    docs = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            docs.append({"id": f"{r['id']}#{len(docs)}", "text": r["text"]})
            if len(docs) >= n:
                break
    return docs


async def _run_saturation(settings, docs):
    values = [orjson.dumps(d) for d in docs]
    keys = [d["id"].encode() for d in docs]
    want = {d["id"] for d in docs}
    t0 = time.time()
    consumer = asyncio.create_task(
        clients.consume(
            settings,
            settings.output_topic,
            timeout=1800,
            until=lambda r: {x["id"] for x in r} >= want,
        )
    )
    await clients.produce(settings, settings.input_topic, values, keys)
    t_produced = time.time()
    out = await consumer
    t1 = max(r["_kafka"]["received_ms"] for r in out) / 1000
    return out, t0, t_produced, t1


async def _run_paced(settings, docs, rate: float):
    values = [orjson.dumps(d) for d in docs]
    keys = [d["id"].encode() for d in docs]
    want = {d["id"] for d in docs}
    consumer = asyncio.create_task(
        clients.consume(
            settings,
            settings.output_topic,
            timeout=1800,
            until=lambda r: {x["id"] for x in r} >= want,
        )
    )
    t0 = time.time()
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers(), acks="all", linger_ms=1
    )
    await producer.start()
    try:
        for i, (k, v) in enumerate(zip(keys, values)):
            target = t0 + i / rate
            delay = target - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await producer.send(settings.input_topic, value=v, key=k)
        await producer.flush()
    finally:
        await producer.stop()
    return await consumer


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--data",
        default=str(
            Path(__file__).resolve().parents[2] / "shared/data/debian-descriptions.jsonl.gz"
        ),
    )
    ap.add_argument("--docs", type=int, default=2000)
    ap.add_argument("--model", default="all-MiniLM-L6-v2")
    ap.add_argument(
        "--paced-share",
        type=float,
        default=0.5,
        help="paced rate as a share of the measured throughput",
    )
    ap.add_argument("--paced-seconds", type=float, default=60.0)
    ap.add_argument("--out", default="bench/results/worker-throughput-cpu.json")
    args = ap.parse_args()
    docs = read_docs(Path(args.data), args.docs)
    logs = Path(tempfile.mkdtemp(prefix="stream-trf-bench-"))
    with EmbeddedBroker(log_file=logs / "broker.log") as broker:
        settings = fresh_settings(broker.url, args.model)
        create_topics(settings)
        worker = WorkerProcess(settings.with_(log_level="warn"), logs / "worker.log")
        try:
            ready = worker.wait_ready(timeout=300)
            out, t0, t_produced, t1 = asyncio.run(_run_saturation(settings, docs))
            words = sum(r["n_words"] for r in {r["id"]: r for r in out}.values())
            secs = t1 - t0
            docs_s = len(docs) / secs
            sat_lat = [r["_kafka"]["received_ms"] - r["timings"]["ingested_at_ms"] for r in out]
            saturation = {
                "docs": len(docs),
                "words": words,
                "seconds": round(secs, 2),
                "docs_per_s": round(docs_s, 1),
                "words_per_s": round(words / secs, 1),
                "produce_seconds": round(t_produced - t0, 2),
                "latency_ms_p50": round(float(np.percentile(sat_lat, 50)), 1),
                "latency_ms_p99": round(float(np.percentile(sat_lat, 99)), 1),
                "duplicates": clients.duplicates(out),
            }
            print(json.dumps({"saturation": saturation}))
            rate = max(1.0, docs_s * args.paced_share)
            n_paced = max(10, int(rate * args.paced_seconds))
            paced_docs = [
                {"id": f"paced-{i}", "text": d["text"]}
                for i, d in enumerate((docs * (1 + n_paced // len(docs)))[:n_paced])
            ]
            out2 = asyncio.run(_run_paced(settings, paced_docs, rate))
            lat = [
                r["_kafka"]["received_ms"] - r["timings"]["ingested_at_ms"]
                for r in out2
                if r["id"].startswith("paced-")
            ]
            paced = {
                "rate_docs_per_s": round(rate, 1),
                "docs": len(paced_docs),
                "latency_ms_p50": round(float(np.percentile(lat, 50)), 1),
                "latency_ms_p99": round(float(np.percentile(lat, 99)), 1),
                "latency_ms_max": round(float(np.max(lat)), 1),
            }
            print(json.dumps({"paced": paced}))
        finally:
            worker.terminate()
    import torch

    result = {
        "benchmark": "worker_throughput",
        "command": f"python bench/worker_throughput.py --docs {args.docs} --model {args.model} "
        f"--paced-share {args.paced_share} --paced-seconds {args.paced_seconds}",
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "torch": torch.__version__,
            "cuda": torch.cuda.is_available(),
        },
        "worker_settings": {
            k: v
            for k, v in settings.public().items()
            if k in ("max_batch", "batch_within", "words_per_batch", "partitions")
        },
        "worker_ready_seconds": round(ready, 1),
        "saturation": saturation,
        "paced": paced,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
