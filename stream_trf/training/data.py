"""Labelled data: this project's JSONL (``{"text": ..., "label": ...}`` or
``{"text": ..., "cats": {...}}``), and the same as spaCy's DocBin (``.spacy``), which
``spacy train`` reads.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import StreamTrfError
from ..text.wordpieces import content_offsets


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
    offsets = content_offsets(tokenizer, text)
    if len(offsets) <= max_wordpieces:
        return text
    # Cut where the first piece past the budget starts, then back off to a word boundary so that
    # no word is split in half.
    cut = offsets[max_wordpieces][0]
    if 0 < cut < len(text) and not text[cut - 1].isspace() and not text[cut].isspace():
        space = max(text.rfind(" ", 0, cut), text.rfind("\n", 0, cut))
        if space > 0:
            cut = space
    return text[:cut].rstrip()


def class_weights(rows: list[Labelled], labels: list[str], scheme: str) -> dict[str, float]:
    """The loss weights ``trf_textcat`` gives each label for these training rows (its
    ``class_weighting`` setting, computed from the same counts at initialize)."""
    from ..pipeline.textcat import weights_from_counts

    counts = {label: sum(1 for r in rows if r.cats.get(label, 0.0) > 0.5) for label in labels}
    return weights_from_counts(counts, scheme)


def full_cats(row: Labelled, labels: Sequence[str]) -> dict[str, float]:
    """Every label's value for one row (0 where the row does not name it), as spaCy's text
    classifiers and its scorer expect."""
    return {label: float(row.cats.get(label, 0.0)) for label in labels}


def to_docbin(rows: Sequence[Labelled], labels: Sequence[str], lang: str = "en") -> Any:
    """The rows as a spaCy DocBin: each text tokenized by a blank ``lang`` pipeline, with
    ``doc.cats`` over all ``labels``."""
    import spacy
    from spacy.tokens import DocBin

    nlp = spacy.blank(lang)
    docbin = DocBin(store_user_data=False)
    for row, doc in zip(rows, nlp.pipe(r.text for r in rows)):
        doc.cats = full_cats(row, labels)
        docbin.add(doc)
    return docbin


def read_examples(path: str | Path, nlp: Any, limit: int | None = None) -> list[Any]:
    """Labelled examples from JSONL or a ``.spacy`` DocBin, each a spaCy Example whose
    predicted doc is ``nlp.make_doc`` of the text and whose reference carries every label's
    value."""
    from spacy.tokens import DocBin
    from spacy.training import Example

    path = Path(path)
    if path.suffix == ".spacy":
        refs = list(DocBin().from_disk(path).get_docs(nlp.vocab))[:limit]
        if not refs:
            raise BadTrainingData(f"{path} holds no examples")
        return [Example(nlp.make_doc(ref.text), ref) for ref in refs]
    rows = read_labelled(path, limit)
    labels = label_set(rows)
    if "trf_textcat" in nlp.pipe_names:
        labels = sorted(set(labels) | set(nlp.get_pipe("trf_textcat").labels))
    return [Example.from_dict(nlp.make_doc(r.text), {"cats": full_cats(r, labels)}) for r in rows]
