"""Accuracy, per-label precision/recall/F1 and macro-F1 of a classifier pipeline."""

from __future__ import annotations

from typing import Any

from .data import Labelled


def evaluate(nlp: Any, rows: list[Labelled], batch_size: int = 64) -> dict[str, Any]:
    labels = sorted({k for r in rows for k in r.cats} | set(nlp.get_pipe("trf_textcat").labels))
    gold = [r.label for r in rows]
    pred = [
        max(d.cats, key=d.cats.__getitem__)
        for d in nlp.pipe([r.text for r in rows], batch_size=batch_size)
    ]
    return scores(gold, pred, labels)


def scores(gold: list[str], pred: list[str], labels: list[str]) -> dict[str, Any]:
    per_label: dict[str, dict[str, float]] = {}
    for label in labels:
        tp = sum(1 for g, p in zip(gold, pred) if g == label and p == label)
        fp = sum(1 for g, p in zip(gold, pred) if g != label and p == label)
        fn = sum(1 for g, p in zip(gold, pred) if g == label and p != label)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_label[label] = {"precision": precision, "recall": recall, "f1": f1, "support": tp + fn}
    present = [lab for lab in labels if per_label[lab]["support"] > 0]
    return {
        "accuracy": sum(1 for g, p in zip(gold, pred) if g == p) / max(len(gold), 1),
        "macro_f1": sum(per_label[lab]["f1"] for lab in present) / max(len(present), 1),
        "n": len(gold),
        "per_label": per_label,
    }


def format_table(result: dict[str, Any]) -> str:
    lines = [f"{'label':<16}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}"]
    for label, s in result["per_label"].items():
        lines.append(
            f"{label:<16}{s['precision']:>10.3f}{s['recall']:>10.3f}{s['f1']:>10.3f}"
            f"{s['support']:>10d}"
        )
    lines.append(f"{'accuracy':<16}{result['accuracy']:>30.3f}{result['n']:>10d}")
    lines.append(f"{'macro F1':<16}{result['macro_f1']:>30.3f}")
    return "\n".join(lines)
