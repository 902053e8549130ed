"""The labelled documents (a Debian package description and its section) and the input records
made from them, each carrying the production model's prediction."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Record = dict[str, Any]


@dataclass(frozen=True)
class LabelledDoc:
    id: str
    text: str
    label: str  # the Debian section
    split: str  # "train" or "dev"


def read_labelled(path: Path, split: str) -> list[LabelledDoc]:
    """JSONL with ``id``, ``text`` and ``label``."""
    docs = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                obj = json.loads(line)
                docs.append(LabelledDoc(str(obj["id"]), obj["text"], str(obj["label"]), split))
    return docs


def default_sections_dir() -> Path | None:
    """``shared/data/debian-sections`` beside the working directory or the repository."""
    here = Path(__file__).resolve()
    for base in (Path.cwd(), Path.cwd().parent, here.parents[2], here.parents[3]):
        candidate = base / "shared" / "data" / "debian-sections"
        if (candidate / "train.jsonl").exists():
            return candidate
    return None


def input_records(
    docs: Sequence[LabelledDoc], predictions: dict[str, tuple[str, float]], prefix: str = ""
) -> list[Record]:
    """Input records (``input.v1.json``): the text, the section in ``meta``, the prediction."""
    out = []
    for d in docs:
        rec: Record = {
            "id": prefix + d.id,
            "text": d.text,
            "meta": {"section": d.label, "split": d.split},
        }
        if d.id in predictions:
            label, score = predictions[d.id]
            rec["prediction"] = {"label": label, "score": score}
        out.append(rec)
    return out
