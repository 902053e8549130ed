"""`stream-trf train`: fine-tune (or train a head over a frozen) transformer on labelled JSONL.

Full fine-tuning goes through spaCy's ``nlp.update`` (the gradient-buffer mechanism of
pipeline/training.py). Head-only training computes the transformer's rows once and then trains
only the head, epoch after epoch, without running the transformer again.
"""

from __future__ import annotations

import json
import math
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from spacy.training import Example

from .data import Labelled, is_exclusive, label_set, read_labelled
from .evaluate import scores


def _seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train(
    train_path: str | Path,
    dev_path: str | Path,
    output: str | Path,
    *,
    model: str,
    epochs: int = 2,
    freeze: bool = False,
    seed: int = 0,
    batch_size: int = 16,
    learn_rate: float = 5e-5,
    head_learn_rate: float | None = None,
    warmup: float = 0.1,
    pooling: str = "cls",
    limit: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    from tqdm import tqdm

    import stream_trf

    _seed(seed)
    t_start = time.time()
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    rows = read_labelled(train_path, limit)
    dev = read_labelled(dev_path)
    labels = label_set(rows)
    exclusive = is_exclusive(rows)
    steps_per_epoch = math.ceil(len(rows) / batch_size)
    total = epochs * steps_per_epoch
    nlp = stream_trf.load(
        model,
        classifier=None,  # a new head, not the shipped one
        grad_factor=0.0 if freeze else 1.0,
        learn_rate=learn_rate,
        warmup_steps=int(warmup * total),
        total_steps=total,
    )
    head_lr = head_learn_rate if head_learn_rate is not None else (1e-2 if freeze else 1e-3)
    tc = nlp.add_pipe(
        "trf_textcat",
        config={"exclusive_classes": exclusive, "learn_rate": head_lr, "pooling": pooling},
    )
    for label in labels:
        tc.add_label(label)

    def example(doc: Any, row: Labelled) -> Example:
        cats = {label: float(row.cats.get(label, 0.0)) for label in labels}
        return Example.from_dict(doc, {"cats": cats})

    bar_opts = {"disable": not progress, "unit": "doc", "dynamic_ncols": True}
    if freeze:
        # The transformer never changes: run it once over train and dev.
        with tqdm(total=len(rows) + len(dev), desc="transformer rows (frozen)", **bar_opts) as bar:
            train_docs = []
            for doc in nlp.pipe((r.text for r in rows), disable=["trf_textcat"], batch_size=64):
                train_docs.append(doc)
                bar.update(1)
            dev_docs = []
            for doc in nlp.pipe((r.text for r in dev), disable=["trf_textcat"], batch_size=64):
                dev_docs.append(doc)
                bar.update(1)
        examples = [example(doc, r) for doc, r in zip(train_docs, rows)]
    else:
        examples = [example(nlp.make_doc(r.text), r) for r in rows]
        dev_docs = []
    nlp.initialize(lambda: examples[:1])
    optimizer = nlp.resume_training()

    log: list[dict[str, Any]] = []
    losses_per_step: list[float] = []
    best = -1.0
    for epoch in range(1, epochs + 1):
        order = list(range(len(examples)))
        random.Random(seed + epoch).shuffle(order)
        running = 0.0
        with tqdm(total=len(order), desc=f"epoch {epoch}/{epochs}", **bar_opts) as bar:
            for k in range(0, len(order), batch_size):
                batch = [examples[i] for i in order[k : k + batch_size]]
                losses: dict[str, float] = {}
                if freeze:
                    tc.update(batch, drop=0.1, losses=losses)
                    tc.finish_update()
                else:
                    nlp.update(batch, sgd=optimizer, losses=losses, drop=0.1)
                loss = losses["trf_textcat"]
                losses_per_step.append(loss)
                running = loss if k == 0 else 0.95 * running + 0.05 * loss
                bar.set_postfix(loss=f"{running:.3f}")
                bar.update(len(batch))
        if freeze:
            pred_docs = list(dev_docs)
            tc.set_annotations(pred_docs, tc.predict(pred_docs))
        else:
            pred_docs = list(nlp.pipe((r.text for r in dev), batch_size=64))
        pred = [max(d.cats, key=d.cats.__getitem__) for d in pred_docs]
        result = scores([r.label for r in dev], pred, labels)
        entry = {
            "epoch": epoch,
            "loss": float(np.mean(losses_per_step[-steps_per_epoch:])),
            "dev_accuracy": result["accuracy"],
            "dev_macro_f1": result["macro_f1"],
            "seconds": round(time.time() - t_start, 1),
        }
        log.append(entry)
        if progress:
            print(
                f"epoch {epoch}: loss {entry['loss']:.4f}  dev accuracy {entry['dev_accuracy']:.4f}"
                f"  macro-F1 {entry['dev_macro_f1']:.4f}  ({entry['seconds']:.0f}s)",
                flush=True,
            )
        nlp.to_disk(output / "model-last")
        if result["macro_f1"] > best:
            best = result["macro_f1"]
            nlp.to_disk(output / "model-best")
    summary = {
        "train": str(train_path),
        "dev": str(dev_path),
        "model": model,
        "epochs": epochs,
        "freeze_transformer": freeze,
        "seed": seed,
        "batch_size": batch_size,
        "learn_rate": learn_rate,
        "head_learn_rate": head_lr,
        "pooling": pooling,
        "labels": labels,
        "exclusive": exclusive,
        "log": log,
        "best_dev_macro_f1": best,
        "seconds": round(time.time() - t_start, 1),
    }
    (output / "training.json").write_text(json.dumps(summary, indent=2) + "\n")
    plot_curve(losses_per_step, log, output / "training-curve.png")
    return summary


def plot_curve(losses: list[float], log: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    ax1.plot(losses, lw=0.8, alpha=0.5, label="batch loss")
    if len(losses) >= 10:
        k = max(5, len(losses) // 50)
        smooth = np.convolve(losses, np.ones(k) / k, mode="valid")
        ax1.plot(np.arange(k - 1, len(losses)), smooth, lw=2, label=f"mean of {k}")
    ax1.set_xlabel("step")
    ax1.set_ylabel("loss")
    ax1.set_title("training loss")
    ax1.legend()
    epochs = [e["epoch"] for e in log]
    ax2.plot(epochs, [e["dev_accuracy"] for e in log], "o-", label="accuracy")
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
