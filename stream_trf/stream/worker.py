"""One worker process: wait for the broker, set up its memory, load the model with the worker's
overrides, run the faust app. (Several processes: stream/supervisor.py starts this in each.)"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import auto
from ..model.gpu import resolve_device
from ..settings import Settings
from .collector import collect_young_objects_less_often, freeze_survivors
from .enrich import HeavyFields, ModelInfo
from .kafka import wait_for_broker
from .memory import FreedHeap, ReleaseEvery, configure_allocator
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


def worker_words_per_batch(setting: int, device_type: str, width: int | None = None) -> int:
    """The worker's sub-batch size: the setting, or for 0 the worker's auto on that device for
    a model ``width`` wide."""
    return setting or auto.words_per_batch(device_type, "worker", width)


def worker_release_every(setting: int, device_type: str, width: int | None = None) -> int | None:
    """Wordpieces between two hand-backs of freed heap on the lanes (``--release-every``), or
    for 0 the auto on that device; None (-1): after each buffer only."""
    if setting < 0:
        return None
    return setting or auto.release_every(device_type, width)


def configured_width(settings: Settings) -> int | None:
    """The width of the model the settings name, from its config.json, before it is loaded (the
    autos scale with it); None where it cannot be read (loading the model then says why)."""
    from ..errors import ModelNotFound
    from ..model.source import model_width, resolve_model_dir

    try:
        return model_width(resolve_model_dir(settings.transformer.model))
    except ModelNotFound:  # load() reports it, with what to do
        return None


def model_overrides(settings: Settings, device_type: str) -> dict[str, Any]:
    """What the worker asks of ``stream_trf.load`` for a model on ``device_type``: its own
    sub-batch size where the setting is auto and its own cost of a pass for the sub-batch cuts
    (``stream_trf.auto``: both scale with a narrow model's width on a CPU), token rows only when
    records carry them. Doc vectors and classes need only per-sentence sums and class-token
    rows, which the lanes reduce as they go (``outputs="pooled"``), so a buffer's wordpiece rows
    and ``doc.tensor`` arrays are never held; nor, unless records carry tokens or wordpieces,
    the pieces' character offsets the alignment is computed from (``alignment=False``)."""
    model = settings.transformer
    rows = settings.records.emit_tokens
    width = configured_width(settings)
    return {
        "alignment": rows or settings.records.emit_wordpieces,
        "words_per_batch": worker_words_per_batch(model.words_per_batch, device_type, width),
        "batch_cost": auto.batch_cost(device_type, "worker", width),
        "precision": model.precision,
        "packing": model.packing,
        "trace": model.trace,
        "doc_tensor": rows,
        "outputs": "rows" if rows else "pooled",
    }


def build_processor(settings: Settings) -> BatchProcessor:
    import stream_trf

    from .app import worker_name

    # The device load() will put the model on: the worker never sets one, so "auto".
    device_type = resolve_device("auto").type
    nlp = stream_trf.load(settings.transformer.model, **model_overrides(settings, device_type))
    width = nlp.get_pipe("trf_tok2vec").runner.width or None
    every = worker_release_every(settings.memory.release_every, device_type, width)
    heap = FreedHeap(keep=int(settings.memory.keep_free_mb * 2**20))
    # A process's business, not the component's config: the hook the lanes call.
    nlp.get_pipe("trf_tok2vec").after_sub_batch = (
        ReleaseEvery(every, heap.if_grown) if every is not None else None
    )
    records = settings.records
    return BatchProcessor(
        nlp,
        model_info(nlp, settings.transformer.model),
        max_text_chars=records.max_text_chars,
        heavy=HeavyFields(
            tokens=records.emit_tokens,
            wordpieces=records.emit_wordpieces,
            vector_encoding=records.vector_encoding,
        ),
        worker=worker_name(),
        batch_size=settings.batching.max_batch,
        vocab_warmup_chars=settings.memory.vocab_warmup_chars,
        on_warmup_done=lambda: freeze_survivors("vocabulary warm-up done"),
        release=heap.if_grown,
    )


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.operations.log_level.upper().replace("WARN", "WARNING"),
        format="[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s",
    )


def say_ready(what: str) -> None:
    sys.stderr.write(f"{READY_LINE} ({what})\n")
    sys.stderr.flush()


def run_worker(settings: Settings, on_ready: Callable[[], None] | None = None) -> int:
    """Run one worker until SIGTERM/SIGINT. Returns the process exit code.

    ``on_ready`` is called once it has its partitions (default: say so on stderr)."""

    from .app import build_app

    configure_logging(settings)
    log.info("settings: %s", settings.public())
    # One event loop for the whole process: the broker probe, then faust.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(wait_for_broker(settings))
    # before the model loads: torch reads its huge-page switch at its first allocation
    memory = settings.memory
    allocator = configure_allocator(
        memory.mmap_threshold_mb,
        memory.huge_pages,
        onednn_cache=memory.onednn_cache if memory.onednn_cache >= 0 else None,
    )
    log.info("memory: %s", allocator.describe())
    processor = build_processor(settings)
    log.info("model %s %s loaded", processor.model.name, processor.model.version)
    app = build_app(settings, processor)
    freeze_survivors("model loaded")
    collect_young_objects_less_often()
    ready = on_ready or (lambda: say_ready(f"group {settings.topics.group_id}"))
    worker = faust_worker(app, settings.operations.log_level, ready)
    worker.execute_from_commandline()
    return 0


def faust_worker(app: Any, log_level: str, ready: Callable[[], None]) -> Any:
    """faust's worker for ``app``, which calls ``ready`` once it has its partitions."""
    import faust

    class Worker(faust.Worker):
        async def on_startup_finished(self) -> None:
            await super().on_startup_finished()
            ready()

        def _setup_spinner_handler(self, logger: Any, level: int) -> None:
            """No terminal spinner: at a log level of warn or above faust's spinner sets the
            root logger to DEBUG, so every debug line of aiokafka and faust (several per
            record) was built and then dropped."""

    return Worker(app, loglevel=log_level, quiet=True, redirect_stdouts=False)
