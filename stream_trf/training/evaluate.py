"""How good a classifier is: spaCy's own text-classification figures (``Scorer.score_cats``, the
same definition ``spacy train`` and ``spacy evaluate`` select and report with), plus accuracy
and the expected calibration error of its probabilities."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from spacy.scorer import Scorer

from .calibrate import expected_calibration_error


def score(examples: Sequence[Any], labels: Sequence[str], exclusive: bool) -> dict[str, Any]:
    """Figures for examples whose predicted docs carry ``cats``.

    accuracy: for exclusive classes spaCy's micro-F1, which is the share of docs whose top label
    is right (each doc adds one true positive, or one false positive and one false negative);
    None for multi-label. macro_f1: the mean of the labels' F1 (spaCy's ``cats_macro_f``)."""
    labels = list(labels)
    cats = Scorer.score_cats(examples, "cats", labels=labels, multi_label=not exclusive)
    gold = np.array([[float(eg.reference.cats.get(k, 0.0)) for k in labels] for eg in examples])
    probs = np.array([[float(eg.predicted.cats.get(k, 0.0)) for k in labels] for eg in examples])
    per_type = cats["cats_f_per_type"]
    support = (gold > 0.5).sum(axis=0) if len(gold) else np.zeros(len(labels))
    return {
        "accuracy": cats["cats_micro_f"] if exclusive else None,
        "macro_f1": cats["cats_macro_f"],
        "micro_f1": cats["cats_micro_f"],
        "macro_auc": cats["cats_macro_auc"],
        "ece": expected_calibration_error(probs, gold, exclusive) if len(gold) else 0.0,
        "n": len(examples),
        "per_label": {
            label: {
                "precision": per_type[label]["p"],
                "recall": per_type[label]["r"],
                "f1": per_type[label]["f"],
                "support": int(support[i]),
            }
            for i, label in enumerate(labels)
        },
    }


def evaluate(nlp: Any, examples: Sequence[Any], batch_size: int = 64) -> dict[str, Any]:
    """Run ``nlp`` on the examples' texts and score its ``trf_textcat``."""
    textcat = nlp.get_pipe("trf_textcat")
    docs = nlp.pipe((eg.predicted for eg in examples), batch_size=batch_size)
    for eg, doc in zip(examples, docs):
        eg.predicted = doc
    labels = sorted(set(textcat.labels) | {k for eg in examples for k in eg.reference.cats})
    return score(examples, labels, textcat.exclusive)


def format_table(result: dict[str, Any]) -> str:
    lines = [f"{'label':<16}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}"]
    for label, s in result["per_label"].items():
        lines.append(
            f"{label:<16}{s['precision']:>10.3f}{s['recall']:>10.3f}{s['f1']:>10.3f}"
            f"{s['support']:>10d}"
        )
    if result["accuracy"] is not None:
        lines.append(f"{'accuracy':<16}{result['accuracy']:>30.3f}{result['n']:>10d}")
    lines.append(f"{'macro F1':<16}{result['macro_f1']:>30.3f}")
    lines.append(f"{'ECE':<16}{result['ece']:>30.3f}")
    return "\n".join(lines)
