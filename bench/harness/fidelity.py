"""Fidelity gate for lower precisions: the same texts at fp32 and at ``precision``.

A lower precision is only worth offering if it gives the same answers: doc vectors within
cosine 0.99 of fp32 (the minimum over docs, not the mean: one bad doc is a bad doc) and the
same classifier label on at least 99 % of docs. Speed is measured in the same process, fp32
first.
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np

GATE = {"min_cosine": 0.99, "label_agreement": 0.99}
# Diagnostic only (the gate counts every doc): agreement on docs whose fp32 top label leads the
# runner-up by at least this much probability.
CLEAR_MARGIN = 0.1


def top_margin(cats: dict[str, float]) -> float:
    """How far the top label's score leads the runner-up's (1.0 with one label)."""
    top = sorted(cats.values(), reverse=True)
    return float(top[0] - top[1]) if len(top) > 1 else 1.0


def _run(nlp: Any, texts: list[str]) -> tuple[list[Any], float]:
    list(nlp.pipe(texts[:10]))
    t0 = time.perf_counter()
    docs = list(nlp.pipe(texts, batch_size=256))
    return docs, time.perf_counter() - t0


def fidelity(
    texts: list[str],
    *,
    model: str,
    precision: str,
    words_per_batch: int | None = None,
    per_channel: bool | None = None,
    keep_float: list[str] | None = None,
    smooth_alpha: float | None = None,
    calibration_file: str | None = None,
    packing: str = "auto",
) -> dict[str, Any]:
    """Doc-vector cosine and label agreement of ``precision`` against fp32, and both speeds.

    ``per_channel`` / ``keep_float`` / ``smooth_alpha`` try an int8 scheme other than the
    default one; smoothing calibrates on the texts of ``calibration_file`` (JSONL with 'text';
    never the measured texts).
    """
    import stream_trf
    from stream_trf.model.precision import (
        INT8_DEFAULT,
        ActivationRanges,
        Int8Scheme,
        quantize_int8,
    )

    reference = stream_trf.load(model, words_per_batch=words_per_batch, packing=packing)
    ref_docs, ref_s = _run(reference, texts)
    scheme = None
    custom = per_channel is not None or keep_float is not None or smooth_alpha is not None
    if precision == "int8" and custom:
        scheme = Int8Scheme(
            per_channel=INT8_DEFAULT.per_channel if per_channel is None else per_channel,
            keep_float=INT8_DEFAULT.keep_float if keep_float is None else tuple(keep_float),
            smooth_alpha=smooth_alpha,
        )
        candidate = stream_trf.load(model, words_per_batch=words_per_batch, packing=packing)
        runner = candidate.get_pipe("trf_tok2vec").runner
        ranges = None
        if smooth_alpha is not None:
            if calibration_file is None:
                raise ValueError("smooth_alpha needs calibration_file")
            with open(calibration_file, encoding="utf-8") as f:
                calibration_texts = [json.loads(line)["text"] for line in f]
            runner.use_model(runner.model, "fp32", trace=False)  # hooks see eager modules only
            with ActivationRanges(runner.model) as calibration:
                list(candidate.pipe(calibration_texts, batch_size=256))
            ranges = calibration.ranges
        runner.use_model(quantize_int8(runner.model, scheme, ranges), "int8")
    else:
        candidate = stream_trf.load(
            model, words_per_batch=words_per_batch, precision=precision, packing=packing
        )
        if precision == "int8":
            scheme = INT8_DEFAULT
    docs, s = _run(candidate, texts)
    a = np.stack([d.vector for d in ref_docs])
    b = np.stack([d.vector for d in docs])
    cos = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
    result: dict[str, Any] = {
        "precision": precision,
        "scheme": scheme.describe() if scheme else precision,
        "docs": len(texts),
        "min_cosine": round(float(cos.min()), 5),
        "p01_cosine": round(float(np.percentile(cos, 1)), 5),
        "mean_cosine": round(float(cos.mean()), 5),
        # A converted model changes every vector a little; bit-identical ones mean fp32 ran.
        "identical_vectors": int((a == b).all(1).sum()),
        "fp32_seconds": round(ref_s, 3),
        "seconds": round(s, 3),
        "speedup": round(ref_s / s, 3),
    }
    if ref_docs and ref_docs[0].cats:
        ref_labels = [max(d.cats, key=d.cats.__getitem__) for d in ref_docs]
        labels = [max(d.cats, key=d.cats.__getitem__) for d in docs]
        same = np.array([x == y for x, y in zip(ref_labels, labels)])
        result["label_agreement"] = round(float(same.mean()), 4)
        # Are the flips near-ties? fp32's lead of its top label over the runner-up, per doc.
        margins = np.array([top_margin(d.cats) for d in ref_docs])
        result["flipped_fp32_margin_max"] = (
            round(float(margins[~same].max()), 4) if (~same).any() else None
        )
        result["flipped_fp32_margin_median"] = (
            round(float(np.median(margins[~same])), 4) if (~same).any() else None
        )
        clear = margins >= CLEAR_MARGIN
        result["label_agreement_clear_margin"] = (
            round(float(same[clear].mean()), 4) if clear.any() else None
        )
        result["clear_margin_docs"] = int(clear.sum())
    result["passes"] = (
        result["min_cosine"] >= GATE["min_cosine"]
        and result.get("label_agreement", 1.0) >= GATE["label_agreement"]
    )
    return result
