"""How calibrated a classifier's probabilities are on the Debian-sections dev split, before and
after a temperature; with ``--write-shipped``, the temperature of the shipped head
(stream_trf/heads/debian_sections), whose probabilities feed the monitor's confidence drift.

The temperature is fitted on dev (675 descriptions; the model was trained on the training
split). To say how calibrated it is on data the temperature was not fitted on, dev is also cut
into two stratified halves (ten times, at random) and each half's ECE is measured with the
temperature fitted on the other (2-fold cross-fitting). ECE is biased upwards on few docs: the
``noise_floor`` is the ECE the same probabilities would show if they were perfectly calibrated
(labels drawn from them), at the half's and at dev's size.

    python -m bench.experiments.calibration_report --write-shipped --out bench/results/calibration-shipped-head.json
    python -m bench.experiments.calibration_report --model out/model-best --out bench/results/X.json
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.harness.corpus import sections_dir
from stream_trf.pipeline.training import RETIRED_SETTINGS

ROOT = Path(__file__).resolve().parents[2]
DEV = sections_dir() / "dev.jsonl"


def noise_floor(probs: Any, n: int, draws: int = 300) -> dict[str, float]:
    """ECE of ``n`` docs resampled from ``probs`` with labels drawn from their own
    probabilities: perfectly calibrated by construction, so what remains is sampling noise."""
    from stream_trf.training.calibrate import expected_calibration_error

    rng = np.random.default_rng(0)
    values = []
    for _ in range(draws):
        sample = probs[rng.choice(len(probs), n, replace=True)]
        drawn = np.array([rng.choice(sample.shape[1], p=p / p.sum()) for p in sample])
        values.append(expected_calibration_error(sample, np.eye(sample.shape[1])[drawn], True))
    return {"mean": round(float(np.mean(values)), 4), "stdev": round(float(np.std(values)), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model", default=None, help="a saved pipeline (default: the shipped head)"
    )
    parser.add_argument(
        "--write-shipped", action="store_true", help="save the temperature in the shipped head"
    )
    parser.add_argument("--criterion", choices=("brier", "nll"), default="brier")
    parser.add_argument("--repeats", type=int, default=10, help="random 2-fold splits of dev")
    parser.add_argument("--note", default="")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    import srsly

    import stream_trf
    from bench.harness.machine import describe
    from stream_trf.training.calibrate import (
        doc_probabilities,
        expected_calibration_error,
        fit_temperature,
        negative_log_likelihood,
    )
    from stream_trf.training.data import full_cats, read_labelled

    t0 = time.time()
    if args.write_shipped and args.model:
        parser.error("--write-shipped calibrates the shipped head: leave out --model")
    nlp = stream_trf.load(args.model) if args.model else stream_trf.load()
    textcat: Any = nlp.get_pipe("trf_textcat")
    labels = list(textcat.labels)
    rows = read_labelled(DEV)
    gold = np.stack([np.array(list(full_cats(r, labels).values())) for r in rows])
    logits = textcat.logits(textcat.head_features([r.text for r in rows], desc="dev rows"))

    def figures(idx: list[int], t: float) -> dict[str, float]:
        probs = doc_probabilities([logits[i] for i in idx], t, True)
        return {
            "ece": round(expected_calibration_error(probs, gold[idx], True), 4),
            "nll": round(negative_log_likelihood(probs, gold[idx], True), 4),
            "mean_confidence": round(float(probs.max(axis=1).mean()), 4),
            "accuracy": round(float((probs.argmax(1) == gold[idx].argmax(1)).mean()), 4),
        }

    every = list(range(len(rows)))
    folds: list[dict[str, Any]] = []
    for repeat in range(args.repeats):
        halves: list[list[int]] = [[], []]
        rng = random.Random(repeat)
        for label in labels:
            members = [i for i in every if rows[i].label == label]
            rng.shuffle(members)
            halves[0].extend(members[::2])
            halves[1].extend(members[1::2])
        for a, b in ((0, 1), (1, 0)):
            t = fit_temperature(
                [logits[i] for i in halves[a]], gold[halves[a]], True, args.criterion
            )
            folds.append(
                {
                    "repeat": repeat,
                    "temperature": round(t, 4),
                    "held_out": figures(halves[b], t),
                    "held_out_uncalibrated": figures(halves[b], 1.0),
                }
            )
    temperature = fit_temperature(logits, gold, True, args.criterion)
    result = {
        "benchmark": "calibration_shipped_head",
        "command": "python -m bench.experiments.calibration_report " + " ".join(sys.argv[1:]),
        "model": args.model or "the shipped head (stream_trf.load())",
        "temperature_saved_in_model": textcat.temperature,
        "machine": describe(),
        "note": args.note,
        "criterion": args.criterion,
        "dev_docs": len(rows),
        "dev_uncalibrated": figures(every, 1.0),
        "cross_fit": "dev cut into stratified halves, --repeats times; each half's figures with "
        "the temperature fitted on the other",
        "two_fold_cross_fit": folds,
        "held_out_ece_mean": round(float(np.mean([f["held_out"]["ece"] for f in folds])), 4),
        "held_out_ece_stdev": round(float(np.std([f["held_out"]["ece"] for f in folds])), 4),
        "held_out_ece_uncalibrated_mean": round(
            float(np.mean([f["held_out_uncalibrated"]["ece"] for f in folds])), 4
        ),
        "temperature_fitted_on_all_dev": round(temperature, 4),
        "noise_floor": {
            f"{n}_docs": noise_floor(doc_probabilities(logits, temperature, True), n)
            for n in (len(rows) // 2, len(rows))
        },
        "dev_calibrated_in_sample": figures(every, temperature),
        "seconds": round(time.time() - t0, 1),
    }
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=1))
    if args.write_shipped:
        cfg_path = stream_trf.DEFAULT_CLASSIFIER / "cfg"
        cfg = srsly.read_json(cfg_path)
        for retired in RETIRED_SETTINGS["trf_textcat"]:
            cfg.pop(retired, None)
        cfg["temperature"] = temperature
        cfg["calibration"] = {
            "fitted_on": "debian-sections dev (675 descriptions)",
            "criterion": args.criterion,
            "ece_before": result["dev_uncalibrated"]["ece"],
            "ece_after_in_sample": result["dev_calibrated_in_sample"]["ece"],
            "ece_held_out_two_fold": result["held_out_ece_mean"],
        }
        srsly.write_json(cfg_path, cfg)
        print(f"wrote temperature {temperature:.4f} into {cfg_path}")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
