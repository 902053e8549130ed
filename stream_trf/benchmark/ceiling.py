"""The compute ceiling: the bare model on perfectly packed batches of the same wordpieces.

No tokenization, no alignment, no padding: all wordpieces of the benchmark's sentences (boundary
tokens included) are laid end to end and cut into full rows. This is the most the model itself
can do on this machine with these many wordpieces; every other figure is a share of it.
Row length matters (attention is quadratic in it) and so does the batch shape, so several are
measured and the best one is the ceiling.
"""

from __future__ import annotations

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


def measure_packed(
    model: Any,
    device: torch.device,
    rows: np.ndarray,
    rows_per_batch: int,
) -> float:
    """Seconds for the model over ``rows`` in batches of ``rows_per_batch`` (after a warm-up)."""
    batches = [
        torch.from_numpy(rows[i : i + rows_per_batch]).to(device)
        for i in range(0, len(rows), rows_per_batch)
    ]
    masks = [torch.ones_like(b) for b in batches]
    with torch.inference_mode():
        model(input_ids=batches[0], attention_mask=masks[0])
        _sync(device)
        t0 = time.perf_counter()
        for ids, mask in zip(batches, masks):
            model(input_ids=ids, attention_mask=mask)
        _sync(device)
    return time.perf_counter() - t0


def packed_ceiling(
    model_dir: Path,
    sequences: Sequence[np.ndarray],
    *,
    row_lengths: Sequence[int] = (32, 64, 128),
    tokens_per_batch: Sequence[int] = (1024, 2048, 4096),
    max_tokens: int = 40_000,
    device: str = "auto",
) -> dict[str, Any]:
    """The best wordpieces/s of the bare model over packed shapes, and every shape's figure.

    ``max_tokens`` bounds the wordpieces timed per shape (a sample of the same stream), so that
    a sweep of shapes stays short on a CPU.
    """
    from ..model.runner import TransformerRunner

    runner = TransformerRunner(model_dir, device=device)
    shapes = []
    for length in [n for n in row_lengths if n <= runner.max_length] or [runner.max_length]:
        rows = packed_rows(sequences, length)
        rows = rows[: max(1, max_tokens // length)]
        for tokens in tokens_per_batch:
            per_batch = max(1, tokens // length)
            if per_batch > len(rows):
                continue
            seconds = measure_packed(runner.model, runner.device, rows, per_batch)
            shapes.append(
                {
                    "row_length": length,
                    "rows_per_batch": per_batch,
                    "wordpieces": int(rows.size),
                    "seconds": round(seconds, 3),
                    "wordpieces_per_s": round(rows.size / seconds, 1),
                }
            )
    best = max(shapes, key=lambda s: s["wordpieces_per_s"])
    return {
        "name": "ceiling (bare model, packed)",
        "wordpieces_per_s": best["wordpieces_per_s"],
        "best_shape": {k: best[k] for k in ("row_length", "rows_per_batch")},
        "padding_efficiency": 1.0,
        "shapes": shapes,
    }
