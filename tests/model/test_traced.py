"""The traced encoder (model/traced.py): same rows as the eager model, checked before use,
eager when a trace cannot be trusted, and sharing the model's parameters."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from stream_trf.model.runner import TransformerRunner
from stream_trf.model.traced import trace_encoder


def _sequences(runner: TransformerRunner, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    high = min(int(runner.config.vocab_size), 300)
    return [rng.integers(5, high, size=n) for n in (3, 17, 40, 9, 1)]


def test_each_family_traces_and_matches_the_eager_model(tiny_dir) -> None:
    traced = TransformerRunner(tiny_dir, trace="on")
    eager = TransformerRunner(tiny_dir, trace="off")
    assert traced.traced is not None and eager.traced is None
    ids = _sequences(traced)
    # Both signatures: without token type ids, and (where the model takes them) with some ones.
    variants: list[list[np.ndarray | None]] = [[None] * len(ids)]
    if traced._accepts_types:
        variants.append([(np.arange(len(x)) % 2).astype(np.int64) for x in ids])
    for types in variants:
        got = traced.predict(ids, types)
        want = eager.predict(ids, types)
        for g, w, x in zip(got, want, ids):
            assert g.last_hidden_state.shape == (len(x), traced.width)
            np.testing.assert_allclose(g.last_hidden_state, w.last_hidden_state, atol=1e-5)


def test_each_familys_pooled_trace_reduces_as_the_eager_model_does(tiny_dir, family) -> None:
    """The reduction traced onto the encoder (row sums, first and last real rows) against the
    eager model's padded output reduced in Python, for both signatures; the fused kernel's
    own mask shape is taken where attention is bidirectional, never by a causal model."""
    traced = TransformerRunner(tiny_dir, trace="on")
    eager = TransformerRunner(tiny_dir, trace="off")
    assert traced.traced is not None
    assert set(traced.traced.pooled_modules) == set(traced.traced.modules)
    assert traced.traced.key_mask[False] == (family in ("bert", "roberta"))
    ids = _sequences(traced, seed=1)
    lengths = np.array([len(x) for x in ids])
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    flat = np.concatenate(ids)
    for flat_types in [None, *([flat % 2] if traced._accepts_types else [])]:
        per_sequence = [
            None if flat_types is None else flat_types[a : a + n] for a, n in zip(starts, lengths)
        ]
        # the path predict_pooled takes
        assert traced.traced.pooled(traced.pad(ids, per_sequence)) is not None
        got = traced.predict_pooled(flat, flat_types, starts, lengths)
        want = eager.predict_pooled(flat, flat_types, starts, lengths)
        for g, w in zip(got, want):
            assert g.dtype == np.float32 and g.shape == (len(ids), traced.width)
            np.testing.assert_allclose(g, w, atol=1e-5)


def test_auto_traces_on_a_cpu_only_where_it_applies(tiny_models) -> None:
    assert TransformerRunner(tiny_models["bert"]).traced is not None  # auto, CPU
    assert TransformerRunner(tiny_models["bert"], trace="off").traced is None
    assert TransformerRunner(tiny_models["bert"], output_hidden_states=True).traced is None
    assert TransformerRunner(tiny_models["bert"], output_attentions=True).traced is None
    with pytest.raises(ValueError, match="trace must be one of"):
        TransformerRunner(tiny_models["bert"], trace="sometimes")


def test_the_trace_shares_the_models_parameters(tiny_models) -> None:
    """An optimizer step changes the weights in place; traced inference must see it."""
    runner = TransformerRunner(tiny_models["bert"], trace="on")
    ids = _sequences(runner)
    before = runner.predict(ids, [None] * len(ids))
    with torch.no_grad():
        for p in runner.model.parameters():
            p.mul_(1.1)
    after = runner.predict(ids, [None] * len(ids))
    with torch.inference_mode():
        eager = runner.forward(runner.pad(ids, [None] * len(ids))).last_hidden_state.numpy()
    assert not np.allclose(before[1].last_hidden_state, after[1].last_hidden_state, atol=1e-3)
    for i, (a, x) in enumerate(zip(after, ids)):
        np.testing.assert_allclose(a.last_hidden_state, eager[i, : len(x)], atol=1e-5)


class _ValueDependent(torch.nn.Module):
    """A model that decides in Python from its input's values: a trace freezes one branch."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(100, 8)

    def forward(self, input_ids, attention_mask, return_dict=False):
        rows = self.embed(input_ids)
        if int(attention_mask.sum()) > 45:  # the traced example has 40 real tokens
            rows = rows * 2
        return (rows,)


class _Untraceable(torch.nn.Module):
    def forward(self, input_ids, attention_mask, return_dict=False):
        raise RuntimeError("no tracing here")


def test_a_trace_that_differs_from_the_model_is_not_used(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="stream_trf.model.traced"):
        got = trace_encoder(
            _ValueDependent(),
            vocab_size=100,
            pad_id=0,
            with_types=False,
            device=torch.device("cpu"),
        )
    assert got is None
    assert "differs from the eager one" in caplog.text


def test_a_model_the_tracer_cannot_take_runs_eager(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="stream_trf.model.traced"):
        got = trace_encoder(
            _Untraceable(), vocab_size=100, pad_id=0, with_types=False, device=torch.device("cpu")
        )
    assert got is None
    assert "no tracing here" in caplog.text


def test_the_default_model_runs_traced_and_matches_eager(minilm_dir) -> None:
    traced = TransformerRunner(minilm_dir)
    eager = TransformerRunner(minilm_dir, trace="off")
    assert traced.traced is not None
    ids = _sequences(traced, seed=3)
    types = [np.zeros(len(x), dtype=np.int64) for x in ids]
    for g, w in zip(traced.predict(ids, types), eager.predict(ids, types)):
        np.testing.assert_allclose(g.last_hidden_state, w.last_hidden_state, atol=1e-5)
