"""Host-side cost per document: the worker on a near-zero-compute model against the floor.

On a fast device the model is a small part of a document's cost; the rest is Python on the host
(spaCy, the wordpiecer, alignment, pooling, records, Kafka). To see that part alone the worker
runs a model that computes almost nothing: a real BERT directory with the default model's
tokenizer and vocabulary but one layer of width 32. Its CPU per document is set against the
floor, the work no design can avoid, measured here on the same documents after the same
vocabulary warm-up: spaCy's tokenizer and sentencizer (in memory zones, as the worker runs
them), the Rust wordpiece tokenizer on every sentence, and orjson of a record of that width.
The ratio ``worker / floor`` is the figure (issue 29: at most 1.5); the batch processor alone
(no Kafka) splits the excess between the pipeline and the Kafka side. The floor is measured
before the processor and again after the worker; the worker's ratio divides by the mean of the
two, as this host's speed drifts within minutes.

The near-zero model is not free on a CPU: a pass costs about a microsecond per padded
wordpiece (attention and width-32 matrix products, overhead-bound), a fifth of the floor per
document. On a GPU that is the card's time, so each ratio is also given without it
(``*_less_forward_over_floor``): the forward passes' own CPU, timed in the processor run, taken
off (the worker runs the same documents with the same settings).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

WIDTH = 32  # the near-zero model's width
BUFFER = 256  # documents per buffer, as the worker's default --max-batch


def near_zero_model(out: Path) -> Path:
    """A one-layer, width-32 BERT with the default model's tokenizer and vocabulary (random
    weights, seeded): the worker does all its host-side work and almost no model work."""
    import torch
    from transformers import BertConfig, BertModel

    from stream_trf.model.source import DEFAULT_MODEL, resolve_model_dir

    source = resolve_model_dir(DEFAULT_MODEL)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (source / name).exists():
            shutil.copy(source / name, out / name)
    vocab = json.loads((source / "config.json").read_text())["vocab_size"]
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=vocab,
        hidden_size=WIDTH,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=2 * WIDTH,
        max_position_embeddings=512,
    )
    BertModel(config).save_pretrained(out)
    return out


def _buffers(texts: list[str]) -> list[list[str]]:
    return [texts[i : i + BUFFER] for i in range(0, len(texts), BUFFER)]


def _read(path: str) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f]


def floor(texts: list[str], model: str, warmup_file: str, warmup_chars: int) -> dict[str, Any]:
    """CPU per document of the unavoidable work, in this (single-threaded) process."""
    import numpy as np
    import orjson
    import spacy
    from spacy.attrs import IDX, LENGTH, SENT_START
    from tokenizers import Tokenizer

    from stream_trf.stream.zones import BufferZones

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    wordpieces = Tokenizer.from_file(str(Path(model) / "tokenizer.json"))
    zones = BufferZones(nlp, warmup_chars)
    for batch in _buffers(
        _read(warmup_file)
    ):  # the worker's vocabulary warm-up, outside the timing
        with zones.buffer(sum(map(len, batch))):
            list(nlp.pipe(batch))
    spacy_s = encode_s = orjson_s = 0.0
    vector = np.zeros(WIDTH, dtype=np.float32)
    for batch in _buffers(texts):
        with zones.buffer(sum(map(len, batch))):
            t0 = time.process_time()
            docs = list(nlp.pipe(batch))
            spans = []
            for doc in docs:
                arr = doc.to_array([SENT_START, IDX, LENGTH]).astype(np.int64)
                starts = np.flatnonzero(arr[:, 0] == 1).tolist() or [0]
                ends = [*starts[1:], len(doc)]
                spans.append(
                    [[arr[a, 1], arr[b - 1, 1] + arr[b - 1, 2]] for a, b in zip(starts, ends)]
                )
            t1 = time.process_time()
            sentences = [text[a:b] for text, doc_spans in zip(batch, spans) for a, b in doc_spans]
            wordpieces.encode_batch(sentences, add_special_tokens=True)
            t2 = time.process_time()
            for i, doc_spans in enumerate(spans):
                orjson.dumps(
                    {
                        "schema": "stream_trf/enriched/v1",
                        "id": str(i),
                        "meta": None,
                        "model": {"name": "near-zero", "version": "0"},
                        "source": {"topic": "in", "partition": 0, "offset": i},
                        "sentences": [[int(a), int(b)] for a, b in doc_spans],
                        "n_tokens": 0,
                        "n_words": 0,
                        "n_wordpieces": 0,
                        "windowed_wordpieces": 0,
                        "doc_vector": vector,
                    },
                    option=orjson.OPT_SERIALIZE_NUMPY,
                )
            t3 = time.process_time()
        spacy_s += t1 - t0
        encode_s += t2 - t1
        orjson_s += t3 - t2
    n = len(texts)
    total = spacy_s + encode_s + orjson_s
    return {
        "name": "floor (tokenizer, sentencizer, wordpieces, orjson)",
        "docs": n,
        "cpu_ms_per_doc": round(1000 * total / n, 4),
        "parts_cpu_ms_per_doc": {
            "spacy_tokenizer_and_sentencizer": round(1000 * spacy_s / n, 4),
            "wordpiece_tokenizer": round(1000 * encode_s / n, 4),
            "orjson_record": round(1000 * orjson_s / n, 4),
        },
    }


def processor(texts: list[str], model: str, warmup_file: str) -> dict[str, Any]:
    """CPU per document of the worker's batch processor alone (no Kafka), worker settings."""
    import orjson

    from stream_trf.settings import Settings
    from stream_trf.stream.processor import RawMessage
    from stream_trf.stream.records import Source
    from stream_trf.stream.worker import build_processor

    proc = build_processor(Settings(model=model))
    forward = _time_forward(proc.nlp.get_pipe("trf_tok2vec").runner)

    def messages(batch: list[str], first: int) -> list[RawMessage]:
        return [
            RawMessage(orjson.dumps({"id": str(first + i), "text": t}), Source("in", 0, first + i))
            for i, t in enumerate(batch)
        ]

    for k, batch in enumerate(_buffers(_read(warmup_file))):
        proc.process(messages(batch, 10**9 + k * BUFFER))
    work = [messages(b, k * BUFFER) for k, b in enumerate(_buffers(texts))]
    forward.clear()
    t0, c0 = time.perf_counter(), time.process_time()
    for buffer in work:
        proc.process(buffer)
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    return {
        "name": "batch processor alone (worker settings, no Kafka)",
        "docs": len(texts),
        "cpu_ms_per_doc": round(1000 * cpu / len(texts), 4),
        "forward_cpu_ms_per_doc": round(1000 * sum(forward) / len(texts), 4),
        "docs_per_s": round(len(texts) / wall, 1),
    }


def _time_forward(runner: Any) -> list[float]:
    """Thread CPU of every forward pass of ``runner`` from now on (the lanes run each pass on
    one thread with one intra-op thread): the model's own compute, which on a GPU is the
    card's, not the host's. A traced runner's pooled passes (the reduction traced onto the
    encoder, model/traced.py) count whole: the reduction is a few small kernels of it."""
    spent: list[float] = []

    def timed(run: Any) -> Any:
        def call(inputs: Any) -> Any:
            start = time.thread_time()
            try:
                return run(inputs)
            finally:
                spent.append(time.thread_time() - start)  # list.append is atomic under the GIL

        return call

    runner.infer = timed(runner.infer)
    if runner.traced is not None and hasattr(runner.traced, "pooled"):
        runner.traced.pooled = timed(runner.traced.pooled)
    return spent


def host_ratios(
    floor_before_ms: float,
    floor_after_ms: float,
    processor_ms: float,
    forward_ms: float,
    worker_ms: float | None,
) -> dict[str, float]:
    """The ratios to the floor: the processor's to the floor measured just before it, the
    worker's to the mean of the floors measured before and after it; each also without the
    forward passes' own CPU (timed in the processor run)."""
    ratios = {
        "processor_over_floor": round(processor_ms / floor_before_ms, 3),
        "processor_less_forward_over_floor": round(
            (processor_ms - forward_ms) / floor_before_ms, 3
        ),
    }
    if worker_ms:
        floor_ms = (floor_before_ms + floor_after_ms) / 2
        ratios["worker_over_floor"] = round(worker_ms / floor_ms, 3)
        ratios["worker_less_forward_over_floor"] = round((worker_ms - forward_ms) / floor_ms, 3)
    return ratios


def run_host(texts: list[str], warmup: list[str], *, log_dir: Path | None = None) -> dict[str, Any]:
    """The floor, the processor alone and the worker end to end, on the near-zero model and
    the same documents (``warmup``: others, for the vocabulary warm-up of each)."""
    from stream_trf.settings import Settings
    from stream_trf.stream import clients
    from stream_trf.stream.broker import EmbeddedBroker
    from stream_trf.stream.local import WorkerProcess

    from .machine import cpu_between, process_cpu, thread_cpu, threads_between
    from .measure import run_measurement
    from .worker import bench_settings, run_round

    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="stream-trf-host-"))
    model = str(near_zero_model(log_dir / "near-zero-model"))
    texts_file = log_dir / "host-texts.jsonl"
    texts_file.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    warmup_file = log_dir / "host-warmup.jsonl"
    warmup_file.write_text("".join(json.dumps({"text": t}) + "\n" for t in warmup))
    warmup_chars = Settings().memory.vocab_warmup_chars
    base = {"warmup_file": str(warmup_file)}
    floor_result = run_measurement(
        "floor", texts_file, model, {**base, "warmup_chars": warmup_chars}
    )
    processor_result = run_measurement("processor", texts_file, model, base)
    with EmbeddedBroker(log_file=log_dir / "host-broker.log") as broker:
        settings = bench_settings(broker.url, model)
        asyncio.run(clients.ensure_worker_topics(settings))
        worker = WorkerProcess(settings, log_dir / "host-worker.log")
        try:
            worker.wait_ready(timeout=600)
            warm = [{"id": f"warm-{i}", "text": t} for i, t in enumerate(warmup)]
            asyncio.run(run_round(settings, warm, None, timeout=1800))
            docs = [{"id": f"host-{i}", "text": t} for i, t in enumerate(texts)]
            before, threads_before = process_cpu(worker.pid), thread_cpu(worker.pid)
            t0 = time.time()
            out, _ = asyncio.run(run_round(settings, docs, None, timeout=1800))
            after, threads_after = process_cpu(worker.pid), thread_cpu(worker.pid)
            cpu = cpu_between(before, after, len(docs))
            threads = (
                threads_between(
                    threads_before,
                    threads_after,
                    after["user_s"] + after["kernel_s"] - before["user_s"] - before["kernel_s"],
                    len(docs),
                )
                if before and after
                else None
            )
            seconds = max(r["_kafka"]["received_ms"] for r in out) / 1000 - t0
        finally:
            worker.terminate()
    # the floor again, right after the worker: the worker's ratio divides by the mean of the
    # floors measured either side of it (this host's speed drifts within minutes)
    floor_after = run_measurement(
        "floor", texts_file, model, {**base, "warmup_chars": warmup_chars}
    )
    worker_result = {
        "name": "worker end to end (near-zero model)",
        "docs": len(docs),
        "enriched": len({r["id"] for r in out}),
        "docs_per_s": round(len(docs) / seconds, 1),
        "worker_cpu": cpu,
        "cpu_ms_per_doc": cpu["cpu_ms_per_doc"] if cpu else None,
        # by thread: where the worker's CPU went (the prefetch threads end with each buffer)
        "threads_cpu_ms_per_doc": threads,
    }
    ratios = host_ratios(
        floor_result["cpu_ms_per_doc"],
        floor_after["cpu_ms_per_doc"],
        processor_result["cpu_ms_per_doc"],
        processor_result.get("forward_cpu_ms_per_doc", 0.0),
        worker_result["cpu_ms_per_doc"],
    )
    return {
        "name": "host-side cost (near-zero model)",
        "model": f"BERT, 1 layer, width {WIDTH}, the default model's tokenizer and vocabulary",
        "docs": len(texts),
        "warmup_docs": len(warmup),
        "floor": floor_result,
        "floor_after_worker": floor_after,
        "processor": processor_result,
        "worker": worker_result,
        "ratios": ratios,
    }
