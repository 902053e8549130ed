"""The classifier that ships with the default model (trained by `stream-trf train`, head only)."""

from __future__ import annotations

import json

import pytest
from conftest import SHARED_DATA

import stream_trf
from stream_trf.errors import StreamTrfError

SECTIONS = {"games", "graphics", "mail", "math", "net", "science", "sound", "text", "video", "web"}


def test_default_pipeline_has_the_debian_sections_classifier(minilm_nlp) -> None:
    assert minilm_nlp.pipe_names[-1] == "trf_textcat"
    textcat = minilm_nlp.get_pipe("trf_textcat")
    assert set(textcat.labels) == SECTIONS
    assert textcat.exclusive
    cats = minilm_nlp("A web server with reverse proxy and TLS termination.").cats
    assert sum(cats.values()) == pytest.approx(1.0, abs=1e-5)


def test_shipped_head_is_far_better_than_chance(minilm_nlp) -> None:
    """A smoke check that the right weights are loaded; the accuracy figure itself is measured
    by the benchmark (docs/text-classification.md, bench/results/textcat-head-debian-sections.json)."""
    rows = [json.loads(x) for x in (SHARED_DATA / "debian-sections" / "dev.jsonl").open()][:150]
    docs = minilm_nlp.pipe([r["text"] for r in rows])
    correct = sum(max(d.cats, key=d.cats.__getitem__) == r["label"] for d, r in zip(docs, rows))
    assert correct / len(rows) > 0.75  # chance is about 0.16 (the largest class)


def test_classifier_can_be_left_out_or_must_fit(tiny_models) -> None:
    assert "trf_textcat" not in stream_trf.load(classifier=None).pipe_names
    assert "trf_textcat" not in stream_trf.load(str(tiny_models["bert"])).pipe_names
    with pytest.raises(StreamTrfError, match="default model"):
        stream_trf.load(str(tiny_models["bert"]), classifier=True)
