"""Host-side cost per document: the worker on a near-zero-compute model against the floor.

On a fast device the model is a small part of a document's cost; the rest is Python on the host
(spaCy, the wordpiecer, alignment, pooling, records, Kafka). To see that part alone the worker
runs a model that computes almost nothing: a real BERT directory with the default model's
tokenizer and vocabulary but one layer of width 32. Its CPU per document is set against the
floor, the work no design can avoid, measured here on the same documents after the same
vocabulary warm-up: spaCy's tokenizer and sentencizer (in memory zones, as the worker runs
them), the Rust wordpiece tokenizer on every sentence, and orjson of a record of that width.
The ratio ``worker / floor`` is the figure (issue 29: at most 1.5); the batch processor alone
(no Kafka) splits the excess between the pipeline and the Kafka side.

This host's speed drifts by tens of percent within minutes, so the three are not measured one
after the other: each is set up and warmed up once (the floor and the processor in processes
of their own, ``measure --serve``; the worker through the embedded broker), then the documents
go through them slice by slice (``SLICE``), each system taking each place in the order in turn.
The ratios divide CPU summed over the same slices, and the worker's ratio slice by slice is
given beside it: how much one slice's host speed moves it.

The near-zero model is not free on a CPU: a pass costs about a microsecond per padded
wordpiece (attention and width-32 matrix products, overhead-bound), a fifth of the floor per
document. On a GPU that is the card's time, so each ratio is also given without it
(``*_less_forward_over_floor``): the forward passes' own CPU, timed in the processor run, taken
off (the worker runs the same documents with the same settings).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

WIDTH = 32  # the near-zero model's width
BUFFER = 256  # documents per buffer, as the worker's default --max-batch
SLICE = 2 * BUFFER  # documents each system measures in turn (run_host)


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


def buffers(texts: list[str]) -> list[list[str]]:
    """``texts`` in buffers of ``BUFFER`` documents, as the worker takes them."""
    return [texts[i : i + BUFFER] for i in range(0, len(texts), BUFFER)]


def _read(path: str) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f]


class Floor:
    """The unavoidable work, set up and warmed up once, then measured on any slice of texts:
    spaCy's tokenizer and sentencizer in the worker's memory zones (whose new lexemes carry only
    the attributes the worker reads), the Rust wordpiece tokenizer on every sentence as the
    worker calls it (without character offsets: its records carry none), and orjson of a record
    of the near-zero model's width. spaCy as it ships is timed beside it on the same buffers."""

    def __init__(self, model: str, warmup_file: str, warmup_chars: int) -> None:
        from tokenizers import Tokenizer

        backend = Tokenizer.from_file(str(Path(model) / "tokenizer.json"))
        self.encode = getattr(backend, "encode_batch_fast", backend.encode_batch)
        warmup = _read(warmup_file)
        self.nlp, self.zones = spacy_in_zones(warmup, warmup_chars, lean=True)  # as the worker
        # spaCy as it ships (every lexical attribute of a zone's new words): timed beside the
        # floor, not part of it, for the ratio to the floor as issue 29 first defined it
        self.shipped_nlp, self.shipped_zones = spacy_in_zones(warmup, warmup_chars, lean=False)

    def measure(self, texts: list[str], first: int = 0) -> dict[str, Any]:
        """CPU seconds of the floor's work on ``texts``, by part (``first``: unused, as for
        :class:`Processor`)."""
        import numpy as np
        import orjson
        from spacy.attrs import IDX, LENGTH, SENT_START

        spacy_s = encode_s = orjson_s = shipped_s = 0.0
        vector = np.zeros(WIDTH, dtype=np.float32)
        for k, batch in enumerate(buffers(texts)):
            if k % 2 == 0:  # before the floor's own spaCy on even buffers, after it on odd ones
                shipped_s += self._shipped(batch)
            with self.zones.buffer(sum(map(len, batch))):
                t0 = time.process_time()
                docs = list(self.nlp.pipe(batch))
                spans = []
                for doc in docs:
                    arr = doc.to_array([SENT_START, IDX, LENGTH]).astype(np.int64)
                    starts = np.flatnonzero(arr[:, 0] == 1).tolist() or [0]
                    ends = [*starts[1:], len(doc)]
                    spans.append(
                        [[arr[a, 1], arr[b - 1, 1] + arr[b - 1, 2]] for a, b in zip(starts, ends)]
                    )
                t1 = time.process_time()
                sentences = [
                    text[a:b] for text, doc_spans in zip(batch, spans) for a, b in doc_spans
                ]
                self.encode(sentences, add_special_tokens=True)
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
            if k % 2 == 1:
                shipped_s += self._shipped(batch)
        return {
            "docs": len(texts),
            "cpu_s": spacy_s + encode_s + orjson_s,
            "parts_s": {
                "spacy_tokenizer_and_sentencizer": spacy_s,
                "wordpiece_tokenizer": encode_s,
                "orjson_record": orjson_s,
            },
            "spacy_as_shipped_s": shipped_s,
        }

    def _shipped(self, batch: list[str]) -> float:
        """CPU seconds of spaCy as it ships on ``batch``, in a zone of its own."""
        with self.shipped_zones.buffer(sum(map(len, batch))):
            t0 = time.process_time()
            for _ in self.shipped_nlp.pipe(batch):
                pass
            return time.process_time() - t0


def spacy_in_zones(warmup: list[str], warmup_chars: int, lean: bool) -> tuple[Any, Any]:
    """spaCy's English tokenizer and sentencizer with the worker's zones, after its
    vocabulary warm-up; a zone's new lexemes lean (as the worker's) or not (as spaCy ships)."""
    import spacy

    from stream_trf.stream.zones import BufferZones

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    zones = BufferZones(nlp, warmup_chars, lean_lexemes=lean)
    for batch in buffers(warmup):
        with zones.buffer(sum(map(len, batch))):
            list(nlp.pipe(batch))
    return nlp, zones


def floor(texts: list[str], model: str, warmup_file: str, warmup_chars: int) -> dict[str, Any]:
    """CPU per document of the unavoidable work on ``texts``, in this (single-threaded)
    process."""
    return _floor_summary([Floor(model, warmup_file, warmup_chars).measure(texts)])


def _summed(parts: list[dict[str, Any]], key: str) -> dict[str, float]:
    """The ``key`` dicts of the slices' measurements added up, name by name."""
    total: dict[str, float] = {}
    for part in parts:
        for name, value in part[key].items():
            total[name] = total.get(name, 0.0) + value
    return total


def _floor_summary(parts: list[dict[str, Any]]) -> dict[str, Any]:
    n = sum(p["docs"] for p in parts)
    by_part = _summed(parts, "parts_s")
    cpu_s = sum(p["cpu_s"] for p in parts)
    shipped_s = cpu_s - by_part["spacy_tokenizer_and_sentencizer"]
    shipped_s += sum(p["spacy_as_shipped_s"] for p in parts)
    return {
        "name": "floor (tokenizer, sentencizer, wordpieces, orjson)",
        "docs": n,
        "cpu_ms_per_doc": round(1000 * cpu_s / n, 4),
        "parts_cpu_ms_per_doc": {k: round(1000 * v / n, 4) for k, v in by_part.items()},
        # the floor with spaCy as it ships, every lexical attribute of a zone's new words
        "as_spacy_ships_cpu_ms_per_doc": round(1000 * shipped_s / n, 4),
    }


class Processor:
    """The worker's batch processor alone (worker settings, no Kafka), built and warmed up
    once, then measured on any slice of texts, buffer by buffer as the worker runs it."""

    def __init__(self, model: str, warmup_file: str) -> None:
        from stream_trf.settings import Settings
        from stream_trf.stream.worker import build_processor

        self.proc = build_processor(Settings(model=model))
        self.forward = _time_forward(self.proc.nlp.get_pipe("trf_tok2vec").runner)
        for k, batch in enumerate(buffers(_read(warmup_file))):
            self.proc.process(self._messages(batch, 10**9 + k * BUFFER))

    @staticmethod
    def _messages(batch: list[str], first: int) -> list[Any]:
        import orjson

        from stream_trf.stream.processor import RawMessage
        from stream_trf.stream.records import Source

        return [
            RawMessage(orjson.dumps({"id": str(first + i), "text": t}), Source("in", 0, first + i))
            for i, t in enumerate(batch)
        ]

    def measure(self, texts: list[str], first: int = 0) -> dict[str, Any]:
        """CPU seconds of processing ``texts`` (offsets from ``first``), and of its forward
        passes alone."""
        work = [self._messages(b, first + k * BUFFER) for k, b in enumerate(buffers(texts))]
        self.forward.clear()
        t0, c0 = time.perf_counter(), time.process_time()
        for buffer in work:
            self.proc.process(buffer)
        cpu, wall = time.process_time() - c0, time.perf_counter() - t0
        return {"docs": len(texts), "cpu_s": cpu, "forward_s": sum(self.forward), "wall_s": wall}


def processor(texts: list[str], model: str, warmup_file: str) -> dict[str, Any]:
    """CPU per document of the worker's batch processor alone (no Kafka), worker settings."""
    return _processor_summary([Processor(model, warmup_file).measure(texts)])


def _processor_summary(parts: list[dict[str, Any]]) -> dict[str, Any]:
    n = sum(p["docs"] for p in parts)
    return {
        "name": "batch processor alone (worker settings, no Kafka)",
        "docs": n,
        "cpu_ms_per_doc": round(1000 * sum(p["cpu_s"] for p in parts) / n, 4),
        "forward_cpu_ms_per_doc": round(1000 * sum(p["forward_s"] for p in parts) / n, 4),
        "docs_per_s": round(n / sum(p["wall_s"] for p in parts), 1),
    }


# What ``python -m bench.harness.measure KIND --serve`` keeps in its process between slices.
SERVED = {"floor": Floor, "processor": Processor}


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
    floor_ms: float, processor_ms: float, forward_ms: float, worker_ms: float | None
) -> dict[str, float]:
    """The processor's and the worker's CPU per document over the floor's (all three measured
    on the same slices, interleaved), each also without the forward passes' own CPU (timed in
    the processor)."""
    ratios = {
        "processor_over_floor": round(processor_ms / floor_ms, 3),
        "processor_less_forward_over_floor": round((processor_ms - forward_ms) / floor_ms, 3),
    }
    if worker_ms:
        ratios["worker_over_floor"] = round(worker_ms / floor_ms, 3)
        ratios["worker_less_forward_over_floor"] = round((worker_ms - forward_ms) / floor_ms, 3)
    return ratios


def slices(n: int, size: int = SLICE) -> list[tuple[int, int]]:
    """``[start, stop)`` of consecutive slices of ``n`` documents, ``size`` each (the last may
    be shorter)."""
    if size < 1:
        raise ValueError(f"slice size must be positive, got {size}")
    return [(a, min(a + size, n)) for a in range(0, n, size)]


def rotated(systems: tuple[str, ...], k: int) -> list[str]:
    """The order the systems measure slice ``k`` in: each takes each place in turn, so that a
    host that speeds up or slows down over a slice favours none of them."""
    k %= len(systems)
    return [*systems[k:], *systems[:k]]


def _spread(values: list[float]) -> dict[str, float]:
    return {
        "min": round(min(values), 3),
        "median": round(statistics.median(values), 3),
        "max": round(max(values), 3),
    }


def run_host(
    texts: list[str],
    warmup: list[str],
    *,
    log_dir: Path | None = None,
    slice_docs: int | None = None,
    variants: dict[str, dict[str, str]] | None = None,
) -> dict[str, Any]:
    """The floor, the processor alone and the worker end to end, on the near-zero model and
    the same documents, slice by slice in rotating order (``warmup``: other documents, for the
    vocabulary warm-up of each). ``variants``: more workers, each with its own environment
    added (``{"one lane": {"OMP_NUM_THREADS": "1"}}``), measured in the same rotation: an A/B
    of settings on the same slices. ``slice_docs``: documents a slice (default: ``SLICE``, or
    fewer, down to a buffer, so that there are at least eight slices)."""
    from stream_trf.settings import Settings
    from stream_trf.stream.broker import EmbeddedBroker

    from .measure import SliceServer

    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="stream-trf-host-"))
    model = str(near_zero_model(log_dir / "near-zero-model"))
    texts_file = log_dir / "host-texts.jsonl"
    texts_file.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    warmup_file = log_dir / "host-warmup.jsonl"
    warmup_file.write_text("".join(json.dumps({"text": t}) + "\n" for t in warmup))
    warmup_chars = Settings().memory.vocab_warmup_chars
    worker_envs = {
        "worker": {},
        **{f"worker ({name})": env for name, env in (variants or {}).items()},
    }
    systems = ("floor", "processor", *worker_envs)
    measured: dict[str, list[dict[str, Any]]] = {name: [] for name in systems}
    order: list[list[str]] = []
    with contextlib.ExitStack() as stack:
        servers: dict[str, Any] = {
            "floor": stack.enter_context(
                SliceServer(
                    "floor",
                    texts_file,
                    model,
                    {"warmup_file": str(warmup_file), "warmup_chars": warmup_chars},
                    log_dir / "host-floor.log",
                )
            ),
            "processor": stack.enter_context(
                SliceServer(
                    "processor",
                    texts_file,
                    model,
                    {"warmup_file": str(warmup_file)},
                    log_dir / "host-processor.log",
                )
            ),
        }
        broker = stack.enter_context(EmbeddedBroker(log_file=log_dir / "host-broker.log"))
        for k, (name, env) in enumerate(worker_envs.items()):
            servers[name] = _WorkerUnderTest(
                broker.url, model, env, texts, log_dir / f"host-worker-{k}.log"
            )
            stack.callback(servers[name].close)
        warm = [{"id": f"warm-{i}", "text": t} for i, t in enumerate(warmup)]
        for name in worker_envs:
            servers[name].start(warm)
        size = slice_docs or max(BUFFER, min(SLICE, len(texts) // 8 // BUFFER * BUFFER))
        for k, (a, b) in enumerate(slices(len(texts), size)):
            order.append(rotated(systems, k))
            for name in order[-1]:
                measured[name].append(servers[name].measure(a, b))
    floor_result = _floor_summary(measured["floor"])
    processor_result = _processor_summary(measured["processor"])
    worker_result = _worker_summary(measured["worker"])
    ratios = host_ratios(
        floor_result["cpu_ms_per_doc"],
        processor_result["cpu_ms_per_doc"],
        processor_result["forward_cpu_ms_per_doc"],
        worker_result["cpu_ms_per_doc"],
    )
    ratios["worker_over_floor_as_spacy_ships"] = round(
        worker_result["cpu_ms_per_doc"] / floor_result["as_spacy_ships_cpu_ms_per_doc"], 3
    )
    by_slice = [
        {
            "docs": f["docs"],
            "order": o,
            "floor_cpu_ms_per_doc": round(1000 * f["cpu_s"] / f["docs"], 4),
            "processor_cpu_ms_per_doc": round(1000 * p["cpu_s"] / p["docs"], 4),
            "worker_cpu_ms_per_doc": round(1000 * w["cpu_s"] / w["docs"], 4),
            "worker_over_floor": round(w["cpu_s"] / f["cpu_s"], 3),
        }
        for f, p, w, o in zip(measured["floor"], measured["processor"], measured["worker"], order)
    ]
    result: dict[str, Any] = {
        "name": "host-side cost (near-zero model)",
        "model": f"BERT, 1 layer, width {WIDTH}, the default model's tokenizer and vocabulary",
        "docs": len(texts),
        "warmup_docs": len(warmup),
        "floor": floor_result,
        "processor": processor_result,
        "worker": worker_result,
        "ratios": ratios,
        "slices": by_slice,
        # the worker's ratio slice by slice: how far one slice's host speed moves it
        "worker_over_floor_by_slice": _spread([s["worker_over_floor"] for s in by_slice]),
    }
    if variants:
        result["variants"] = found = {}
        for name, env in variants.items():
            runs = measured[f"worker ({name})"]
            summary = _worker_summary(runs)
            summary["env"] = env
            summary["over_floor"] = round(
                summary["cpu_ms_per_doc"] / floor_result["cpu_ms_per_doc"], 3
            )
            # slice by slice against the worker as configured: a paired comparison
            summary["over_worker_by_slice"] = _spread(
                [v["cpu_s"] / w["cpu_s"] for v, w in zip(runs, measured["worker"])]
            )
            summary["cpu_ms_per_doc_by_slice"] = [
                round(1000 * v["cpu_s"] / v["docs"], 4) for v in runs
            ]
            found[name] = summary
    return result


class _WorkerUnderTest:
    """A worker process on its own topics of the embedded broker, measured a slice at a time:
    its process tree's CPU from producing a slice's documents to the last one enriched."""

    def __init__(
        self, broker_url: str, model: str, env: dict[str, str], texts: list[str], log_file: Path
    ) -> None:
        from .worker import bench_settings

        self.settings = bench_settings(broker_url, model)
        self.env = env
        self.texts = texts
        self.log_file = log_file
        self.process: Any = None

    def start(self, warm: list[dict[str, Any]]) -> None:
        """Start the worker and run the warm-up documents through it."""
        from stream_trf.stream import clients
        from stream_trf.stream.local import WorkerProcess

        from .worker import run_round

        asyncio.run(clients.ensure_worker_topics(self.settings))
        self.process = WorkerProcess(self.settings, self.log_file, extra_env=self.env)
        self.process.wait_ready(timeout=600)
        asyncio.run(run_round(self.settings, warm, None, timeout=1800))

    def measure(self, a: int, b: int) -> dict[str, Any]:
        """The worker's CPU on texts ``[a, b)``, as the slice servers measure theirs."""
        from .machine import process_cpu, thread_cpu, threads_between
        from .worker import run_round

        pid = self.process.pid
        docs = [{"id": f"host-{i}", "text": self.texts[i]} for i in range(a, b)]
        before, threads_before = process_cpu(pid), thread_cpu(pid)
        t0 = time.time()
        out, _ = asyncio.run(run_round(self.settings, docs, None, timeout=1800))
        after, threads_after = process_cpu(pid), thread_cpu(pid)
        if before is None or after is None:
            raise RuntimeError(f"the worker's CPU could not be read (/proc/{pid})")
        user = after["user_s"] - before["user_s"]
        kernel = after["kernel_s"] - before["kernel_s"]
        return {
            "docs": len(docs),
            "enriched": len({r["id"] for r in out}),
            "cpu_s": user + kernel,
            "user_s": user,
            "kernel_s": kernel,
            "minor_faults": after["minor_faults"] - before["minor_faults"],
            # CPU-ms by thread role over the slice (docs=1: totals, summed over slices)
            "threads_ms": threads_between(threads_before, threads_after, user + kernel, 1),
            "wall_s": max(r["_kafka"]["received_ms"] for r in out) / 1000 - t0,
        }

    def close(self) -> None:
        if self.process is not None:
            self.process.terminate()


def _worker_summary(parts: list[dict[str, Any]]) -> dict[str, Any]:
    n = sum(p["docs"] for p in parts)
    user = sum(p["user_s"] for p in parts)
    kernel = sum(p["kernel_s"] for p in parts)
    roles = _summed(parts, "threads_ms")
    return {
        "name": "worker end to end (near-zero model)",
        "docs": n,
        "enriched": sum(p["enriched"] for p in parts),
        "docs_per_s": round(n / sum(p["wall_s"] for p in parts), 1),
        "worker_cpu": {
            "user_s": round(user, 2),
            "kernel_s": round(kernel, 2),
            "kernel_share": round(kernel / (user + kernel), 4) if user + kernel > 0 else 0.0,
            "cpu_ms_per_doc": round(1000 * (user + kernel) / n, 2),
            "minor_faults_per_doc": round(sum(p["minor_faults"] for p in parts) / n, 1),
        },
        "cpu_ms_per_doc": round(1000 * (user + kernel) / n, 4),
        # by thread: where the worker's CPU went (the prefetch threads end with each buffer)
        "threads_cpu_ms_per_doc": {k: round(v / n, 4) for k, v in sorted(roles.items())},
    }
