"""Labelled JSONL: ``{"text": ..., "label": ...}`` or ``{"text": ..., "cats": {...}}``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import StreamTrfError


class BadTrainingData(StreamTrfError):
    """A training or evaluation file that does not follow the format."""


@dataclass(frozen=True)
class Labelled:
    text: str
    cats: dict[str, float]

    @property
    def label(self) -> str:
        return max(self.cats, key=self.cats.__getitem__)


def read_labelled(path: str | Path, limit: int | None = None) -> list[Labelled]:
    out: list[Labelled] = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise BadTrainingData(f"{path}:{n}: not JSON ({err})") from None
            if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
                raise BadTrainingData(f"{path}:{n}: needs a string 'text'")
            if isinstance(obj.get("label"), str):
                cats = {obj["label"]: 1.0}
            elif isinstance(obj.get("cats"), dict) and obj["cats"]:
                cats = {str(k): float(v) for k, v in obj["cats"].items()}
            else:
                raise BadTrainingData(f"{path}:{n}: needs 'label' (string) or 'cats' (object)")
            out.append(Labelled(obj["text"], cats))
            if limit is not None and len(out) >= limit:
                break
    if not out:
        raise BadTrainingData(f"{path} holds no examples")
    return out


def label_set(rows: list[Labelled]) -> list[str]:
    return sorted({k for r in rows for k in r.cats})


def is_exclusive(rows: list[Labelled]) -> bool:
    """Exclusive when every example has exactly one positive label."""
    return all(sum(1 for v in r.cats.values() if v > 0.5) == 1 for r in rows)


def truncate_to_wordpieces(text: str, tokenizer: object, max_wordpieces: int) -> str:
    """The longest prefix of ``text`` that ends on whitespace and holds at most
    ``max_wordpieces`` of the model's wordpieces (boundary tokens not counted); if the first
    word alone is over the budget, its first ``max_wordpieces`` pieces.

    Training on the head of long documents costs a fraction of the time of training on all of
    it, and a package description says what it is about in its first sentences.
    """
    if max_wordpieces <= 0:
        return text
    enc = tokenizer(  # type: ignore[operator]
        text,
        add_special_tokens=False,
        return_offsets_mapping=True,
        truncation=False,
        verbose=False,  # no "longer than the maximum sequence length" warning: we only count
    )
    offsets = enc["offset_mapping"]
    if len(offsets) <= max_wordpieces:
        return text
    # Cut where the first piece past the budget starts, then back off to a word boundary so that
    # no word is split in half.
    cut = offsets[max_wordpieces][0]
    if cut > 0 and not text[cut - 1].isspace() and not text[cut].isspace():
        space = max(text.rfind(" ", 0, cut), text.rfind("\n", 0, cut))
        if space > 0:
            cut = space
    return text[:cut].rstrip()


CLASS_WEIGHTINGS = ("none", "sqrt", "balanced")


def class_weights(rows: list[Labelled], labels: list[str], scheme: str) -> dict[str, float]:
    """Loss weights per label from the training set's label counts: "none" ({}), "sqrt"
    (inverse square root of the count) or "balanced" (inverse count). Scaled so that the mean
    weight over the training examples is 1, which keeps the loss's scale (and so the learning
    rates) what it is without weights.

    With skewed counts (here 157 to 642 docs a label) an unweighted loss pulls doubtful
    documents towards the big labels, which costs the small labels' recall and so macro-F1.
    """
    if scheme not in CLASS_WEIGHTINGS:
        raise ValueError(f"class weighting must be one of {CLASS_WEIGHTINGS}, got {scheme!r}")
    if scheme == "none":
        return {}
    counts = {label: sum(1 for r in rows if r.cats.get(label, 0.0) > 0.5) for label in labels}
    power = 0.5 if scheme == "sqrt" else 1.0
    raw = {label: (1.0 / max(c, 1)) ** power for label, c in counts.items()}
    mean = sum(raw[label] * counts[label] for label in labels) / max(sum(counts.values()), 1)
    return {label: raw[label] / mean for label in labels}
