"""A processed doc → the enriched record (a dict, then orjson bytes).

The light fields are always there; the heavy ones (tokens and their vectors, wordpieces,
alignment) only when the settings ask for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from spacy.attrs import IDX, IS_PUNCT, IS_SPACE, LENGTH, SENT_START
from spacy.tokens import Doc

from ..pipeline.extensions import token_rows
from ..schemas.vectors import encode
from .records import InputRecord

ENRICHED_SCHEMA = "stream_trf/enriched/v1"
_ORJSON_OPTS = orjson.OPT_SERIALIZE_NUMPY


@dataclass(frozen=True)
class ModelInfo:
    name: str
    version: str


@dataclass(frozen=True)
class HeavyFields:
    tokens: bool = False  # token texts and their doc.tensor rows
    wordpieces: bool = False  # wordpiece strings and the token → wordpiece alignment
    vector_encoding: str = "json"  # doc_vector and token_vectors (stream/vectors.py)


def enrich(
    doc: Doc,
    record: InputRecord,
    model: ModelInfo,
    timings: dict[str, float],
    heavy: HeavyFields | None = None,
    worker: str = "",
) -> dict[str, Any]:
    heavy = heavy or HeavyFields()
    arr = token_array(doc)
    out: dict[str, Any] = {
        "schema": ENRICHED_SCHEMA,
        "id": record.id,
        "meta": record.meta,
        "model": {"name": model.name, "version": model.version},
        "source": record.source.as_dict(),
        "sentences": sentence_spans(doc, arr),
        "n_tokens": len(doc),
        "n_words": count_words(doc, arr),
        "n_wordpieces": len(doc._.trf_word_pieces),
        "windowed_wordpieces": int(doc._.trf_windowed_wordpieces),
        "doc_vector": encode(doc.vector, heavy.vector_encoding),
    }
    unknown = count_unknown(doc)
    if unknown is not None:
        out["n_unknown_wordpieces"] = unknown
    if doc.cats:
        label = max(doc.cats, key=doc.cats.__getitem__)
        out["cats"] = {k: float(v) for k, v in doc.cats.items()}
        out["label"] = label
        out["score"] = float(doc.cats[label])
    if record.prediction is not None:
        production: dict[str, Any] = {
            "label": record.prediction.label,
            "score": record.prediction.score,
            "agrees": None,
        }
        if doc.cats and record.prediction.label in doc.cats:
            production["agrees"] = record.prediction.label == out["label"]
        out["production"] = production
    if heavy.tokens:
        out["tokens"] = [t.text for t in doc]
        out["token_vectors"] = encode(token_rows(doc), heavy.vector_encoding)
    if heavy.wordpieces:
        out["wordpieces"] = list(doc._.trf_word_pieces_)
        out["alignment"] = doc._.trf_alignment
    out["timings"] = {k: round(v, 3) for k, v in timings.items()}
    if worker:
        out["worker"] = worker
    return out


# What a record needs of a doc's tokens, in one ``to_array`` call: iterating a doc builds a
# Python object per token, which cost more than the rest of a record together.
_ATTRS = [SENT_START, IDX, LENGTH, IS_SPACE, IS_PUNCT]


def token_array(doc: Doc) -> np.ndarray:
    """The doc's ``_ATTRS`` columns as int64 (SENT_START -1 stays -1)."""
    return doc.to_array(_ATTRS).reshape(len(doc), len(_ATTRS)).astype(np.int64)


def sentence_spans(doc: Doc, arr: np.ndarray | None = None) -> list[list[int]]:
    """``[[s.start_char, s.end_char] for s in doc.sents]``, from the token array."""
    if len(doc) == 0:
        return []
    arr = token_array(doc) if arr is None else arr
    starts = np.flatnonzero(arr[:, 0] == 1)
    if len(starts) == 0 or starts[0] != 0:
        starts = np.concatenate([[0], starts])
    last = np.append(starts[1:], len(doc)) - 1
    ends = arr[last, 1] + arr[last, 2]
    return np.stack([arr[starts, 1], ends], axis=1).tolist()


def count_words(doc: Doc, arr: np.ndarray | None = None) -> int:
    """Tokens that are neither whitespace nor punctuation."""
    if len(doc) == 0:
        return 0
    arr = token_array(doc) if arr is None else arr
    return int(np.count_nonzero((arr[:, 3] == 0) & (arr[:, 4] == 0)))


def count_unknown(doc: Doc) -> int | None:
    """Content wordpieces that are the tokenizer's unknown token: text the model's vocabulary
    cannot represent (a drift signal). Boundary tokens are left out (GPT-2's unknown token is
    also its boundary token). None when the tokenizer has no unknown token."""
    data = doc._.trf_pieces
    if data is None or data.unk_id is None:
        return None
    return int(np.count_nonzero((data.ids == data.unk_id) & ~data.is_boundary))


def dumps(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record, option=_ORJSON_OPTS)
