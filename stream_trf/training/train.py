"""`stream-trf train`: fine-tune (or train a head over a frozen) transformer on labelled JSONL.

Full fine-tuning goes through spaCy's ``nlp.update`` (the gradient-buffer mechanism of
pipeline/training.py). Head-only training computes the transformer's rows once and then trains
only the head, epoch after epoch, without running the transformer again.

Fine-tuning starts from a probed head ("linear probing, then fine-tuning"): a few cheap epochs of
head-only training on frozen rows first, so that the transformer's first updates follow a head
that already points the right way instead of a random one. It trains on the first
``max_wordpieces`` wordpieces of each document (most of the cost of an epoch is in the long tail
of long documents) and predicts on whole documents.
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

from .data import (
    Labelled,
    class_weights,
    is_exclusive,
    label_set,
    read_labelled,
    truncate_to_wordpieces,
)
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
    epochs: int = 3,
    freeze: bool = False,
    seed: int = 0,
    batch_size: int = 16,
    learn_rate: float = 1e-4,
    head_learn_rate: float | None = None,
    warmup: float = 0.1,
    pooling: str = "doc_mean",
    max_wordpieces: int = 64,
    probe_epochs: int = 10,
    words_per_batch: int = 1000,
    class_weighting: str = "sqrt",
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
        words_per_batch=words_per_batch,
        grad_factor=0.0 if freeze else 1.0,
        learn_rate=learn_rate,
        warmup_steps=int(warmup * total),
        total_steps=total,
    )
    probe_lr = 1e-2
    head_lr = head_learn_rate if head_learn_rate is not None else (probe_lr if freeze else 1e-3)
    tc = nlp.add_pipe(
        "trf_textcat",
        config={
            "exclusive_classes": exclusive,
            "learn_rate": head_lr,
            "pooling": pooling,
            # Serving reads what fine-tuning trained on: the head of each doc.
            "max_wordpieces": 0 if freeze else max_wordpieces,
        },
    )
    for label in labels:
        tc.add_label(label)
    weights = class_weights(rows, labels, class_weighting)
    tc.set_class_weights(weights)

    def example(doc: Any, row: Labelled) -> Example:
        cats = {label: float(row.cats.get(label, 0.0)) for label in labels}
        return Example.from_dict(doc, {"cats": cats})

    bar_opts = {"disable": not progress, "unit": "doc", "dynamic_ncols": True}
    if freeze:
        train_texts = [r.text for r in rows]
    else:
        tokenizer = nlp.get_pipe("trf_wordpiecer").tokenizer
        train_texts = [truncate_to_wordpieces(r.text, tokenizer, max_wordpieces) for r in rows]

    def frozen_docs(texts: list[str], desc: str) -> list[Any]:
        docs = []
        with tqdm(total=len(texts), desc=desc, **bar_opts) as bar:
            for doc in nlp.pipe(texts, disable=["trf_textcat"], batch_size=64):
                docs.append(doc)
                bar.update(1)
        return docs

    dev_docs: list[Any] = []
    if freeze:
        # The transformer never changes: run it once over train and dev.
        examples = [example(d, r) for d, r in zip(frozen_docs(train_texts, "train rows"), rows)]
        dev_docs = frozen_docs([r.text for r in dev], "dev rows")
    else:
        examples = [example(nlp.make_doc(t), r) for t, r in zip(train_texts, rows)]
    nlp.initialize(lambda: examples[:1])
    optimizer = nlp.resume_training()

    def head_epoch(head_examples: list[Example], epoch: int) -> None:
        """One head-only epoch over docs whose rows are already computed (frozen)."""
        order = list(range(len(head_examples)))
        random.Random(seed + 1000 + epoch).shuffle(order)
        for k in range(0, len(order), 32):
            tc.update([head_examples[i] for i in order[k : k + 32]], drop=0.1, losses={})
            tc.finish_update()

    probe_seconds = 0.0
    if not freeze and probe_epochs > 0:
        t_probe = time.time()
        probe = [example(d, r) for d, r in zip(frozen_docs(train_texts, "probe rows"), rows)]
        tc.cfg["learn_rate"] = probe_lr
        with tqdm(
            total=probe_epochs, desc="probe (head only)", **{**bar_opts, "unit": "epoch"}
        ) as bar:
            for probe_epoch in range(1, probe_epochs + 1):
                head_epoch(probe, probe_epoch)
                bar.update(1)
        del probe
        # Fine-tuning starts with a fresh head optimizer at the fine-tuning head rate.
        tc.cfg["learn_rate"] = head_lr
        tc._optimizer = None
        probe_seconds = round(time.time() - t_probe, 1)

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
        "max_wordpieces": None if freeze else max_wordpieces,
        "probe_epochs": 0 if freeze else probe_epochs,
        "probe_seconds": probe_seconds,
        "words_per_batch": words_per_batch,
        "class_weighting": class_weighting,
        "class_weights": {k: round(v, 4) for k, v in weights.items()},
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
