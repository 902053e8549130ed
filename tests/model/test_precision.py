"""Lower precisions: what int8 quantizes, what it refuses, and that saving keeps fp32 weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import stream_trf
from stream_trf.errors import StreamTrfError
from stream_trf.model.precision import (
    Int8Scheme,
    UnsupportedPrecision,
    apply_precision,
    quantizable_linears,
)
from stream_trf.model.runner import TransformerRunner

TEXTS = ["A first sentence. And a second one, a little longer.", "Short."]


def _linear_names(model: torch.nn.Module) -> set[str]:
    return {n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}


def test_int8_quantizes_exactly_the_linears_the_scheme_names(tiny_models) -> None:
    runner = TransformerRunner(tiny_models["bert"], device="cpu")
    scheme = Int8Scheme(per_channel=True, keep_float=("encoder.layer.?.output.dense",))
    chosen = quantizable_linears(runner.model, scheme)
    all_linear = _linear_names(runner.model)
    kept = {n for n in all_linear if n.startswith("encoder.layer.") and n.endswith(".output.dense")}
    kept = {n for n in kept if "attention" not in n}
    assert kept and chosen == all_linear - kept
    q = apply_precision(runner.model, "int8", torch.device("cpu"), scheme)
    # What stays a float Linear afterwards is exactly what the scheme kept.
    assert _linear_names(q) == kept


def test_precisions_a_device_cannot_run_are_refused(tiny_models) -> None:
    runner = TransformerRunner(tiny_models["bert"], device="cpu")
    with pytest.raises(UnsupportedPrecision, match="needs a GPU"):
        apply_precision(runner.model, "fp16", torch.device("cpu"))
    with pytest.raises(UnsupportedPrecision, match="one of"):
        apply_precision(runner.model, "int4", torch.device("cpu"))


def test_int8_pipeline_is_close_not_equal_inference_only_and_saves_fp32(
    tiny_models, tmp_path: Path
) -> None:
    fp32 = stream_trf.load(str(tiny_models["bert"]), device="cpu")
    int8 = stream_trf.load(str(tiny_models["bert"]), device="cpu", precision="int8")
    for text in TEXTS:
        a, b = fp32(text).tensor, int8(text).tensor
        assert not np.array_equal(a, b)
        cos = (a * b).sum() / (np.linalg.norm(a) * np.linalg.norm(b))
        assert cos > 0.9
    # Fine-tuning an int8 pipeline is refused with a message that says what to do.
    tc = int8.add_pipe("trf_textcat")
    tc.add_label("A")
    tc.add_label("B")
    int8.initialize()
    from spacy.training import Example

    eg = Example.from_dict(int8.make_doc(TEXTS[0]), {"cats": {"A": 1.0, "B": 0.0}})
    with pytest.raises(StreamTrfError, match="precision fp32"):
        int8.update([eg], sgd=int8.resume_training())
    # Saved, it holds the original fp32 weights: loaded back at fp32 it equals the fp32 pipeline.
    int8.to_disk(tmp_path / "saved")
    back = stream_trf.load(tmp_path / "saved", precision="fp32")
    for text in TEXTS:
        assert np.array_equal(back(text).tensor, fp32(text).tensor)
