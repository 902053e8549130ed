"""Packed (padding-free) inference gives the rows the padded path gives, on any device."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import stream_trf
from stream_trf.model.packed import supports_packing
from stream_trf.model.runner import TransformerRunner


def _sequences(n: int, vocab: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [
        rng.integers(5, vocab, size=int(rng.integers(2, 40))).astype(np.int64) for _ in range(n)
    ]


@pytest.mark.parametrize("hidden_states", [False, True])
def test_packed_rows_equal_padded_rows(tiny_models, hidden_states: bool) -> None:
    padded = TransformerRunner(
        tiny_models["bert"], packing="off", output_hidden_states=hidden_states
    )
    packed = TransformerRunner(
        tiny_models["bert"], packing="on", output_hidden_states=hidden_states
    )
    assert packed.packed and not padded.packed
    ids = _sequences(9, int(padded.config.vocab_size))
    types = [None] * len(ids)
    types[3] = np.ones(len(ids[3]), dtype=np.int64)  # segment ids travel too
    want, got = padded.predict(ids, types), packed.predict(ids, types)
    assert [g.last_hidden_state.shape[0] for g in got] == [len(x) for x in ids]
    for w, g in zip(want, got):
        np.testing.assert_allclose(g.last_hidden_state, w.last_hidden_state, atol=2e-5)
        if hidden_states:
            assert g.hidden_states is not None and w.hidden_states is not None
            assert len(g.hidden_states) == len(w.hidden_states)
            for a, b in zip(g.hidden_states, w.hidden_states):
                np.testing.assert_allclose(a, b, atol=2e-5)
    # No padding at all: every computed row is a real wordpiece.
    assert packed.stats.padded_wordpieces == packed.stats.real_wordpieces == sum(map(len, ids))
    assert padded.stats.padded_wordpieces > padded.stats.real_wordpieces


def test_both_attention_kernels_give_the_same_rows(tiny_models) -> None:
    """The jagged kernel (CUDA's) and the dense one (padded inside attention only) agree."""
    from stream_trf.model.packed import attention_kernel, packed_forward

    runner = TransformerRunner(tiny_models["bert"], packing="off")
    ids = _sequences(7, int(runner.config.vocab_size), seed=3)
    types = [None] * len(ids)
    with torch.inference_mode():
        dense, _, lengths = packed_forward(runner.model, ids, types, runner.device, kernel="dense")
        jagged, _, _ = packed_forward(runner.model, ids, types, runner.device, kernel="jagged")
    assert lengths == [len(x) for x in ids] and dense.shape[0] == sum(lengths)
    torch.testing.assert_close(dense, jagged, atol=2e-5, rtol=1e-4)
    assert attention_kernel(torch.device("cpu")) == "dense"
    assert attention_kernel(torch.device("cuda")) == "jagged"


def test_packing_is_chosen_by_device_and_model(tiny_models) -> None:
    auto = TransformerRunner(tiny_models["bert"])
    assert auto.packed == (auto.device.type == "cuda")
    # Other families and attention weights take the padded path, even when asked.
    assert not supports_packing(TransformerRunner(tiny_models["roberta"], packing="off").model)
    assert not TransformerRunner(tiny_models["roberta"], packing="on").packed
    assert not TransformerRunner(tiny_models["bert"], packing="on", output_attentions=True).packed
    with pytest.raises(ValueError, match="packing"):
        TransformerRunner(tiny_models["bert"], packing="sometimes")


@pytest.mark.slow
def test_packed_pipeline_matches_the_padded_one_on_real_text() -> None:
    texts = [
        "Debian packages are built from source packages. Each has a maintainer.",
        "A short one.",
        "Transformers align wordpieces to spaCy tokens; rows are pooled back per token.",
    ]
    docs_padded = list(stream_trf.load(packing="off").pipe(texts))
    docs_packed = list(stream_trf.load(packing="on").pipe(texts))
    for a, b in zip(docs_padded, docs_packed):
        np.testing.assert_allclose(b.tensor, a.tensor, atol=1e-4)
        assert a.cats.keys() == b.cats.keys()
        assert max(a.cats, key=a.cats.get) == max(b.cats, key=b.cats.get)
    assert torch.is_grad_enabled()  # inference mode did not leak
