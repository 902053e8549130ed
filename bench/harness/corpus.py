"""The benchmark's texts: the first N documents of a gzipped JSONL file, and one word count.

Every system is measured on the same texts and credited with the same number of words (spaCy's
English tokens that are neither space nor punctuation, as enriched records count ``n_words``),
so that words/s figures compare.
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Any

from stream_trf.errors import StreamTrfError

DATA_ENV = "STREAM_TRF_BENCH_DATA"
DATA_NAME = "debian-descriptions.jsonl.gz"


class MissingBenchmarkData(StreamTrfError):
    """No benchmark texts where they were looked for."""


def default_data_path() -> Path:
    """``$STREAM_TRF_BENCH_DATA``, else ``shared/data/…`` beside the working directory or the
    repository."""
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV])
    here = Path(__file__).resolve()
    for base in (Path.cwd(), Path.cwd().parent, here.parents[2], here.parents[3]):
        candidate = base / "shared" / "data" / DATA_NAME
        if candidate.exists():
            return candidate
    raise MissingBenchmarkData(
        f"no {DATA_NAME} found beside the working directory or the repository: "
        f"pass --data or set {DATA_ENV}"
    )


def read_texts(path: Path, n: int) -> list[str]:
    """The ``text`` fields of the first ``n`` records (``.gz`` or plain JSONL)."""
    if not Path(path).is_file():
        raise MissingBenchmarkData(f"{path} does not exist: pass --data or set {DATA_ENV}")
    opener = gzip.open if str(path).endswith(".gz") else open
    texts: list[str] = []
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                texts.append(json.loads(line)["text"])
                if len(texts) >= n:
                    break
    if not texts:
        raise MissingBenchmarkData(f"{path} holds no records")
    return texts


def count_words(texts: list[str]) -> int:
    import spacy

    tokenizer: Any = spacy.blank("en").tokenizer
    total = 0
    for doc in tokenizer.pipe(texts):
        total += sum(1 for t in doc if not (t.is_space or t.is_punct))
    return total


def sections_dir() -> Path:
    """The Debian-sections topic splits (``train.jsonl``, ``dev.jsonl``) beside the descriptions."""
    return default_data_path().parent / "debian-sections"
