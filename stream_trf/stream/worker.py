"""Starting and running a worker: wait for the broker, load the model, run the faust app."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..settings import Settings
from .enrich import HeavyFields, ModelInfo
from .kafka import wait_for_broker
from .memory import ReleaseEvery, configure_allocator
from .processor import BatchProcessor

log = logging.getLogger("stream_trf.worker")

# Written to stderr once the worker has its partitions, whatever the log level: what the demo,
# the benchmarks and the tests wait for.
READY_LINE = "stream-trf worker ready"


def model_info(nlp: Any, name: str) -> ModelInfo:
    """The model's name and a version that changes whenever its weights do."""
    runner = nlp.get_pipe("trf_tok2vec").runner
    digest = hashlib.sha256()
    for f in sorted(Path(runner.model_dir).glob("*.safetensors")) + sorted(
        Path(runner.model_dir).glob("*.bin")
    ):
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):
                digest.update(chunk)
    version = nlp.meta.get("version") or "0.0.0"
    return ModelInfo(name=Path(name).name or name, version=f"{version}+{digest.hexdigest()[:12]}")


# words_per_batch = 0 ("auto") in the worker. On a CPU 500, half the library's: in the worker
# (saturated, 3 rounds alternating, bench/results/worker-words-per-batch-ab-cpu.json) it ran
# 54.4 / 56.0 / 54.2 docs/s at 33.0 / 32.0 / 33.0 CPU-ms per doc against 53.5 / 53.2 / 49.6 at
# 33.6 / 33.7 / 35.9 with 1,000, and a 256-doc buffer's working set is ~12 MB smaller (97 MB
# over its base against 109, bench/results/buffer-working-set*-cpu.json): smaller activations, the same
# padding. (The library's own sweeps split 2-2 between 500 and 1,000; its auto stays.) On a GPU smaller
# than the library's 32,000: a buffer (≤ 256 docs) is about 27,000 wordpieces, so 32,000 makes
# it one forward pass while 4 processes share the card; on an H100 that gave p99 2.41 s at half
# load (83.8k words/s), where 8,000 had given 0.72 s (95.9k words/s; runs of 16,000 and 4,000
# docs, bench/results/throughput-nvidia-h100-80gb-hbm3*.json).
WORKER_AUTO_WORDS_PER_BATCH = {"cpu": 500, "cuda": 8000}


def worker_words_per_batch(setting: int, device_type: str) -> int:
    """The worker's sub-batch size: the setting, or for 0 the worker's auto on that device."""
    return setting or WORKER_AUTO_WORDS_PER_BATCH.get(
        device_type, WORKER_AUTO_WORDS_PER_BATCH["cpu"]
    )


def worker_release_every(setting: int, device_type: str) -> int | None:
    """Wordpieces between two hand-backs of freed heap on the lanes (``--release-every``);
    None: after each buffer only. Auto: every 8 of the worker's auto sub-batches (on a CPU
    4,000: the 256- vs 16-doc buffer RSS step 18 MB against 35-37 at per-buffer trimming, at
    the same speed, bench/results/lane-release-ab-cpu.json)."""
    if setting < 0:
        return None
    if setting > 0:
        return setting
    return 8 * worker_words_per_batch(0, device_type)


def build_processor(settings: Settings) -> BatchProcessor:
    import stream_trf

    from .app import worker_name

    nlp = stream_trf.load(
        settings.model,
        words_per_batch=settings.words_per_batch,
        precision=settings.precision,
        packing=settings.packing,
        trace=settings.trace,
    )
    tok2vec = nlp.get_pipe("trf_tok2vec")
    tok2vec.cfg["words_per_batch"] = worker_words_per_batch(
        settings.words_per_batch, tok2vec.runner.device.type
    )
    # Token rows only when records carry them: doc vectors and classes need only per-sentence
    # sums and class-token rows, which the lanes reduce as they go (outputs="pooled"): a full
    # buffer's wordpiece rows (~38 MB at 256 docs) and doc.tensor arrays (~28 MB) are never held.
    tok2vec.cfg["doc_tensor"] = settings.emit_tokens
    tok2vec.cfg["outputs"] = "rows" if settings.emit_tokens else "pooled"
    every = worker_release_every(settings.release_every, tok2vec.runner.device.type)
    tok2vec.after_sub_batch = ReleaseEvery(every) if every is not None else None
    return BatchProcessor(
        nlp,
        model_info(nlp, settings.model),
        max_text_chars=settings.max_text_chars,
        heavy=HeavyFields(
            tokens=settings.emit_tokens,
            wordpieces=settings.emit_wordpieces,
            vector_encoding=settings.vector_encoding,
        ),
        worker=worker_name(),
        batch_size=settings.max_batch,
        vocab_warmup_chars=settings.vocab_warmup_chars,
    )


def _configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper().replace("WARN", "WARNING"),
        format="[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s",
    )


def _say_ready(what: str) -> None:
    sys.stderr.write(f"{READY_LINE} ({what})\n")
    sys.stderr.flush()


def run(settings: Settings) -> int:
    """``stream-trf worker``: one worker, or several worker processes under a supervisor
    (``settings.processes``, stream/supervisor.py). Runs until SIGTERM/SIGINT."""
    from .supervisor import Supervisor, resolve_processes, threads_per_process

    n = resolve_processes(settings)
    if n == 1:
        return run_worker(settings)
    _configure_logging(settings)
    log.info(
        "%d worker processes of %d thread(s) each in group %s",
        n,
        threads_per_process(n),
        settings.group_id,
    )
    supervisor = Supervisor(settings, n)
    return supervisor.run(on_ready=lambda: _say_ready(f"group {settings.group_id}, {n} processes"))


def run_worker(settings: Settings, on_ready: Callable[[], None] | None = None) -> int:
    """Run one worker until SIGTERM/SIGINT. Returns the process exit code.

    ``on_ready`` is called once it has its partitions (default: say so on stderr)."""
    import faust

    from .app import build_app

    _configure_logging(settings)
    log.info("settings: %s", settings.public())
    # One event loop for the whole process: the broker probe, then faust.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(wait_for_broker(settings))
    # before the model loads: torch reads its huge-page switch at its first allocation
    allocator = configure_allocator(
        settings.mmap_threshold_mb,
        settings.huge_pages,
        onednn_cache=settings.onednn_cache if settings.onednn_cache >= 0 else None,
    )
    log.info("memory: %s", allocator.describe())
    processor = build_processor(settings)
    log.info("model %s %s loaded", processor.model.name, processor.model.version)
    app = build_app(settings, processor)
    ready = on_ready or (lambda: _say_ready(f"group {settings.group_id}"))

    class Worker(faust.Worker):
        async def on_startup_finished(self) -> None:
            await super().on_startup_finished()
            ready()

    worker = Worker(app, loglevel=settings.log_level, quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()
    return 0
