"""``enrich``: a processed doc → the enriched record, checked against the doc computed again and
against the tokenizer run directly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from jsonschema import Draft202012Validator

import stream_trf
from stream_trf import schemas
from stream_trf.pipeline.extensions import TOKEN_ATTRS
from stream_trf.stream.enrich import (
    ENRICHED_SCHEMA,
    HeavyFields,
    ModelInfo,
    dumps,
    enrich,
    token_array,
)
from stream_trf.stream.records import Prediction, Source, parse

ENRICHED = Draft202012Validator(schemas.load("enriched"))
SOURCE = Source("docs-in", 1, 99)
MODEL = ModelInfo("tiny-bert", "7.1")
MAX_LENGTH = 64  # the tiny models' maximum length (conftest.TINY_MAX_LENGTH)

LONG_SENTENCE = " ".join(["apple shares rose on the news"] * 15)  # > 64 wordpieces
TEXTS = [
    "Here is some text to encode. Apple shares rose on the news!",
    "  Leading spaces. and\n\nnewlines, commas; and   tabs\tin it  ",
    "x",
    "Über café naïve résumé. 東京は日本の首都です。",
    "Short. " + LONG_SENTENCE + ". Another short one.",
]


@pytest.fixture(scope="module")
def bert_dir(tiny_models: dict[str, Path]) -> Path:
    return tiny_models["bert"]


@pytest.fixture(scope="module")
def nlp(bert_dir: Path) -> Any:
    return stream_trf.load(str(bert_dir))


@pytest.fixture(scope="module")
def tokenizer(bert_dir: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(bert_dir))


def _record(text: str, **extra: Any) -> Any:
    return parse(orjson.dumps({"id": "doc-1", "text": text, **extra}), SOURCE, max_text_chars=10**6)


def _round_trip(rec: dict[str, Any]) -> dict[str, Any]:
    out = orjson.loads(dumps(rec))
    ENRICHED.validate(out)
    return out


def _sentence_pieces(tokenizer: Any, doc: Any) -> list[list[int]]:
    return [tokenizer(s.text)["input_ids"] for s in doc.sents]


@pytest.mark.parametrize("text", TEXTS, ids=range(len(TEXTS)))
def test_light_fields_match_the_doc_computed_again(nlp: Any, tokenizer: Any, text: str) -> None:
    meta = {"source": "test", "nested": {"ü": [1, 2.5, None]}}
    record = _record(text, meta=meta)
    doc = next(iter(nlp.pipe([text])))
    out = _round_trip(enrich(doc, record, MODEL, {"model_ms": 1.23456, "batch_ms": 7.0}))

    ref = nlp(text)  # an independent run of the same text
    assert out["schema"] == ENRICHED_SCHEMA
    assert out["id"] == "doc-1"
    assert out["meta"] == meta
    assert out["model"] == {"name": "tiny-bert", "version": "7.1"}
    assert out["source"] == {"topic": "docs-in", "partition": 1, "offset": 99}
    assert out["sentences"] == [[s.start_char, s.end_char] for s in ref.sents]
    assert all(text[a:b] == s.text for (a, b), s in zip(out["sentences"], ref.sents))
    tokens = nlp.make_doc(text)
    assert out["n_tokens"] == len(tokens)
    assert out["n_words"] == sum(1 for t in tokens if not t.is_space and not t.is_punct)

    pieces = _sentence_pieces(tokenizer, ref)
    assert out["n_wordpieces"] == sum(len(p) for p in pieces)
    assert out["windowed_wordpieces"] == sum(len(p) for p in pieces if len(p) > MAX_LENGTH)

    expected = np.asarray(ref._.trf_last_hidden_state, dtype=np.float64).mean(axis=0)
    vector = np.asarray(out["doc_vector"])
    assert vector.shape == (32,)
    np.testing.assert_allclose(vector, expected, rtol=1e-4, atol=1e-5)
    assert out["timings"] == {"model_ms": 1.235, "batch_ms": 7.0}
    for key in ("cats", "label", "score", "production", "tokens", "token_vectors", "worker"):
        assert key not in out
    assert "wordpieces" not in out and "alignment" not in out


def test_token_figures_come_from_the_wordpiecer_unless_the_tokens_changed(nlp: Any) -> None:
    """The columns the wordpiecer read are the ones a record's figures use (spaCy is not asked
    again); a doc retokenized after it is read afresh."""
    doc = nlp(TEXTS[1])
    kept = doc._.trf_pieces.tokens
    assert token_array(doc) is kept
    want = doc.to_array(list(TOKEN_ATTRS)).reshape(len(doc), -1).astype(np.int64)
    np.testing.assert_array_equal(kept, want)
    with doc.retokenize() as retokenizer:
        retokenizer.merge(doc[2:4])
    changed = token_array(doc)
    assert changed is not kept and len(changed) == len(doc) == len(kept) - 1
    out = enrich(doc, _record(TEXTS[1]), MODEL, {})
    assert out["n_tokens"] == len(doc)
    assert out["sentences"] == [[s.start_char, s.end_char] for s in doc.sents]


def test_a_long_sentence_is_counted_as_windowed(nlp: Any) -> None:
    out = enrich(nlp(TEXTS[-1]), _record(TEXTS[-1]), MODEL, {})
    assert 0 < out["windowed_wordpieces"] < out["n_wordpieces"]
    out = enrich(nlp(TEXTS[0]), _record(TEXTS[0]), MODEL, {})
    assert out["windowed_wordpieces"] == 0


def test_meta_absent_is_null_and_worker_is_named(nlp: Any) -> None:
    out = _round_trip(enrich(nlp("Hello."), _record("Hello."), MODEL, {}, worker="host-1:42"))
    assert out["meta"] is None
    assert out["worker"] == "host-1:42"
    assert out["timings"] == {}


def test_no_cats_means_no_label_and_production_does_not_know(nlp: Any) -> None:
    record = _record("Hello there.", prediction={"label": "pos", "score": 0.9})
    doc = nlp("Hello there.")
    assert not doc.cats
    out = _round_trip(enrich(doc, record, MODEL, {}))
    assert out["production"] == {"label": "pos", "score": 0.9, "agrees": None}
    assert "cats" not in out and "label" not in out and "score" not in out


@pytest.mark.parametrize(
    ("cats", "label", "agrees"),
    [
        ({"a": 0.7, "b": 0.3}, "a", True),
        ({"a": 0.7, "b": 0.3}, "b", False),
        ({"a": 0.7, "b": 0.3}, "c", None),
        ({"a": 0.1, "b": 0.6, "c": 0.3}, "b", True),
        ({"a": 0.1, "b": 0.6, "c": 0.3}, "c", False),
    ],
)
def test_cats_give_the_label_and_whether_production_agrees(
    nlp: Any, cats: dict[str, float], label: str, agrees: bool | None
) -> None:
    doc = nlp("Hello there.")
    doc.cats = dict(cats)
    record = _record("Hello there.", prediction={"label": label, "score": 0.5})
    assert record.prediction == Prediction(label, 0.5)
    out = _round_trip(enrich(doc, record, MODEL, {}))
    best = max(cats, key=lambda k: cats[k])
    assert out["cats"] == pytest.approx(cats)
    assert out["label"] == best
    assert out["score"] == pytest.approx(cats[best])
    assert out["production"]["agrees"] is agrees
    assert out["production"]["label"] == label


def test_cats_without_a_prediction_have_no_production(nlp: Any) -> None:
    doc = nlp("Hello there.")
    doc.cats = {"a": 0.2, "b": 0.8}
    out = _round_trip(enrich(doc, _record("Hello there."), MODEL, {}))
    assert out["label"] == "b"
    assert "production" not in out


@pytest.mark.parametrize("text", TEXTS[:4], ids=range(4))
def test_heavy_token_fields_equal_the_doc(nlp: Any, text: str) -> None:
    doc = nlp(text)
    out = _round_trip(enrich(doc, _record(text), MODEL, {}, HeavyFields(tokens=True)))
    ref = nlp(text)
    assert out["tokens"] == [t.text for t in nlp.make_doc(text)]
    vectors = np.asarray(out["token_vectors"])
    assert vectors.shape == (len(ref), 32)
    np.testing.assert_allclose(vectors, ref.tensor, rtol=1e-4, atol=1e-5)
    assert "wordpieces" not in out and "alignment" not in out


@pytest.mark.parametrize("text", TEXTS[:4], ids=range(4))
def test_heavy_wordpiece_fields_equal_the_tokenizer(nlp: Any, tokenizer: Any, text: str) -> None:
    doc = nlp(text)
    out = _round_trip(enrich(doc, _record(text), MODEL, {}, HeavyFields(wordpieces=True)))
    ref = nlp(text)
    expected = [
        piece
        for ids in _sentence_pieces(tokenizer, ref)
        for piece in tokenizer.convert_ids_to_tokens(ids)
    ]
    assert out["wordpieces"] == expected
    assert out["alignment"] == ref._.trf_alignment
    assert len(out["alignment"]) == len(ref)
    assert "tokens" not in out and "token_vectors" not in out


def test_alignment_points_each_word_at_its_own_wordpieces(nlp: Any) -> None:
    text = "Here is some text to encode. Apple shares rose on the news!"
    out = enrich(nlp(text), _record(text), MODEL, {}, HeavyFields(wordpieces=True))
    pieces, alignment = out["wordpieces"], out["alignment"]
    for token, rows in zip(nlp.make_doc(text), alignment):
        assert rows == sorted(rows)
        assert "".join(pieces[r].removeprefix("##") for r in rows) == token.lower_


def test_both_heavy_fields_together(nlp: Any) -> None:
    text = TEXTS[0]
    out = _round_trip(
        enrich(nlp(text), _record(text), MODEL, {}, HeavyFields(tokens=True, wordpieces=True))
    )
    assert len(out["tokens"]) == len(out["token_vectors"]) == len(out["alignment"])
    assert len(out["wordpieces"]) == out["n_wordpieces"]


@pytest.mark.parametrize("encoding", ["base64-f32", "base64-f16"])
def test_compact_vector_encodings_round_trip_and_shrink_the_record(nlp, encoding: str) -> None:
    from stream_trf.schemas.vectors import decode

    doc = nlp(TEXTS[0])
    plain = _round_trip(enrich(doc, _record(TEXTS[0]), MODEL, {}, HeavyFields(tokens=True)))
    heavy = HeavyFields(tokens=True, vector_encoding=encoding)
    packed = _round_trip(enrich(doc, _record(TEXTS[0]), MODEL, {}, heavy))
    assert packed["token_vectors"]["shape"] == [len(doc), doc.tensor.shape[1]]
    want_tokens = np.asarray(plain["token_vectors"], dtype=np.float32)
    want_doc = np.asarray(plain["doc_vector"], dtype=np.float32)
    if encoding == "base64-f32":  # every bit
        assert np.array_equal(decode(packed["token_vectors"]), want_tokens)
        assert np.array_equal(decode(packed["doc_vector"]), want_doc)
    else:  # float16: ~3 significant digits
        np.testing.assert_allclose(
            decode(packed["token_vectors"]), want_tokens, rtol=1e-3, atol=1e-4
        )
        np.testing.assert_allclose(decode(packed["doc_vector"]), want_doc, rtol=1e-3, atol=1e-4)
    assert np.array_equal(decode(plain["token_vectors"]), want_tokens)  # JSON form reads too
    per_value = {"base64-f32": 4 * 4 / 3, "base64-f16": 2 * 4 / 3}[encoding]
    n_values = want_tokens.size + want_doc.size
    saved = len(dumps(plain)) - len(dumps(packed))
    assert saved > n_values * (6 - per_value)  # JSON spends well over 6 bytes a value


def test_record_sources_carry_key_and_headers_as_text_or_base64() -> None:
    src = Source("in", 0, 5, b"\xff\x01", (("traceparent", b"00-a"), ("bin", b"\x00\xff")))
    assert src.as_dict() == {
        "topic": "in",
        "partition": 0,
        "offset": 5,
        "key_base64": "/wE=",
        "headers": [
            {"name": "traceparent", "value": "00-a"},
            {"name": "bin", "value_base64": "AP8="},
        ],
    }
    assert Source("in", 0, 5).as_dict() == {"topic": "in", "partition": 0, "offset": 5}


@pytest.mark.parametrize("outputs", ["rows", "pooled"])
def test_a_batch_gives_each_doc_its_own_record(bert_dir: Path, nlp: Any, outputs: str) -> None:
    """``enrich_batch`` computes sentences, words, unknown pieces and (pooled) doc vectors for a
    buffer's docs at once: each record is the one its doc gets alone (an empty doc and a doc of
    whitespace among them), and a pooled doc's vector is the mean of the rows a pipeline keeping
    them computes."""
    from stream_trf.stream.enrich import enrich_batch

    texts = [*TEXTS, "", "   \n ", "One more. And a last sentence here!"]
    pipeline = (
        nlp
        if outputs == "rows"
        else stream_trf.load(str(bert_dir), outputs="pooled", doc_tensor=False, alignment=False)
    )
    docs = list(pipeline.pipe(texts))
    # (the stream refuses empty texts; enrich reads a record's id, meta and source only)
    records = [_record(t.strip() or "-", meta={"k": k}) for k, t in enumerate(texts)]
    timings = [{"model_ms": float(k), "batch_ms": 2.0} for k in range(len(texts))]
    together = [_round_trip(r) for r in enrich_batch(docs, records, MODEL, timings, worker="w")]
    for k, (doc, record) in enumerate(zip(docs, records)):
        alone = _round_trip(enrich(doc, record, MODEL, timings[k], worker="w"))
        assert together[k] == alone
        assert together[k]["meta"] == {"k": k}
        rows = nlp(texts[k])._.trf_last_hidden_state
        want = np.asarray(rows, np.float64).mean(axis=0) if len(rows) else np.zeros(32)
        np.testing.assert_allclose(together[k]["doc_vector"], want, rtol=1e-4, atol=1e-5)
    empty = together[len(TEXTS)]
    assert empty["sentences"] == [] and empty["n_wordpieces"] == 0 and empty["n_tokens"] == 0
