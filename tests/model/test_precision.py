"""Lower precisions: what int8 quantizes, what it refuses, and that saving keeps fp32 weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import stream_trf
from stream_trf.errors import StreamTrfError
from stream_trf.model.precision import (
    ActivationRanges,
    Int8Scheme,
    MissingCalibration,
    SmoothedLinear,
    UnsupportedPrecision,
    apply_precision,
    quantizable_linears,
    quantize_int8,
    smooth_linears,
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


def test_smoothed_linear_is_the_same_function_with_rescaled_weights() -> None:
    torch.manual_seed(0)
    linear = torch.nn.Linear(16, 8)
    scale = torch.rand(16) * 10 + 0.1
    smoothed = SmoothedLinear(linear, scale)
    assert torch.allclose(smoothed.linear.weight, linear.weight * scale[None, :])
    assert not torch.allclose(smoothed.linear.weight, linear.weight)
    x = torch.randn(5, 3, 16)
    assert torch.allclose(smoothed(x), linear(x), atol=1e-5)


def test_activation_ranges_are_per_channel_maxima_over_every_call_then_detach() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.ReLU(), torch.nn.Linear(6, 3))
    batches = [torch.randn(7, 4), torch.randn(2, 5, 4) * 3]
    with ActivationRanges(model) as calibration:
        for x in batches:
            model(x)
    flat = [x.reshape(-1, 4) for x in batches]
    first = torch.cat(flat).abs().amax(0)
    second = torch.cat([model[1](model[0](x)) for x in flat]).abs().amax(0)
    assert torch.allclose(calibration.ranges["0"], first)
    assert torch.allclose(calibration.ranges["2"], second)
    seen = {k: v.clone() for k, v in calibration.ranges.items()}
    model(torch.randn(3, 4) * 100)  # after the block: nothing recorded
    assert all(torch.equal(seen[k], calibration.ranges[k]) for k in seen)


def test_smoothing_keeps_the_fp32_model_and_needs_calibration(tiny_models) -> None:
    runner = TransformerRunner(tiny_models["bert"], device="cpu")
    model = runner.model
    ids = torch.randint(5, 100, (2, 12))
    mask = torch.ones_like(ids)
    with torch.no_grad(), ActivationRanges(model) as calibration:
        before = model(input_ids=ids, attention_mask=mask).last_hidden_state
    names = quantizable_linears(model, Int8Scheme())
    scheme = Int8Scheme(smooth_alpha=0.5)
    with pytest.raises(MissingCalibration, match="calibration"):
        quantize_int8(model, scheme)
    q = quantize_int8(model, scheme, calibration.ranges)
    # the original is untouched; the copy holds the smoothed, quantized layers
    assert _linear_names(model) == names
    assert not _linear_names(q)
    assert {n for n, m in q.named_modules() if isinstance(m, SmoothedLinear)} == names
    with torch.no_grad():
        after_q = q(input_ids=ids, attention_mask=mask).last_hidden_state
        renamed = smooth_linears(model, calibration.ranges, 0.5, names)
        after = model(input_ids=ids, attention_mask=mask).last_hidden_state
    assert set(renamed) == names
    assert torch.allclose(before, after, atol=1e-4)  # smoothing alone changes nothing
    cos = torch.nn.functional.cosine_similarity(before.flatten(), after_q.flatten(), dim=0)
    assert cos > 0.9
    partial = {k: v for k, v in calibration.ranges.items() if k != sorted(names)[0]}
    with pytest.raises(MissingCalibration, match=sorted(names)[0]):
        smooth_linears(model, partial, 0.5, {sorted(names)[0]})


def test_smoothing_rescues_int8_from_an_outlier_channel() -> None:
    """One activation channel 100x the others: dynamic int8 quantizes the whole tensor with
    one scale, so every other channel loses its resolution; smoothing moves the outlier into
    the (per-channel quantized) weight."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 32))
    x = torch.randn(256, 64)
    x[:, 3] *= 100
    with torch.no_grad():
        reference = model(x)
        with ActivationRanges(model) as calibration:
            model(x)
        plain = quantize_int8(model, Int8Scheme())(x)
        smoothed = quantize_int8(model, Int8Scheme(smooth_alpha=0.5), calibration.ranges)(x)
    err_plain = (plain - reference).norm() / reference.norm()
    err_smoothed = (smoothed - reference).norm() / reference.norm()
    assert err_smoothed < err_plain / 3


def test_use_model_leaves_no_path_running_the_old_weights(tiny_models) -> None:
    """A runner told to use another copy of its encoder (another int8 scheme, say) must not
    keep answering from the trace of the weights it had: that silently measures fp32 as int8."""
    runner = TransformerRunner(tiny_models["bert"], device="cpu", trace="on")
    assert runner.traced is not None
    inputs = runner.pad([np.arange(5, 17, dtype=np.int64)], [None])
    fp32 = runner.infer(inputs)
    runner.use_model(runner.model, "fp32", trace=False)
    assert runner.traced is None
    with ActivationRanges(runner.model) as calibration:  # eager: the hooks see every Linear
        assert torch.allclose(runner.infer(inputs), fp32, atol=1e-5)
    assert set(calibration.ranges) == _linear_names(runner.model)
    quantized = quantize_int8(runner.model, Int8Scheme(smooth_alpha=0.5), calibration.ranges)
    runner.use_model(quantized, "int8")
    assert runner.precision == "int8" and runner.traced is not None
    with torch.no_grad():
        expected = quantized(**inputs).last_hidden_state
    got = runner.infer(inputs)
    assert not torch.allclose(got, fp32, atol=1e-6)
    assert torch.allclose(got, expected, atol=1e-5)
