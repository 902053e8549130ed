"""``n_unknown_wordpieces``: content wordpieces that are the tokenizer's unknown token."""

from __future__ import annotations

from pathlib import Path

from jsonschema import Draft202012Validator

import stream_trf
from stream_trf import schemas
from stream_trf.stream.enrich import ModelInfo, count_unknown, enrich
from stream_trf.stream.records import InputRecord, Source

ENRICHED = Draft202012Validator(schemas.load("enriched"))


def _record(text: str) -> InputRecord:
    return InputRecord(id="x", text=text, meta=None, prediction=None, source=Source("t", 0, 1))


def test_unknown_wordpieces_are_counted_against_the_tokenizer(tiny_models: dict[str, Path]) -> None:
    nlp = stream_trf.load(str(tiny_models["bert"]))
    tokenizer = nlp.get_pipe("trf_wordpiecer").tokenizer
    text = "Plain words here. Then ☃ and ⛄ appear."
    doc = nlp(text)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    want = sum(1 for i in ids if i == tokenizer.unk_token_id)
    assert want >= 1
    assert count_unknown(doc) == want
    rec = enrich(doc, _record(text), ModelInfo("tiny", "1"), {})
    assert rec["n_unknown_wordpieces"] == want
    ENRICHED.validate({**rec, "doc_vector": rec["doc_vector"].tolist()})
    assert count_unknown(nlp("Plain words here.")) == 0


def test_boundary_tokens_never_count(tiny_models: dict[str, Path]) -> None:
    nlp = stream_trf.load(str(tiny_models["gpt2"]))
    tokenizer = nlp.get_pipe("trf_wordpiecer").tokenizer
    doc = nlp("Byte-level pieces cover everything: ☃.")
    unk = tokenizer.unk_token_id
    if unk is None:
        assert count_unknown(doc) is None
    else:
        assert count_unknown(doc) == 0
