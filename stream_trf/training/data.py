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
