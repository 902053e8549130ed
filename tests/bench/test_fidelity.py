"""The fidelity report: it measures the int8 scheme it names, and its label figures add up."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import shared_descriptions

import stream_trf
from bench.harness.fidelity import CLEAR_MARGIN, fidelity, top_margin


def testtop_margin_is_the_lead_over_the_runner_up() -> None:
    assert top_margin({"a": 0.5, "b": 0.3, "c": 0.2}) == pytest.approx(0.2)
    assert top_margin({"a": 0.1, "b": 0.6}) == pytest.approx(0.5)
    assert top_margin({"only": 0.7}) == 1.0


def test_a_smoothed_int8_scheme_is_what_runs_and_its_labels_are_counted(
    tiny_models, tmp_path: Path
) -> None:
    texts = [r["text"] for r in shared_descriptions(40)]
    nlp = stream_trf.load(str(tiny_models["bert"]), classifier=None)
    textcat = nlp.add_pipe("trf_textcat")
    for label in ("admin", "devel", "libs", "net"):
        textcat.add_label(label)
    nlp.initialize()
    nlp.to_disk(tmp_path / "pipeline")
    calibration = tmp_path / "calibration.jsonl"
    calibration.write_text("".join(json.dumps({"text": t[::-1]}) + "\n" for t in texts[:10]))

    result = fidelity(
        texts,
        model=str(tmp_path / "pipeline"),
        precision="int8",
        smooth_alpha=0.8,
        calibration_file=str(calibration),
    )
    assert "SmoothQuant alpha 0.8" in result["scheme"]
    # int8 really ran: a runner still answering from its fp32 trace gives fp32's very vectors
    assert result["identical_vectors"] == 0
    assert result["min_cosine"] <= result["p01_cosine"] <= result["mean_cosine"] <= 1.0
    agreement, clear = result["label_agreement"], result["label_agreement_clear_margin"]
    assert 0.0 <= agreement <= 1.0
    assert 0 <= result["clear_margin_docs"] <= len(texts)
    if agreement < 1.0:
        assert 0.0 <= result["flipped_fp32_margin_median"] <= result["flipped_fp32_margin_max"]
    else:
        assert result["flipped_fp32_margin_max"] is None
    if result["clear_margin_docs"]:
        assert 0.0 <= clear <= 1.0
    # a flip among the clear-margin docs is a flip whose fp32 margin is at least CLEAR_MARGIN
    if clear is not None and clear < 1.0:
        assert result["flipped_fp32_margin_max"] >= CLEAR_MARGIN
    assert result["passes"] == (result["min_cosine"] >= 0.99 and agreement >= 0.99)

    # a scheme without calibration swaps the model under the runner's trace: it must run too
    plain = fidelity(
        texts[:8], model=str(tmp_path / "pipeline"), precision="int8", keep_float=["pooler.*"]
    )
    assert "kept in fp32: pooler.*" in plain["scheme"]
    assert plain["identical_vectors"] == 0

    with pytest.raises(ValueError, match="calibration_file"):
        fidelity(texts[:2], model=str(tmp_path / "pipeline"), precision="int8", smooth_alpha=0.5)
