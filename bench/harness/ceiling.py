"""The compute ceiling: the bare model on perfectly packed batches of the same wordpieces.

No tokenization, no alignment, no padding: all wordpieces of the benchmark's sentences (boundary
tokens included) are laid end to end and cut into full rows. This is the most the model itself
can do on this machine with these many wordpieces; every other figure is a share of it.
Row length matters (attention is quadratic in it) and so does the batch shape, so several are
measured; so is the way the model uses the cores (all threads on one pass, or single-threaded
lanes side by side: stream_trf/model/lanes.py), and the graph that runs it (the eager model, or
its TorchScript trace: stream_trf/model/traced.py). The best is the ceiling: a library that runs
traced is compared with the bare model at its best, traced or not.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def packed_rows(sequences: Sequence[np.ndarray], row_length: int) -> np.ndarray:
    """All ids end to end, cut into full rows of ``row_length`` (the remainder is dropped)."""
    stream = np.concatenate([np.asarray(s, dtype=np.int64) for s in sequences])
    n_rows = len(stream) // row_length
    return stream[: n_rows * row_length].reshape(n_rows, row_length)


GRAPHS = ("eager", "traced")


class _Traced:
    """The traced encoder called like the model (``input_ids=``, ``attention_mask=``)."""

    def __init__(self, traced: Any) -> None:
        self.traced = traced

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> Any:
        return self.traced({"input_ids": input_ids, "attention_mask": attention_mask})


def ceiling_model(runner: Any, graph: str) -> Any:
    """What the ceiling times for ``graph``: the runner's eager model or its trace."""
    if graph == "eager":
        return runner.model
    if graph == "traced" and runner.traced is not None:
        return _Traced(runner.traced)
    raise ValueError(f"no {graph!r} graph for this model (graphs: {GRAPHS})")


def _run_lane(model: Any, batches: list[tuple[torch.Tensor, torch.Tensor]], threads: int) -> None:
    torch.set_num_threads(threads)
    with torch.inference_mode():
        for ids, mask in batches:
            model(input_ids=ids, attention_mask=mask)


def measure_packed(
    model: Any,
    device: torch.device,
    rows: np.ndarray,
    rows_per_batch: int,
    lanes: int = 1,
) -> float:
    """Seconds for the model over ``rows`` in batches of ``rows_per_batch`` (after a warm-up),
    on ``lanes`` threads at once that share PyTorch's threads (stream_trf/model/lanes.py)."""
    batches = [
        torch.from_numpy(rows[i : i + rows_per_batch]).to(device)
        for i in range(0, len(rows), rows_per_batch)
    ]
    work = [(b, torch.ones_like(b)) for b in batches]
    threads = max(1, torch.get_num_threads() // lanes)
    _run_lane(model, work[:1], torch.get_num_threads())  # warm-up
    _sync(device)
    if lanes == 1:
        t0 = time.perf_counter()
        _run_lane(model, work, torch.get_num_threads())
        _sync(device)
        return time.perf_counter() - t0
    pool = [
        threading.Thread(target=_run_lane, args=(model, work[k::lanes], threads))
        for k in range(lanes)
    ]
    t0 = time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    _sync(device)
    return time.perf_counter() - t0


def packed_ceiling(
    model_dir: Path,
    sequences: Sequence[np.ndarray],
    *,
    row_lengths: Sequence[int] = (32, 64, 128),
    tokens_per_batch: Sequence[int] | None = None,
    max_tokens: int | None = None,
    engines: Sequence[int] | None = None,
    graphs: Sequence[str] | None = None,
    device: str = "auto",
) -> dict[str, Any]:
    """The bare model's wordpieces/s on packed rows: every shape on a sample of ``max_tokens``
    wordpieces, for each engine (1 = one forward pass at a time on all of PyTorch's threads;
    k > 1 = k lanes of single-threaded passes at once); then the best shape of each engine
    again on every wordpiece, once per graph (``eager``, and ``traced`` where the model traces;
    shapes are swept with the first of ``graphs``). The ceiling is the best of those full runs:
    picking the best of many short noisy runs would flatter it, a fresh long run does not.

    Batch sizes default by device: 1k-4k wordpieces saturate a CPU; a GPU needs far bigger
    passes before kernel launches stop dominating, so it tries up to 64k.
    """
    from stream_trf.model.lanes import resolve_lanes
    from stream_trf.model.runner import TransformerRunner

    runner = TransformerRunner(model_dir, device=device)
    gpu = runner.device.type == "cuda"
    if tokens_per_batch is None:
        tokens_per_batch = (4096, 16384, 65536) if gpu else (1024, 2048, 4096)
    if max_tokens is None:
        max_tokens = 300_000 if gpu else 20_000
    if engines is None:
        engines = sorted({1, resolve_lanes(0, runner.device)})
    if graphs is None:
        graphs = ("traced", "eager") if runner.traced is not None else ("eager",)
    sweep_model = ceiling_model(runner, graphs[0])
    shapes = []
    full = []
    for lanes in engines:
        best: dict[str, Any] | None = None
        for length in [n for n in row_lengths if n <= runner.max_length] or [runner.max_length]:
            rows = packed_rows(sequences, length)
            sample = rows[: max(1, max_tokens // length)]
            for tokens in tokens_per_batch:
                per_batch = max(1, tokens // length)
                if per_batch * lanes > len(sample):
                    continue
                seconds = measure_packed(sweep_model, runner.device, sample, per_batch, lanes)
                shape = {
                    "graph": graphs[0],
                    "lanes": lanes,
                    "row_length": length,
                    "rows_per_batch": per_batch,
                    "wordpieces": int(sample.size),
                    "seconds": round(seconds, 3),
                    "wordpieces_per_s": round(sample.size / seconds, 1),
                }
                shapes.append(shape)
                if best is None or shape["wordpieces_per_s"] > best["wordpieces_per_s"]:
                    best = shape
        if best is None:
            continue
        rows = packed_rows(sequences, best["row_length"])
        for graph in graphs:
            seconds = measure_packed(
                ceiling_model(runner, graph),
                runner.device,
                rows,
                best["rows_per_batch"],
                best["lanes"],
            )
            full.append(
                {
                    **best,
                    "graph": graph,
                    "wordpieces": int(rows.size),
                    "seconds": round(seconds, 3),
                    "wordpieces_per_s": round(rows.size / seconds, 1),
                }
            )
    top = max(full, key=lambda s: s["wordpieces_per_s"])
    return {
        "name": "ceiling (bare model, packed)",
        "wordpieces_per_s": top["wordpieces_per_s"],
        "best_shape": {k: top[k] for k in ("graph", "lanes", "row_length", "rows_per_batch")},
        "padding_efficiency": 1.0,
        # every wordpiece of the benchmark's sentences once, boundary tokens included
        "corpus_wordpieces": int(sum(len(s) for s in sequences)),
        "engines": full,
        "shapes": shapes,
    }
