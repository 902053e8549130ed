"""What 0 ("auto") means for the settings that have it, and the figures the worker chooses for
itself (``batch_cost``): one rule per setting, by device and by who runs the model (the
library's ``nlp.pipe``, the worker, or training).

A leaf: the library (``trf_tok2vec``), the worker and the settings' help all read their figures
from here. Why each figure is what it is: docs/decisions/words-per-batch.md and
docs/decisions/processes-and-lanes.md.
"""

from __future__ import annotations

from typing import Literal

Use = Literal["library", "worker", "training"]

# Most padded wordpieces in one transformer sub-batch. The library's figures were the fastest in
# `stream-trf bench` sweeps (a GPU needs big passes: each costs launches and Python however small).
# The worker's are smaller: on a CPU a buffer's working set shrinks at the same speed; on a GPU a
# buffer becomes several passes, so processes sharing the card keep their latency low.
# Training keeps the library's CPU figure on any device: gradients need far more memory.
WORDS_PER_BATCH: dict[str, dict[str, int]] = {
    "library": {"cpu": 1000, "cuda": 32000},
    "worker": {"cpu": 500, "cuda": 8000},
}

# The worker hands freed heap back to the OS every this many of its auto sub-batches.
RELEASE_EVERY_SUB_BATCHES = 8

# Cores per worker process. Within a process the model runs one lane per core, but spaCy, the
# alignment and the Kafka client share one interpreter: past a few cores that serial share would
# cap the process, so larger machines get several.
CORES_PER_PROCESS = 4


# The CPU figures were measured on the default model, all-MiniLM-L6-v2, 384 wide. A pass's
# activations grow with the model's width, so a narrower model holds proportionally more
# wordpieces in the same memory, and its passes are so cheap that their fixed cost (launching
# the pass, the lanes' Python around it) would otherwise show: it gets the CPU figure scaled
# by 384 / width, at most that use's GPU figure (docs/decisions/words-per-batch.md).
REFERENCE_WIDTH = 384


def words_per_batch(device_type: str, use: Use = "library", width: int | None = None) -> int:
    """``words_per_batch`` = 0 on a device (``"cpu"``, ``"cuda"``; others count as a CPU), for
    a model ``width`` wide (None: the default model's)."""
    if use == "training":
        return WORDS_PER_BATCH["library"]["cpu"]
    table = WORDS_PER_BATCH[use]
    if device_type in table and device_type != "cpu":
        return table[device_type]
    figure = table["cpu"]
    if width and 0 < width < REFERENCE_WIDTH:
        figure = min(table["cuda"], figure * REFERENCE_WIDTH // width)
    return figure


# The optimal sub-batch cuts' cost of one forward pass beyond its wordpieces, in wordpieces
# (docs/decisions/sub-batch-cuts.md), measured on the default model on a CPU. The worker's
# scales by 384 / width on a CPU, as its sub-batch size does: a narrower model computes a
# wordpiece in proportionally less time, while what a pass costs around it (the lanes' handling,
# the launch) stays, and at 32 the cuts made passes of a few documents each.
BATCH_COST = 32.0


def batch_cost(device_type: str, use: Use = "library", width: int | None = None) -> float:
    """``trf_tok2vec``'s ``batch_cost`` for ``use`` on a device, for a model ``width`` wide
    (None: the default model's). The library and training keep the measured figure."""
    if use == "worker" and device_type != "cuda" and width and 0 < width < REFERENCE_WIDTH:
        return BATCH_COST * REFERENCE_WIDTH / width
    return BATCH_COST


def release_every(device_type: str, width: int | None = None) -> int:
    """``release_every`` = 0 in the worker: wordpieces between two hand-backs of freed heap."""
    return RELEASE_EVERY_SUB_BATCHES * words_per_batch(device_type, "worker", width)


def processes(cores: int, partitions: int) -> int:
    """``processes`` = 0: one worker process per ``CORES_PER_PROCESS`` cores, at most one per
    partition (a process without one would idle), at least one. The same on a GPU: there the
    CPU side (tokenization, alignment, serialization) is what the processes share out."""
    return max(1, min(cores // CORES_PER_PROCESS, partitions))
