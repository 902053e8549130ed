"""Enrichment through the real worker on the embedded broker, cached.

The enriched records are cached as gzipped JSONL under ``~/.cache/stream-trf/drift/``, keyed by
the data, the model, its classifier head and the production model's recipe, so that a rerun
replays in seconds.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import orjson

from bench.harness.worker import bench_settings
from stream_trf.settings import Settings

from .classifier import PRODUCTION_RECIPE
from .labelled import Record

# Bump when the enriched-record cache's content would change for the same inputs.
CACHE_FORMAT = "drift-enriched/v1"


def cache_key(paths: Sequence[Path], model: str) -> str:
    """What the enriched records depend on: the data files, the model (and the classifier head
    shipped for the default model), the production model's recipe and this cache's format."""
    import stream_trf

    h = hashlib.sha256()
    for part in (CACHE_FORMAT, PRODUCTION_RECIPE, model):
        h.update(part.encode() + b"\0")
    for p in paths:
        h.update(Path(p).read_bytes())
    if model == stream_trf.DEFAULT_MODEL and stream_trf.DEFAULT_CLASSIFIER.exists():
        for f in sorted(stream_trf.DEFAULT_CLASSIFIER.iterdir()):
            h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()[:16]


def default_cache_dir() -> Path:
    return Path("~/.cache/stream-trf/drift").expanduser()


def save_cache(path: Path, header: dict[str, Any], records: Iterable[Record]) -> None:
    """A header line, then one enriched record per line (gzipped), written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + f".{uuid.uuid4().hex[:6]}.tmp")
    with gzip.open(tmp, "wb", compresslevel=6) as f:
        f.write(orjson.dumps({"_header": header}) + b"\n")
        for rec in records:
            f.write(orjson.dumps(rec, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n")
    tmp.replace(path)


def load_cache(path: Path) -> tuple[dict[str, Any], list[Record]]:
    header: dict[str, Any] = {}
    records: list[Record] = []
    with gzip.open(path, "rb") as f:
        for line in f:
            obj = orjson.loads(line)
            if "_header" in obj:
                header = obj["_header"]
            else:
                records.append(obj)
    return header, records


async def produce_and_collect(
    settings: Settings,
    inputs: Sequence[Record],
    *,
    timeout: float,
    idle_timeout: float | None,
    on_record: Callable[[Record], None] | None = None,
) -> list[Record]:
    """Produce every input record at once, read the output topic until each id came back."""
    from stream_trf.stream import clients

    want = {r["id"] for r in inputs}
    seen: set[str] = set()

    def record(rec: Record) -> None:
        if rec.get("id") in want:
            seen.add(rec["id"])
        if on_record is not None:
            on_record(rec)

    consumer = asyncio.create_task(
        clients.consume(
            settings,
            settings.output_topic,
            until=lambda _: seen >= want,
            timeout=timeout,
            idle_timeout=idle_timeout,
            on_record=record,
        )
    )
    await clients.produce(
        settings,
        settings.input_topic,
        [orjson.dumps(r) for r in inputs],
        [r["id"].encode() for r in inputs],
    )
    out = await consumer
    first: dict[str, Record] = {}
    for rec in out:
        if rec.get("id") in want and rec["id"] not in first:
            first[rec["id"]] = rec
    return list(first.values())


def enrich_through_worker(
    inputs: Sequence[Record],
    *,
    model: str,
    log_dir: Path,
    progress: bool = True,
    overrides: dict[str, Any] | None = None,
) -> tuple[list[Record], dict[str, Any]]:
    """Enrich ``inputs`` with ``stream-trf worker`` on the embedded broker; the enriched
    records (first copy of each id, without the consumer's ``_kafka`` field) and timings."""
    from tqdm import tqdm

    from stream_trf.stream import clients
    from stream_trf.stream.broker import EmbeddedBroker
    from stream_trf.stream.local import WorkerProcess

    log_dir.mkdir(parents=True, exist_ok=True)
    with EmbeddedBroker(log_file=log_dir / "broker.log") as broker:
        settings = bench_settings(broker.url, model, metrics_topic="", **(overrides or {}))
        asyncio.run(clients.ensure_worker_topics(settings))
        worker = WorkerProcess(settings, log_dir / "enrich-worker.log")
        try:
            ready = worker.wait_ready(timeout=600)
            with tqdm(
                total=len(inputs), unit="doc", desc="enrich (worker)", disable=not progress
            ) as bar:
                t0 = time.monotonic()
                out = asyncio.run(
                    produce_and_collect(
                        settings,
                        inputs,
                        timeout=3600,
                        idle_timeout=180,
                        on_record=lambda r: bar.update(1) if "id" in r else None,
                    )
                )
                seconds = time.monotonic() - t0
        finally:
            code = worker.terminate()
    for rec in out:
        rec.pop("_kafka", None)
    info = {
        "documents": len(inputs),
        "enriched": len(out),
        "missing": len(inputs) - len(out),
        "worker_ready_seconds": round(ready, 1),
        "seconds": round(seconds, 1),
        "docs_per_s": round(len(out) / seconds, 2) if seconds > 0 else None,
        "worker_exit_code": code,
        "worker_settings": {
            k: v
            for k, v in settings.public().items()
            if k in ("model", "partitions", "max_batch", "words_per_batch", "precision")
        },
    }
    return out, info


def tmp_log_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="stream-trf-drift-"))
