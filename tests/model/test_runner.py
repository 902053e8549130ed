"""The runner: default max length, device choice, out-of-memory splitting (eager and traced),
pooled outputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stream_trf.model.gpu import prefer_gpu, resolve_device
from stream_trf.model.runner import TransformerRunner


def test_max_length_comes_from_the_model(tiny_models, minilm_dir) -> None:
    assert TransformerRunner(tiny_models["bert"]).max_length == 64
    assert TransformerRunner(tiny_models["roberta"]).max_length == 64  # 66 positions, 64 usable
    assert (
        TransformerRunner(tiny_models["xlnet"]).max_length == 64
    )  # relative positions: tokenizer's
    assert TransformerRunner(minilm_dir).max_length == 512
    assert TransformerRunner(tiny_models["bert"], max_length=32).max_length == 32


def test_device_follows_the_machine() -> None:
    assert prefer_gpu() == torch.cuda.is_available()
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu").type == "cpu"


@pytest.mark.parametrize("packing", ["off", "on"])
def test_out_of_memory_splits_the_batch(tiny_models, packing: str) -> None:
    runner = TransformerRunner(tiny_models["bert"], packing=packing, trace="off")
    ids = [np.array([2, 10 + i, 11, 12, 3][: 3 + i % 3], dtype=np.int64) for i in range(8)]
    expected = runner.predict(ids, [None] * 8)
    calls = []
    if runner.packed:
        real_packed = runner._predict_packed

        def flaky_packed(ids, type_ids):
            calls.append(len(ids))
            if len(ids) > 2:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
            return real_packed(ids, type_ids)

        runner._predict_packed = flaky_packed  # type: ignore[method-assign]
    else:
        real_forward = runner.forward

        def flaky(inputs):
            calls.append(inputs["input_ids"].shape[0])
            if inputs["input_ids"].shape[0] > 2:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
            return real_forward(inputs)

        runner.forward = flaky  # type: ignore[method-assign]
    got = runner.predict(ids, [None] * 8)
    assert calls[0] == 8 and max(calls[1:]) <= 4 and runner.stats.oom_splits >= 3
    for a, b in zip(expected, got):
        np.testing.assert_allclose(a.last_hidden_state, b.last_hidden_state, atol=1e-5)


def test_other_errors_are_not_swallowed(tiny_models) -> None:
    runner = TransformerRunner(tiny_models["bert"], packing="off", trace="off")

    def broken(inputs):
        raise RuntimeError("something else")

    runner.forward = broken  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="something else"):
        runner.predict([np.array([2, 3])], [None])


def test_out_of_memory_splits_the_batch_when_traced(tiny_models) -> None:
    runner = TransformerRunner(tiny_models["bert"], packing="off", trace="on")
    assert runner.traced is not None
    ids = [np.array([2, 10 + i, 11, 12, 3][: 3 + i % 3], dtype=np.int64) for i in range(8)]
    expected = runner.predict(ids, [None] * 8)
    real_traced, calls = runner.traced, []

    def flaky(inputs):
        calls.append(inputs["input_ids"].shape[0])
        if inputs["input_ids"].shape[0] > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real_traced(inputs)

    runner.traced = flaky  # type: ignore[assignment]
    got = runner.predict(ids, [None] * 8)
    assert calls[0] == 8 and max(calls[1:]) <= 4 and runner.stats.oom_splits >= 3
    for a, b in zip(expected, got):
        np.testing.assert_allclose(a.last_hidden_state, b.last_hidden_state, atol=1e-5)


@pytest.mark.parametrize(
    ("packing", "trace"), [("off", "off"), ("off", "on"), ("on", "off")], ids=str
)
def test_predict_pooled_reduces_each_sequence_as_predict_does_and_splits_on_oom(
    tiny_models, packing: str, trace: str
) -> None:
    """Sequences as (start, length) pairs into one flat array, with token types: each one's
    row sum, first and last row, as ``predict`` gives them (padded, traced, packed); padded
    runs split in halves on out-of-memory."""
    runner = TransformerRunner(tiny_models["bert"], packing=packing, trace=trace)
    assert runner.packed == (packing == "on")
    ids = [np.array([2, 10 + i, 11, 12, 13, 3][: 3 + i % 4], dtype=np.int64) for i in range(8)]
    types = [np.arange(len(x), dtype=np.int64) % 2 for x in ids]
    flat, flat_types = (
        np.concatenate([np.array([7, 7]), *ids]),
        np.concatenate([np.zeros(2, np.int64), *types]),
    )  # two ids before the first sequence: starts are offsets, not from 0
    lengths = np.array([len(x) for x in ids])
    starts = 2 + np.concatenate([[0], np.cumsum(lengths)[:-1]])
    want = runner.predict(ids, types)
    sums, first, last = runner.predict_pooled(flat, flat_types, starts, lengths)
    for i, out in enumerate(want):
        rows = out.last_hidden_state
        np.testing.assert_allclose(sums[i], rows.sum(0), rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(first[i], rows[0], atol=1e-5)
        np.testing.assert_allclose(last[i], rows[-1], atol=1e-5)
    if runner.packed:
        return
    # the pass the padded path runs: the trace's pooled reduction where traced, else infer
    owner, name = (runner.traced, "pooled") if runner.traced is not None else (runner, "infer")
    run, calls = getattr(owner, name), []

    def flaky(inputs):
        calls.append(inputs["input_ids"].shape[0])
        if inputs["input_ids"].shape[0] > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return run(inputs)

    setattr(owner, name, flaky)
    split = runner.predict_pooled(flat, flat_types, starts, lengths)
    assert calls[0] == 8 and max(calls[1:]) <= 4 and runner.stats.oom_splits >= 3
    assert sum(n for n in calls if n <= 2) == 8  # every sequence computed once, in halves
    for a, b in zip((sums, first, last), split):
        np.testing.assert_allclose(a, b, atol=1e-5)
