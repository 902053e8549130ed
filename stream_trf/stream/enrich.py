"""A processed doc → the enriched record (a dict, then orjson bytes).

The light fields are always there; the heavy ones (tokens and their vectors, wordpieces,
alignment) only when the settings ask for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
from spacy.tokens import Doc

from ..pipeline.extensions import (
    T_IDX,
    T_IS_PUNCT,
    T_IS_SPACE,
    T_LENGTH,
    T_SENT_START,
    TOKEN_ATTRS,
    DocWordpieces,
    TransformerOutputs,
    doc_outputs,
    doc_pieces,
    token_rows,
)
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
    """One doc's enriched record (``enrich_batch`` of one)."""
    return enrich_batch([doc], [record], model, [timings], heavy, worker)[0]


def enrich_batch(
    docs: Sequence[Doc],
    records: Sequence[InputRecord],
    model: ModelInfo,
    timings: Sequence[dict[str, float]],
    heavy: HeavyFields | None = None,
    worker: str = "",
) -> list[dict[str, Any]]:
    """The enriched records of a buffer's docs. What comes from the docs' tokens (sentences,
    words), their wordpieces (unknown ones) and pooled outputs (doc vectors) is computed for
    all docs at once, over their arrays end to end: per-doc array calls cost more than the
    figures themselves."""
    heavy = heavy or HeavyFields()
    figures = _figures(docs)
    model_fields = {"name": model.name, "version": model.version}
    out = []
    for k, (doc, record) in enumerate(zip(docs, records)):
        rec: dict[str, Any] = {
            "schema": ENRICHED_SCHEMA,
            "id": record.id,
            "meta": record.meta,
            "model": dict(model_fields),
            "source": record.source.as_dict(),
            "sentences": figures.sentences[k],
            "n_tokens": len(doc),
            "n_words": figures.words[k],
            "n_wordpieces": figures.wordpieces[k],
            "windowed_wordpieces": figures.windowed[k],
            "doc_vector": encode(figures.vector(k, doc), heavy.vector_encoding),
        }
        if figures.unknown[k] is not None:
            rec["n_unknown_wordpieces"] = figures.unknown[k]
        cats = doc.cats
        if cats:
            label = max(cats, key=cats.__getitem__)
            rec["cats"] = {c: float(v) for c, v in cats.items()}
            rec["label"] = label
            rec["score"] = float(cats[label])
        if record.prediction is not None:
            production: dict[str, Any] = {
                "label": record.prediction.label,
                "score": record.prediction.score,
                "agrees": None,
            }
            if cats and record.prediction.label in cats:
                production["agrees"] = record.prediction.label == rec["label"]
            rec["production"] = production
        if heavy.tokens:
            rec["tokens"] = [t.text for t in doc]
            rec["token_vectors"] = encode(token_rows(doc), heavy.vector_encoding)
        if heavy.wordpieces:
            rec["wordpieces"] = list(doc._.trf_word_pieces_)
            rec["alignment"] = doc._.trf_alignment
        rec["timings"] = {name: round(v, 3) for name, v in timings[k].items()}
        if worker:
            rec["worker"] = worker
        out.append(rec)
    return out


@dataclass(frozen=True)
class _Figures:
    """Per doc of a batch: what its record reports."""

    sentences: list[list[list[int]]]
    words: list[int]
    wordpieces: list[int]
    windowed: list[int]
    unknown: list[int | None]
    pooled_vectors: npt.NDArray[np.float32] | None  # rows for the docs with pooled outputs
    pooled: list[bool]

    def vector(self, k: int, doc: Doc) -> Any:
        if self.pooled[k] and self.pooled_vectors is not None:
            return self.pooled_vectors[k]
        return doc.vector


def _figures(docs: Sequence[Doc]) -> _Figures:
    n = len(docs)
    arrays = [token_array(doc) for doc in docs]
    n_tok = np.fromiter(map(len, arrays), dtype=np.int64, count=n)
    doc_starts = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(n_tok, out=doc_starts[1:])
    tokens = np.concatenate(arrays) if n else np.zeros((0, len(TOKEN_ATTRS)), np.int64)
    owner = np.repeat(np.arange(n), n_tok)
    # sentences: a doc's first token starts one whatever its annotation says
    is_start = tokens[:, T_SENT_START] == 1
    is_start[doc_starts[:-1][n_tok > 0]] = True
    starts = np.flatnonzero(is_start)
    # a sentence ends before the next starts; a doc's last, at its last token
    last = np.append(starts[1:], len(tokens))[: len(starts)] - 1
    spans = np.stack(
        [tokens[starts, T_IDX], tokens[last, T_IDX] + tokens[last, T_LENGTH]], axis=1
    ).tolist()
    bounds = np.searchsorted(starts, doc_starts).tolist()
    words = np.bincount(
        owner,
        weights=(tokens[:, T_IS_SPACE] == 0) & (tokens[:, T_IS_PUNCT] == 0),
        minlength=n,
    )
    wps = [doc_pieces(doc) for doc in docs]
    outs = [doc_outputs(doc) for doc in docs]
    return _Figures(
        sentences=[spans[bounds[d] : bounds[d + 1]] for d in range(n)],
        words=words.astype(np.int64).tolist(),
        wordpieces=[0 if wp is None else len(wp.ids) for wp in wps],
        windowed=[0 if o is None else int(o.windowed_wordpieces) for o in outs],
        unknown=_unknown(wps),
        pooled_vectors=_pooled_means(outs),
        pooled=[
            o is not None and o.last_hidden_state is None and o.pooled is not None for o in outs
        ],
    )


def _unknown(wps: Sequence[DocWordpieces | None]) -> list[int | None]:
    """``count_unknown`` of each doc, in one pass when they share a tokenizer."""
    unk_ids = {None if wp is None else wp.unk_id for wp in wps}
    if len(unk_ids) != 1 or None in unk_ids:
        return [None if wp is None else _count_unknown(wp) for wp in wps]
    (unk,) = unk_ids
    held = [wp for wp in wps if wp is not None]
    n_wp = np.fromiter((len(wp.ids) for wp in held), dtype=np.int64, count=len(held))
    ids = np.concatenate([wp.ids for wp in held])
    boundary = np.concatenate([wp.is_boundary for wp in held])
    counts = np.bincount(
        np.repeat(np.arange(len(held)), n_wp), weights=(ids == unk) & ~boundary, minlength=len(held)
    )
    return counts.astype(np.int64).tolist()


def _pooled_means(outs: Sequence[TransformerOutputs | None]) -> npt.NDArray[np.float32] | None:
    """Per doc, ``PooledOutputs.mean`` (what ``doc.vector`` gives) for every doc whose
    outputs are pooled, in one reduction; other docs' rows are zeros (they use ``doc.vector``)."""
    pooled = [o.pooled if o is not None and o.last_hidden_state is None else None for o in outs]
    held = [p for p in pooled if p is not None]
    if not held:
        return None
    width = held[0].sentence_sums.shape[1]
    n_sent = np.fromiter(
        (0 if p is None else len(p.sentence_lengths) for p in pooled), dtype=np.int64,
        count=len(pooled),
    )  # fmt: skip
    sums = np.concatenate([p.sentence_sums for p in held]).reshape(-1, width)
    lengths = np.concatenate([p.sentence_lengths for p in held])
    totals = np.zeros((len(pooled), width), dtype=np.float32)
    filled = np.flatnonzero(n_sent)
    if len(filled):
        first = (np.cumsum(n_sent) - n_sent)[filled]
        totals[filled] = np.add.reduceat(sums, first, axis=0)
    owner = np.repeat(np.arange(len(pooled)), n_sent)
    n_rows = np.bincount(owner, weights=lengths, minlength=len(pooled)).astype(np.float32)
    return np.divide(totals, np.maximum(n_rows, 1)[:, None], dtype=np.float32)


def token_array(doc: Doc) -> np.ndarray:
    """The doc's ``TOKEN_ATTRS`` columns as int64 (SENT_START -1 stays -1): as the wordpiecer
    kept them (the sentences the model encoded), else from spaCy in one ``to_array`` call
    (iterating a doc builds a Python object per token, which cost more than the rest of a
    record together)."""
    wp = doc_pieces(doc)
    if wp is not None and len(wp.tokens) == len(doc):
        return wp.tokens
    return doc.to_array(list(TOKEN_ATTRS)).reshape(len(doc), len(TOKEN_ATTRS)).astype(np.int64)


def count_unknown(doc: Doc) -> int | None:
    """Content wordpieces that are the tokenizer's unknown token: text the model's vocabulary
    cannot represent (a drift signal). Boundary tokens are left out (GPT-2's unknown token is
    also its boundary token). None when the tokenizer has no unknown token."""
    data = doc_pieces(doc)
    return None if data is None else _count_unknown(data)


def _count_unknown(data: DocWordpieces) -> int | None:
    if data.unk_id is None:
        return None
    return int(np.count_nonzero((data.ids == data.unk_id) & ~data.is_boundary))


def dumps(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record, option=_ORJSON_OPTS)
