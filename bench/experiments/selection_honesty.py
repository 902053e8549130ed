"""Figures on data used for neither training nor selection, and their seed-to-seed spread.

``model-best`` is the epoch with the best dev macro-F1, so dev figures flatter it. Here a
stratified tenth of the training split (``select``) chooses the epoch and fits the temperature,
the rest (``train90``) trains, and the dev split is touched only to report.

    python -m bench.experiments.selection_honesty split --out /tmp/honest
        writes train90.jsonl and select10.jsonl (stratified by label, --split-seed)

    python -m bench.experiments.selection_honesty frozen --seeds 0 1 2 3 4 --out bench/results/X.json
        the shipped head's recipe (frozen transformer, class-token pooling, 40 epochs at 1e-2,
        batch 32) trained on train90 once per seed: the frozen transformer's features are
        computed once and shared by every seed. Per seed: dev figures of the epoch chosen on
        select (honest), of the epoch chosen on dev (what model-best reports), of the last
        epoch; the temperature fitted on select and dev ECE before and after it.

    python -m bench.experiments.selection_honesty finetuned --run DIR --out bench/results/Y.json
        records a fine-tuning run made with
        ``stream-trf train --train train90.jsonl --dev select10.jsonl --output DIR``:
        its model-best and model-last (temperatures fitted on select) scored on dev.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.harness.corpus import sections_dir

ROOT = Path(__file__).resolve().parents[2]
DATA = sections_dir()


def split(out: Path, fraction: float, seed: int) -> None:
    """A stratified ``fraction`` of train.jsonl as select10.jsonl, the rest as train90.jsonl."""
    lines = [line for line in (DATA / "train.jsonl").read_text().splitlines() if line.strip()]
    by_label: dict[str, list[str]] = {}
    for line in lines:
        by_label.setdefault(json.loads(line)["label"], []).append(line)
    rng = random.Random(seed)
    train, select = [], []
    for label in sorted(by_label):
        group = by_label[label]
        rng.shuffle(group)
        k = round(len(group) * fraction)
        select.extend(group[:k])
        train.extend(group[k:])
    rng.shuffle(train)
    out.mkdir(parents=True, exist_ok=True)
    (out / "train90.jsonl").write_text("\n".join(train) + "\n")
    (out / "select10.jsonl").write_text("\n".join(select) + "\n")
    print(f"{out}/train90.jsonl: {len(train)} docs; {out}/select10.jsonl: {len(select)} docs")


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "mean": round(statistics.mean(values), 4),
        "stdev": round(statistics.stdev(values), 4) if len(values) > 1 else 0.0,
        "min": round(min(values), 4),
        "max": round(max(values), 4),
    }


def frozen(seeds: list[int], split_dir: Path, epochs: int, out: Path | None) -> None:
    import stream_trf
    from bench.harness.machine import describe
    from stream_trf.training.calibrate import (
        calibrate,
        doc_probabilities,
        expected_calibration_error,
    )
    from stream_trf.training.data import full_cats, label_set, read_labelled
    from stream_trf.training.evaluate import score

    t0 = time.time()
    train = read_labelled(split_dir / "train90.jsonl")
    select = read_labelled(split_dir / "select10.jsonl")
    dev = read_labelled(DATA / "dev.jsonl")
    labels = label_set(train)
    nlp = stream_trf.load(classifier=None)
    textcat: Any = nlp.add_pipe("trf_textcat", config={"pooling": "cls"})
    for label in labels:
        textcat.add_label(label)
    nlp.initialize()
    features = {
        name: textcat.head_features([r.text for r in rows], desc=f"{name} rows")
        for name, rows in (("train", train), ("select", select), ("dev", dev))
    }
    feature_seconds = round(time.time() - t0, 1)
    gold = {
        name: np.stack([np.array(list(full_cats(r, labels).values()), np.float32) for r in rows])
        for name, rows in (("train", train), ("select", select), ("dev", dev))
    }
    from spacy.training import Example

    def figures(name: str, rows: list[Any], temperature: float = 1.0) -> dict[str, Any]:
        probs = doc_probabilities(textcat.logits(features[name]), temperature, True)
        examples = []
        for r, p in zip(rows, probs):
            eg = Example.from_dict(nlp.make_doc(r.text[:20]), {"cats": full_cats(r, labels)})
            eg.predicted.cats = {k: float(v) for k, v in zip(labels, p)}
            examples.append(eg)
        result = score(examples, labels, exclusive=True)
        return {k: result[k] for k in ("accuracy", "macro_f1", "ece")}

    runs = []
    for seed in seeds:
        np.random.seed(seed)
        textcat._make_head(textcat._tok2vec().width)
        textcat.set_class_weights({})
        textcat.cfg["temperature"] = 1.0
        per_epoch: list[dict[str, Any]] = []
        heads: list[tuple[np.ndarray, np.ndarray]] = []

        def after_epoch(
            epoch: int,
            loss: float,
            per_epoch: list[dict[str, Any]] = per_epoch,
            heads: list[tuple[np.ndarray, np.ndarray]] = heads,
        ) -> None:
            entry: dict[str, Any] = {"epoch": epoch, "loss": round(loss, 4)}
            entry.update(select=figures("select", select), dev=figures("dev", dev))
            per_epoch.append(entry)
            heads.append((textcat.model.get_param("W").copy(), textcat.model.get_param("b").copy()))

        textcat.fit_head(
            features["train"],
            gold["train"],
            epochs=epochs,
            learn_rate=1e-2,
            batch_size=32,
            seed=seed,
            desc=f"seed {seed}",
            after_epoch=after_epoch,
        )
        by_select = max(per_epoch, key=lambda e: e["select"]["macro_f1"])
        by_dev = max(per_epoch, key=lambda e: e["dev"]["macro_f1"])
        W, b = heads[by_select["epoch"] - 1]
        textcat.model.set_param("W", W)
        textcat.model.set_param("b", b)
        calibration = calibrate(textcat, features["select"], gold["select"])
        after = figures("dev", dev, calibration.temperature)
        before_ece = expected_calibration_error(
            doc_probabilities(textcat.logits(features["dev"]), 1.0, True), gold["dev"], True
        )
        runs.append(
            {
                "seed": seed,
                "epoch_chosen_on_select": by_select["epoch"],
                "dev_at_select_choice": by_select["dev"],
                "epoch_chosen_on_dev": by_dev["epoch"],
                "dev_at_dev_choice": by_dev["dev"],
                "dev_last_epoch": per_epoch[-1]["dev"],
                "temperature_fitted_on_select": round(calibration.temperature, 4),
                "select_ece_before_after": [
                    round(calibration.ece_before, 4),
                    round(calibration.ece_after, 4),
                ],
                "dev_ece_before_after": [round(before_ece, 4), round(after["ece"], 4)],
                "per_epoch": per_epoch,
            }
        )
        print(
            f"seed {seed}: dev at the select-chosen epoch {by_select['epoch']}: accuracy "
            f"{by_select['dev']['accuracy']:.4f} macro-F1 {by_select['dev']['macro_f1']:.4f}; "
            f"at the dev-chosen epoch {by_dev['epoch']}: {by_dev['dev']['accuracy']:.4f} / "
            f"{by_dev['dev']['macro_f1']:.4f}; dev ECE {before_ece:.4f} -> {after['ece']:.4f} "
            f"(T {calibration.temperature:.3f})",
            flush=True,
        )
    result = {
        "benchmark": "selection_honesty_frozen_head",
        "command": "python -m bench.experiments.selection_honesty " + " ".join(sys.argv[1:]),
        "machine": describe(),
        "recipe": "frozen all-MiniLM-L6-v2, class-token pooling, head only, Adam 1e-2, batch 32, "
        f"{epochs} epochs, no class weights (the shipped head's recipe)",
        "data": {"train90": len(train), "select10": len(select), "dev": len(dev)},
        "feature_seconds": feature_seconds,
        "summary": {
            "dev_accuracy_select_chosen": _summary(
                [r["dev_at_select_choice"]["accuracy"] for r in runs]
            ),
            "dev_macro_f1_select_chosen": _summary(
                [r["dev_at_select_choice"]["macro_f1"] for r in runs]
            ),
            "dev_accuracy_dev_chosen": _summary([r["dev_at_dev_choice"]["accuracy"] for r in runs]),
            "dev_macro_f1_dev_chosen": _summary([r["dev_at_dev_choice"]["macro_f1"] for r in runs]),
            "dev_ece_uncalibrated": _summary([r["dev_ece_before_after"][0] for r in runs]),
            "dev_ece_calibrated_on_select": _summary([r["dev_ece_before_after"][1] for r in runs]),
        },
        "runs": runs,
        "seconds": round(time.time() - t0, 1),
    }
    print(json.dumps(result["summary"], indent=1))
    if out:
        out.write_text(json.dumps(result, indent=2) + "\n")


def finetuned(run: Path, out: Path | None, note: str) -> None:
    import stream_trf
    from bench.harness.machine import describe
    from stream_trf.training.data import read_examples
    from stream_trf.training.evaluate import evaluate

    summary = json.loads((run / "training.json").read_text())
    result: dict[str, Any] = {
        "benchmark": "selection_honesty_finetuned",
        "command": f"stream-trf train --train train90.jsonl --dev select10.jsonl --output {run.name} "
        "(defaults), then python -m bench.experiments.selection_honesty " + " ".join(sys.argv[1:]),
        "machine": describe(),
        "note": note,
        "training": summary,
    }
    for name in ("model-best", "model-last"):
        nlp = stream_trf.load(run / name)
        scored = evaluate(nlp, read_examples(DATA / "dev.jsonl", nlp))
        result[f"dev_{name}"] = {k: scored[k] for k in ("accuracy", "macro_f1", "ece", "n")}
        print(name, result[f"dev_{name}"], flush=True)
    if out:
        out.write_text(json.dumps(result, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    sp = sub.add_parser("split")
    sp.add_argument("--out", type=Path, required=True)
    sp.add_argument("--fraction", type=float, default=0.1)
    sp.add_argument("--split-seed", type=int, default=0)
    fr = sub.add_parser("frozen")
    fr.add_argument("--split", type=Path, required=True, help="the directory split wrote")
    fr.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    fr.add_argument("--epochs", type=int, default=40)
    fr.add_argument("--out", type=Path, default=None)
    ft = sub.add_parser("finetuned")
    ft.add_argument("--run", type=Path, required=True)
    ft.add_argument("--note", default="")
    ft.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.mode == "split":
        split(args.out, args.fraction, args.split_seed)
    elif args.mode == "frozen":
        frozen(args.seeds, args.split, args.epochs, args.out)
    else:
        finetuned(args.run, args.out, args.note)


if __name__ == "__main__":
    main()
