"""`stream-trf train`: fine-tune (or train a head over a frozen) transformer on labelled JSONL.

Fine-tuning is ``spacy train``: the JSONL becomes DocBins, the recipe becomes a spaCy config
(training/config.py, written to OUTPUT/config.cfg), and spaCy's own ``init_nlp`` and training
loop run it — the head is probed on the frozen transformer during initialize, then transformer
and head train together, one evaluation per epoch, ``model-best`` chosen on dev macro-F1.

Head-only training (``--freeze-transformer``) builds the same pipeline from the same config, but
computes the transformer's pooled features once and trains only the head on them, epoch after
epoch (the code that probes the head before fine-tuning): spaCy's loop would run the frozen
transformer again for every batch of every epoch.

Both then fit the classifier's temperature on dev (training/calibrate.py) for ``model-best`` and
``model-last``, and report the expected calibration error before and after.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from .config import Recipe, textcat_config
from .data import Labelled, full_cats, is_exclusive, label_set, read_labelled, to_docbin
from .evaluate import score


def train(
    train_path: str | Path,
    dev_path: str | Path,
    output: str | Path,
    *,
    recipe: Recipe,
    limit: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train as ``recipe`` says; returns the summary written to OUTPUT/training.json."""
    t_start = time.time()
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    rows = read_labelled(train_path, limit)
    dev = read_labelled(dev_path)
    labels = label_set(rows)
    recipe = _with_data(recipe, labels, is_exclusive(rows))
    config = textcat_config(recipe, n_train=len(rows))
    corpus = output / "corpus"
    corpus.mkdir(exist_ok=True)
    to_docbin(rows, labels, recipe.lang).to_disk(corpus / "train.spacy")
    to_docbin(dev, labels, recipe.lang).to_disk(corpus / "dev.spacy")
    config = config.merge(
        {
            "paths": {"train": str(corpus / "train.spacy"), "dev": str(corpus / "dev.spacy")},
            "training": {
                "logger": {
                    "@loggers": "stream_trf.TrainingLog.v1",
                    "path": str(output / "training-log.jsonl"),
                    "progress": progress,
                }
            },
        }
    )
    config.to_disk(output / "config.cfg")
    if recipe.freeze:
        log, probe_seconds = _train_head_only(config, rows, dev, labels, output, recipe), 0.0
    else:
        log, probe_seconds = _fine_tune(config, output, recipe, progress)
    calibration = _calibrate(output, dev, labels)
    summary = {
        "train": str(train_path),
        "dev": str(dev_path),
        "model": recipe.model,
        "epochs": recipe.epochs,
        "freeze_transformer": recipe.freeze,
        "seed": recipe.seed,
        "batch_size": recipe.batch_size,
        "learn_rate": recipe.learn_rate,
        "head_learn_rate": recipe.head_learn_rate,
        "warmup": recipe.warmup,
        "pooling": recipe.pooling,
        "max_wordpieces": None if recipe.freeze else recipe.max_wordpieces,
        "probe_epochs": 0 if recipe.freeze else recipe.probe_epochs,
        "probe_seconds": probe_seconds,
        "words_per_batch": recipe.words_per_batch,
        "class_weighting": recipe.class_weighting,
        "class_weights": _saved_class_weights(output / "model-last"),
        "labels": labels,
        "exclusive": recipe.exclusive,
        "log": log,
        "best_dev_macro_f1": max(e["dev_macro_f1"] for e in log),
        "calibration": calibration,
        "seconds": round(time.time() - t_start, 1),
    }
    (output / "training.json").write_text(json.dumps(summary, indent=2) + "\n")
    plot_curve(log, output / "training-curve.png")
    return summary


def _with_data(recipe: Recipe, labels: list[str], exclusive: bool) -> Recipe:
    from dataclasses import replace

    return replace(recipe, labels=tuple(labels), exclusive=exclusive)


def _fine_tune(
    config: Any, output: Path, recipe: Recipe, progress: bool
) -> tuple[list[dict[str, Any]], float]:
    """spaCy's ``init_nlp`` (which probes the head) and its training loop, on ``config``."""
    from spacy.training.initialize import init_nlp
    from spacy.training.loop import train as train_loop

    t0 = time.time()
    nlp = init_nlp(config)
    probe_seconds = round(time.time() - t0, 1)
    quiet = io.StringIO()
    train_loop(nlp, output, stdout=sys.stdout if progress else quiet, stderr=quiet)
    spe = int(config["training"]["eval_frequency"])
    log = []
    for line in (output / "training-log.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record["step"] == 0:
            continue  # spaCy's loop evaluates after the first batch too
        log.append(
            {
                "epoch": round(record["step"] / spe),
                "step": record["step"],
                "loss": record["losses"].get("trf_textcat", 0.0),
                "dev_accuracy": record["scores"].get("cats_micro_f"),
                "dev_macro_f1": record["scores"].get("cats_macro_f"),
                "seconds": round(record["seconds"] + probe_seconds, 1),
            }
        )
    return log, probe_seconds


def _train_head_only(
    config: Any,
    rows: list[Labelled],
    dev: list[Labelled],
    labels: list[str],
    output: Path,
    recipe: Recipe,
) -> list[dict[str, Any]]:
    """The frozen transformer's features once, then the head alone, epoch after epoch."""
    from spacy.training import Example
    from spacy.training.initialize import init_nlp

    t0 = time.time()
    nlp = init_nlp(config)
    textcat: Any = nlp.get_pipe("trf_textcat")
    train_features = textcat.head_features([r.text for r in rows], desc="train rows")
    dev_features = textcat.head_features([r.text for r in dev], desc="dev rows")
    golds = np.stack([np.array(list(full_cats(r, labels).values()), np.float32) for r in rows])
    dev_examples = [
        Example.from_dict(nlp.make_doc(r.text), {"cats": full_cats(r, labels)}) for r in dev
    ]
    log: list[dict[str, Any]] = []
    best = -1.0

    def after_epoch(epoch: int, loss: float) -> None:
        nonlocal best
        probs = textcat.probabilities(textcat.logits(dev_features))
        for eg, p in zip(dev_examples, probs):
            eg.predicted.cats = {k: float(v) for k, v in zip(textcat.labels, p)}
        result = score(dev_examples, labels, textcat.exclusive)
        log.append(
            {
                "epoch": epoch,
                "loss": loss,
                "dev_accuracy": result["accuracy"],
                "dev_macro_f1": result["macro_f1"],
                "seconds": round(time.time() - t0, 1),
            }
        )
        nlp.to_disk(output / "model-last")
        if result["macro_f1"] > best:
            best = result["macro_f1"]
            nlp.to_disk(output / "model-best")

    textcat.fit_head(
        train_features,
        golds,
        epochs=recipe.epochs,
        learn_rate=recipe.head_learn_rate,
        batch_size=32,
        seed=recipe.seed,
        desc="head only",
        after_epoch=after_epoch,
    )
    return log


def _calibrate(output: Path, dev: list[Labelled], labels: list[str]) -> dict[str, Any]:
    """Fit the temperature of model-best and model-last on dev; save it in each. When the last
    evaluation was the best, spaCy's loop saved the same weights twice: fitted once."""
    import stream_trf

    from .calibrate import calibrate

    gold = np.stack([np.array(list(full_cats(r, labels).values()), np.float32) for r in dev])
    out: dict[str, Any] = {}
    for name in ("model-best", "model-last"):
        if name == "model-last" and _same_weights(output / "model-best", output / name):
            shutil.copy(
                output / "model-best" / "trf_textcat" / "cfg", output / name / "trf_textcat"
            )
            out[name] = dict(out["model-best"], same_as="model-best")
            continue
        nlp = stream_trf.load(output / name)
        textcat = nlp.get_pipe("trf_textcat")
        order = [labels.index(label) for label in textcat.labels]
        features = textcat.head_features([r.text for r in dev], desc=f"calibrate {name}")
        out[name] = calibrate(textcat, features, gold[:, order]).to_dict()
        nlp.get_pipe("trf_textcat").to_disk(output / name / "trf_textcat")
    return out


def _same_weights(a: Path, b: Path) -> bool:
    """Whether two saved pipelines hold byte-identical weights (transformer and head)."""
    for part in ("trf_tok2vec/transformer/model.safetensors", "trf_textcat/head.npz"):
        fa, fb = a / part, b / part
        if not (fa.exists() and fb.exists()) or fa.stat().st_size != fb.stat().st_size:
            return False
        if hashlib.sha256(fa.read_bytes()).digest() != hashlib.sha256(fb.read_bytes()).digest():
            return False
    return True


def _saved_class_weights(model_dir: Path) -> dict[str, float]:
    cfg = json.loads((model_dir / "trf_textcat" / "cfg").read_text())
    return {k: round(v, 4) for k, v in (cfg.get("class_weights") or {}).items()}


def plot_curve(log: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    epochs = [e["epoch"] for e in log]
    ax1.plot(epochs, [e["loss"] for e in log], "o-")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("mean batch loss")
    ax1.set_title("training loss")
    ax1.set_xticks(epochs)
    ax2.plot(epochs, [e["dev_accuracy"] or 0.0 for e in log], "o-", label="accuracy")
    ax2.plot(epochs, [e["dev_macro_f1"] for e in log], "s-", label="macro-F1")
    ax2.set_xlabel("epoch")
    ax2.set_xticks(epochs)
    ax2.set_title("dev")
    ax2.set_ylim(0, 1)
    ax2.grid(alpha=0.3)
    ax2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
