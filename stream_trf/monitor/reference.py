"""The reference a model's stream is compared with: what "normal" looked like.

A :class:`Reference` summarises enriched records: the transformer's label distribution and mean
confidence, the agreement with the production model, the mean doc vector and a capped random
sample of doc vectors (for the two-sample test), and text figures. It is built either from the
first N records of a model's stream (the monitor does this by itself) or from a file or topic of
enriched records (``stream-trf reference``), and saved as one JSON file so that every worker
compares with the same thing and a restart does not forget it.
"""

from __future__ import annotations

import base64
import json
import math
import os
import random
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..schemas.vectors import decode

REFERENCE_FORMAT = "stream_trf/reference/v1"
DEFAULT_SAMPLE_SIZE = 500

FloatArray = npt.NDArray[np.float32]


def text_figures(record: dict[str, Any]) -> tuple[int, int, int, int, int | None]:
    """(words, sentences, wordpieces, windowed wordpieces, unknown wordpieces or None) of one
    enriched record; the one place that reads these fields."""
    unknown = record.get("n_unknown_wordpieces")
    return (
        int(record.get("n_words", 0)),
        len(record.get("sentences") or ()),
        int(record.get("n_wordpieces", 0)),
        int(record.get("windowed_wordpieces", 0)),
        None if unknown is None else int(unknown),
    )


def source_key(record: dict[str, Any]) -> tuple[Any, Any, Any] | None:
    """Where the record's input was read (topic, partition, offset): the same for duplicates."""
    src = record.get("source")
    if not isinstance(src, dict):
        return None
    return (src.get("topic"), src.get("partition"), src.get("offset"))


def model_key(record: dict[str, Any]) -> tuple[str, str]:
    model = record.get("model") or {}
    return (str(model.get("name", "")), str(model.get("version", "")))


@dataclass
class TextSums:
    """Running sums for the text figures (shared by references and windows).

    Besides the sums it keeps second moments, so that each figure also has a standard error:
    text lengths are heavy-tailed (one 5,000-wordpiece description among a hundred short ones
    moves a window's windowed share by 0.2), and an alert threshold that ignores how noisy a
    window's figure is fires on such windows. See :meth:`standard_errors`.
    """

    documents: int = 0
    words: int = 0
    sentences: int = 0
    wordpieces: int = 0
    windowed: int = 0
    unknown: int = 0
    unknown_wordpieces: int = 0  # wordpieces of the records that carry an unknown count
    unknown_documents: int = 0  # records that carry an unknown count
    # second moments (floats: squares of long documents' counts add up fast)
    words_sq: float = 0.0
    sentences_sq: float = 0.0
    wordpieces_sq: float = 0.0
    windowed_sq: float = 0.0
    windowed_x_wordpieces: float = 0.0
    unknown_sq: float = 0.0
    unknown_x_wordpieces: float = 0.0
    unknown_wordpieces_sq: float = 0.0

    def add(self, record: dict[str, Any]) -> None:
        words, sentences, wordpieces, windowed, unknown = text_figures(record)
        self.documents += 1
        self.words += words
        self.sentences += sentences
        self.wordpieces += wordpieces
        self.windowed += windowed
        self.words_sq += float(words) ** 2
        self.sentences_sq += float(sentences) ** 2
        self.wordpieces_sq += float(wordpieces) ** 2
        self.windowed_sq += float(windowed) ** 2
        self.windowed_x_wordpieces += float(windowed) * wordpieces
        if unknown is not None:
            self.unknown += unknown
            self.unknown_wordpieces += wordpieces
            self.unknown_documents += 1
            self.unknown_sq += float(unknown) ** 2
            self.unknown_x_wordpieces += float(unknown) * wordpieces
            self.unknown_wordpieces_sq += float(wordpieces) ** 2

    def figures(self) -> dict[str, float | None]:
        n = self.documents
        return {
            "mean_words": self.words / n if n else None,
            "mean_sentences": self.sentences / n if n else None,
            "windowed_share": self.windowed / self.wordpieces if self.wordpieces else None,
            "unknown_share": (
                self.unknown / self.unknown_wordpieces if self.unknown_wordpieces else None
            ),
        }

    def standard_errors(self) -> dict[str, float | None]:
        """Standard error of each figure, treating documents as a random sample.

        Means: s / √n. Shares are ratios of sums (Σy / Σx over documents), whose linearised
        (delta-method) variance is Σ(y − R·x)² / (n (n − 1) x̄²) with R the share; the sum of
        squares expands into the kept moments. None with fewer than two documents.
        """
        n = self.documents

        def mean_se(total: float, total_sq: float) -> float | None:
            if n < 2:
                return None
            var = max(total_sq - total * total / n, 0.0) / (n - 1)
            return math.sqrt(var / n)

        def ratio_se(m: int, y: float, x: float, yy: float, xy: float, xx: float) -> float | None:
            if m < 2 or x <= 0:
                return None
            r = y / x
            resid_sq = max(yy - 2 * r * xy + r * r * xx, 0.0)
            return math.sqrt(resid_sq / (m * (m - 1))) / (x / m)

        return {
            "mean_words": mean_se(self.words, self.words_sq),
            "mean_sentences": mean_se(self.sentences, self.sentences_sq),
            "windowed_share": ratio_se(
                n,
                self.windowed,
                self.wordpieces,
                self.windowed_sq,
                self.windowed_x_wordpieces,
                self.wordpieces_sq,
            ),
            "unknown_share": ratio_se(
                self.unknown_documents,
                self.unknown,
                self.unknown_wordpieces,
                self.unknown_sq,
                self.unknown_x_wordpieces,
                self.unknown_wordpieces_sq,
            ),
        }


class VectorReservoir:
    """A uniform random sample of at most ``size`` vectors from a stream (reservoir sampling),
    plus their running sum; seeded, so the same stream gives the same sample. The draws come
    from Python's ``random`` (a tenth of a microsecond; numpy's generator costs microseconds a
    call, and the worker draws one per record)."""

    def __init__(self, size: int, seed: int = 0) -> None:
        self.size = size
        self.seen = 0
        self.rows: list[FloatArray] = []
        self.total: npt.NDArray[np.float64] | None = None
        self._rng = random.Random(seed)

    def add(self, vector: Any) -> None:
        v = decode(vector).ravel()
        if v.size == 0 or not np.all(np.isfinite(v)):
            return
        if self.total is None:
            self.total = np.zeros(v.size, dtype=np.float64)
        elif v.size != self.total.size:
            return  # a different width: not comparable, left out
        self.total += v
        self.seen += 1
        if len(self.rows) < self.size:
            self.rows.append(v)
        else:
            j = self._rng.randrange(self.seen)
            if j < self.size:
                self.rows[j] = v

    def mean(self) -> npt.NDArray[np.float64] | None:
        return None if self.total is None or not self.seen else self.total / self.seen

    def sample(self) -> FloatArray | None:
        return np.stack(self.rows) if self.rows else None


@dataclass
class Reference:
    """What normal looked like for one model's stream."""

    documents: int
    source: str
    model: dict[str, str] | None = None
    label_counts: dict[str, int] = field(default_factory=dict)
    mean_confidence: float | None = None
    compared: int = 0
    agree: int = 0
    mean_vector: npt.NDArray[np.float64] | None = None
    vector_sample: FloatArray | None = None
    text: dict[str, float | None] = field(default_factory=dict)
    # standard errors of the text figures (absent from files written before they existed)
    text_se: dict[str, float | None] = field(default_factory=dict)
    created: float = field(default_factory=time.time)

    @property
    def label_distribution(self) -> dict[str, float]:
        total = sum(self.label_counts.values())
        return {k: v / total for k, v in sorted(self.label_counts.items())} if total else {}

    @property
    def agreement_ratio(self) -> float | None:
        return self.agree / self.compared if self.compared else None

    @property
    def width(self) -> int | None:
        return None if self.mean_vector is None else int(self.mean_vector.size)

    # --- building --------------------------------------------------------------------------

    @classmethod
    def from_records(
        cls,
        records: Iterable[dict[str, Any]],
        *,
        source: str,
        limit: int | None = None,
        sample_size: int = DEFAULT_SAMPLE_SIZE,
        model: str | None = None,
    ) -> Reference:
        """A reference from enriched records: duplicates (same source) are skipped, and only
        one model's records are used (``model``'s name, else the first record's model)."""
        builder: ReferenceBuilder | None = None
        for rec in records:
            if not isinstance(rec, dict) or "doc_vector" not in rec:
                continue
            name, version = model_key(rec)
            if builder is None:
                if model is not None and name != model:
                    continue
                builder = ReferenceBuilder(limit, source, sample_size, (name, version))
            elif name != builder.model[0]:
                continue
            builder.add(rec)
            if builder.complete:
                break
        if builder is None:
            raise ValueError(
                "no enriched records"
                + (f" of model {model!r}" if model else "")
                + " to build a reference from"
            )
        return builder.build()

    # --- JSON ------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        sample = None
        if self.vector_sample is not None:
            arr = np.ascontiguousarray(self.vector_sample, dtype="<f4")
            sample = {
                "dtype": "float32",
                "shape": list(arr.shape),
                "base64": base64.b64encode(arr.tobytes()).decode("ascii"),
            }
        return {
            "format": REFERENCE_FORMAT,
            "source": self.source,
            "created": self.created,
            "model": self.model,
            "documents": self.documents,
            "labels": {
                "counts": dict(sorted(self.label_counts.items())),
                "mean_confidence": self.mean_confidence,
            },
            "agreement": {"compared": self.compared, "agree": self.agree},
            "embedding": {
                "mean": None if self.mean_vector is None else [float(v) for v in self.mean_vector],
                "sample": sample,
            },
            "text": self.text,
            "text_standard_errors": self.text_se,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Reference:
        if data.get("format") != REFERENCE_FORMAT:
            raise ValueError(
                f"not a stream_trf reference (format {data.get('format')!r}, expected "
                f"{REFERENCE_FORMAT!r}); build one with `stream-trf reference`"
            )
        emb = data.get("embedding") or {}
        mean = emb.get("mean")
        sample = emb.get("sample")
        vectors = None
        if sample:
            raw = base64.b64decode(sample["base64"])
            vectors = np.frombuffer(raw, dtype="<f4").reshape(sample["shape"]).astype(np.float32)
        labels = data.get("labels") or {}
        agreement = data.get("agreement") or {}
        return cls(
            documents=int(data["documents"]),
            source=str(data.get("source", "")),
            model=data.get("model"),
            label_counts={str(k): int(v) for k, v in (labels.get("counts") or {}).items()},
            mean_confidence=labels.get("mean_confidence"),
            compared=int(agreement.get("compared", 0)),
            agree=int(agreement.get("agree", 0)),
            mean_vector=None if mean is None else np.asarray(mean, dtype=np.float64),
            vector_sample=vectors,
            text=dict(data.get("text") or {}),
            text_se=dict(data.get("text_standard_errors") or {}),
            created=float(data.get("created", time.time())),
        )

    def save(self, path: str | Path) -> Path:
        """Write atomically (a temporary file, then a rename): workers that share the path
        never read half a file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(self.to_json(), f)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Reference:
        with open(path, encoding="utf-8") as f:
            return cls.from_json(json.load(f))


def tally(acc: Any, record: dict[str, Any]) -> None:
    """Add one enriched record to ``acc``'s running sums: text figures, label counts, confidence,
    agreement with the production label, and the doc-vector sample. Shared by the reference
    builder and the windows, so both summarise a record the same way."""
    acc.text.add(record)
    label = record.get("label")
    if isinstance(label, str):
        acc.labels[label] += 1
    score = record.get("score")
    if isinstance(score, (int, float)) and math.isfinite(score):
        acc.score_sum += float(score)
        acc.scored += 1
    production = record.get("production")
    if isinstance(production, dict) and isinstance(production.get("agrees"), bool):
        acc.compared += 1
        acc.agree += int(production["agrees"])
    if record.get("doc_vector") is not None:
        acc.vectors.add(record["doc_vector"])


class ReferenceBuilder:
    """Accumulates one model's enriched records until ``limit`` unique documents are in."""

    def __init__(
        self,
        limit: int | None,
        source: str,
        sample_size: int = DEFAULT_SAMPLE_SIZE,
        model: tuple[str, str] = ("", ""),
    ) -> None:
        self.limit = limit
        self.source = source
        self.model = model
        self.text = TextSums()
        self.labels: Counter[str] = Counter()
        self.score_sum = 0.0
        self.scored = 0
        self.compared = 0
        self.agree = 0
        self.vectors = VectorReservoir(sample_size)
        self._seen: set[tuple[Any, Any, Any]] = set()

    @property
    def documents(self) -> int:
        return self.text.documents

    @property
    def complete(self) -> bool:
        return self.limit is not None and self.documents >= self.limit

    def add(self, record: dict[str, Any]) -> bool:
        """Add one record; False when it was not used (a duplicate, or already complete)."""
        if self.complete:
            return False
        key = source_key(record)
        if key is not None:
            if key in self._seen:
                return False
            self._seen.add(key)
        tally(self, record)
        return True

    def build(self) -> Reference:
        return Reference(
            documents=self.documents,
            source=self.source,
            model={"name": self.model[0], "version": self.model[1]},
            label_counts=dict(self.labels),
            mean_confidence=self.score_sum / self.scored if self.scored else None,
            compared=self.compared,
            agree=self.agree,
            mean_vector=self.vectors.mean(),
            vector_sample=self.vectors.sample(),
            text=self.text.figures(),
            text_se=self.text.standard_errors(),
        )


__all__ = [
    "REFERENCE_FORMAT",
    "Reference",
    "ReferenceBuilder",
    "TextSums",
    "VectorReservoir",
    "model_key",
    "source_key",
    "text_figures",
]
