"""A batch of docs through the model for pooled outputs, as arrays over its sentences.

With ``outputs="pooled"`` a doc needs, per sentence, the sum of its rows and its class-token row.
A sentence that fits the model in one window (nearly every one) needs no object of its own:
the batch's wordpiece ids are one flat array, a sentence is a ``(start, length)`` pair into it,
each sub-batch is an array of sentence indices, and what the lanes return per sub-batch (row
sums, first and last rows: ``TransformerRunner.predict_pooled``) lands in the batch's arrays by
index. Per-sentence windows, outputs and loops cost more than the rest of the step on a fast
device. The few sentences longer than the model takes (``PooledPlan.long``) are cut into
windows whose rows are stitched and reduced (``trf_tok2vec``); the rest of their batch stays on
the arrays (docs/decisions/pooled-outputs.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .extensions import DocWordpieces

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class PooledPlan:
    """Every sentence of a batch of docs as one model sequence."""

    wordpieces: list[DocWordpieces]  # per doc
    ids: IntArray  # every doc's wordpiece ids, end to end
    type_ids: IntArray | None  # the same for token types, when the model uses them
    starts: IntArray  # per sentence: where its wordpieces start in ``ids``
    lengths: IntArray  # per sentence: its wordpieces, boundary tokens included
    class_last: npt.NDArray[np.bool_]  # per sentence: its class token is its last row
    doc_sentences: IntArray  # (n_docs + 1,): where each doc's sentences start
    long: IntArray  # the sentences longer than the model takes (windowed), ascending

    @property
    def fitting(self) -> IntArray:
        """The sentences that go through the model whole (all but ``long``)."""
        if not len(self.long):
            return np.arange(len(self.lengths))
        keep = np.ones(len(self.lengths), dtype=bool)
        keep[self.long] = False
        return np.flatnonzero(keep)

    def owner(self, sentence: int) -> tuple[int, int]:
        """(doc, its sentence) of the plan's sentence ``sentence``."""
        d = int(np.searchsorted(self.doc_sentences, sentence, side="right")) - 1
        return d, sentence - int(self.doc_sentences[d])


def plan_pooled(wps: Sequence[DocWordpieces], max_length: int) -> PooledPlan:
    """The plan for ``wps``; sentences longer than ``max_length`` are marked ``long``."""
    n = len(wps)
    n_sent = np.fromiter((wp.n_sentences for wp in wps), dtype=np.int64, count=n)
    n_wp = np.fromiter((len(wp.ids) for wp in wps), dtype=np.int64, count=n)
    doc_sentences = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(n_sent, out=doc_sentences[1:])
    if not n or not doc_sentences[-1]:
        empty = np.zeros(0, dtype=np.int64)
        return PooledPlan(
            list(wps), empty, None, empty, empty, empty.astype(bool), doc_sentences, empty
        )
    # each doc's sentence offsets end to end, shifted to where its wordpieces start: a
    # sentence ends where the next one starts, except a doc's last (dropped: ``ends``)
    offsets = np.concatenate([wp.sentence_starts for wp in wps]).astype(np.int64) + np.repeat(
        np.cumsum(n_wp) - n_wp, n_sent + 1
    )
    ends = np.ones(len(offsets), dtype=bool)
    ends[doc_sentences[1:] + np.arange(n)] = False  # each doc's closing offset
    bounds = offsets[ends]
    lengths = offsets[1:][ends[:-1]] - bounds
    with_types = any(wp.type_ids is not None for wp in wps)
    type_ids = (
        np.concatenate(
            [
                wp.type_ids if wp.type_ids is not None else np.zeros(len(wp.ids), np.int64)
                for wp in wps
            ]
        )
        if with_types
        else None
    )
    class_last = np.repeat(
        np.fromiter((wp.class_token == -1 for wp in wps), dtype=bool, count=n), n_sent
    )
    return PooledPlan(
        wordpieces=list(wps),
        ids=np.concatenate([wp.ids for wp in wps]).astype(np.int64, copy=False),
        type_ids=type_ids,
        starts=bounds,
        lengths=lengths,
        class_last=class_last,
        doc_sentences=doc_sentences,
        long=np.flatnonzero(lengths > max_length),
    )


def gather_pooled(
    plan: PooledPlan,
    batches: Sequence[IntArray],
    results: Sequence[tuple[FloatArray, FloatArray, FloatArray]],
    width: int,
) -> tuple[FloatArray, FloatArray]:
    """Per sentence of the plan, its row sum and its class-token row, from each sub-batch's
    ``(sums, first rows, last rows)`` (sub-batch ``k`` holds the sentences ``batches[k]``).
    The ``long`` sentences are in no sub-batch: their rows stay zero here."""
    total = len(plan.lengths)
    sums = np.zeros((total, width), dtype=np.float32)
    class_rows = np.zeros((total, width), dtype=np.float32)
    for idx, (batch_sums, first, last) in zip(batches, results):
        sums[idx] = batch_sums
        class_rows[idx] = np.where(plan.class_last[idx, None], last, first)
    return sums, class_rows
