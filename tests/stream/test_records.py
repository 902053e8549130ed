"""The input contract (``parse``), dead letters, and their agreement with the JSON Schemas."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from stream_trf import schemas
from stream_trf.stream.records import (
    DEAD_LETTER_SCHEMA,
    InputRecord,
    InvalidRecord,
    Prediction,
    Source,
    dead_letter,
    parse,
    raw_bytes,
)

SOURCE = Source("docs-in", 3, 42)
LIMIT = 50

INPUT = Draft202012Validator(schemas.load("input"))
DEAD = Draft202012Validator(schemas.load("dead-letter"))


def _json(obj: Any) -> bytes:
    return orjson.dumps(obj)


def _refuse(raw: bytes | None, *, limit: int = LIMIT) -> InvalidRecord:
    with pytest.raises(InvalidRecord) as info:
        parse(raw, SOURCE, max_text_chars=limit)
    return info.value


def _assert_dead_letter_ok(raw: bytes | None, err: InvalidRecord) -> dict[str, Any]:
    """The dead letter of a refused record validates, says why, and gives the bytes back."""
    dead = orjson.loads(orjson.dumps(dead_letter(raw, SOURCE, err.kind, err.message)))
    DEAD.validate(dead)
    assert dead["schema"] == DEAD_LETTER_SCHEMA
    assert dead["error"] == {"type": err.kind, "message": err.message}
    assert dead["source"] == {"topic": "docs-in", "partition": 3, "offset": 42}
    assert raw_bytes(dead) == raw
    return dead


# --- every kind of refusal ---------------------------------------------------------------------

# (payload, kind, words the message must contain)
REFUSALS: list[tuple[bytes | None, str, tuple[str, ...]]] = [
    (b"", "empty_payload", ("empty", "0 bytes")),
    (None, "tombstone", ("null", "tombstone")),
    (b"\xff\xfe{}", "not_utf8", ("UTF-8", "byte 0")),
    (b'{"id": "a", "text": "caf\xe9"}', "not_utf8", ("UTF-8", "byte 24")),
    (b"this line is not JSON", "invalid_json", ("not valid JSON",)),
    (b'{"id": "a", "text": "x"', "invalid_json", ("not valid JSON",)),
    (b'{"id": "a", "text": NaN}', "invalid_json", ("not valid JSON",)),
    (b"[1, 2, 3]", "not_an_object", ("JSON object", "list")),
    (b'"just a string"', "not_an_object", ("JSON object", "str")),
    (b"42", "not_an_object", ("JSON object", "int")),
    (b"4.5", "not_an_object", ("JSON object", "float")),
    (b"null", "not_an_object", ("JSON object", "NoneType")),
    (b"true", "not_an_object", ("JSON object", "bool")),
    (_json({"text": "hello"}), "missing_id", ("'id'",)),
    (_json({"id": 7, "text": "hello"}), "bad_id", ("'id'", "non-empty string", "int")),
    (_json({"id": "", "text": "hello"}), "bad_id", ("'id'", "non-empty string")),
    (_json({"id": None, "text": "hello"}), "bad_id", ("'id'", "NoneType")),
    (_json({"id": ["a"], "text": "hello"}), "bad_id", ("'id'", "list")),
    (_json({"id": "a"}), "missing_text", ("'text'",)),
    (_json({"id": "a", "text": 3}), "bad_text", ("'text'", "string", "int")),
    (_json({"id": "a", "text": None}), "bad_text", ("'text'", "NoneType")),
    (_json({"id": "a", "text": ["x"]}), "bad_text", ("'text'", "list")),
    (_json({"id": "a", "text": ""}), "empty_text", ("'text'", "empty")),
    (_json({"id": "a", "text": " \t\n\r  "}), "empty_text", ("'text'", "whitespace")),
    (_json({"id": "a", "text": "\u00a0\u2003\u3000"}), "empty_text", ("whitespace",)),
    (_json({"id": "a", "text": "x" * (LIMIT + 1)}), "text_too_long", (str(LIMIT + 1), str(LIMIT))),
    (_json({"id": "a", "text": "x", "meta": [1]}), "bad_meta", ("'meta'", "object", "list")),
    (_json({"id": "a", "text": "x", "meta": "m"}), "bad_meta", ("'meta'", "str")),
    (_json({"id": "a", "text": "x", "meta": 1}), "bad_meta", ("'meta'", "int")),
    (_json({"id": "a", "text": "x", "prediction": "pos"}), "bad_prediction", ("'prediction'",)),
    (_json({"id": "a", "text": "x", "prediction": [1]}), "bad_prediction", ("'prediction'",)),
    (
        _json({"id": "a", "text": "x", "prediction": {"score": 0.5}}),
        "bad_prediction",
        ("'prediction.label'",),
    ),
    (
        _json({"id": "a", "text": "x", "prediction": {"label": "", "score": 0.5}}),
        "bad_prediction",
        ("'prediction.label'",),
    ),
    (
        _json({"id": "a", "text": "x", "prediction": {"label": 3, "score": 0.5}}),
        "bad_prediction",
        ("'prediction.label'",),
    ),
    (
        _json({"id": "a", "text": "x", "prediction": {"label": "pos"}}),
        "bad_prediction",
        ("'prediction.score'",),
    ),
    (
        _json({"id": "a", "text": "x", "prediction": {"label": "pos", "score": "0.5"}}),
        "bad_prediction",
        ("'prediction.score'", "number"),
    ),
    (
        _json({"id": "a", "text": "x", "prediction": {"label": "pos", "score": True}}),
        "bad_prediction",
        ("'prediction.score'",),
    ),
    (
        _json({"id": "a", "text": "x", "prediction": {"label": "pos", "score": None}}),
        "bad_prediction",
        ("'prediction.score'",),
    ),
]


@pytest.mark.parametrize(
    ("raw", "kind", "words"), REFUSALS, ids=[f"{k}-{i}" for i, (_, k, _) in enumerate(REFUSALS)]
)
def test_each_refusal_has_its_kind_and_says_what_is_wrong(
    raw: bytes | None, kind: str, words: tuple[str, ...]
) -> None:
    err = _refuse(raw)
    assert err.kind == kind
    assert str(err) == err.message
    for word in words:
        assert word in err.message, (word, err.message)
    _assert_dead_letter_ok(raw, err)


# Dead-letter kinds that do not come from the input contract: the model failing on one record
# (processor), a batch the consumer could not decode (undecodable), the broker refusing an
# output for good (publisher).
NOT_THE_PARSERS = {"model_error", "undecodable_batch", "output_too_large", "output_rejected"}


def test_every_dead_letter_kind_of_the_schema_but_the_workers_own_is_produced_by_the_parser() -> (
    None
):
    kinds = set(schemas.load("dead-letter")["properties"]["error"]["properties"]["type"]["enum"])
    assert kinds >= NOT_THE_PARSERS
    assert {k for _, k, _ in REFUSALS} == kinds - NOT_THE_PARSERS


@pytest.mark.parametrize("number", [b"1e999", b"-1e999", b"Infinity", b"NaN", b"-Infinity"])
def test_a_non_finite_score_is_a_dead_letter_never_an_exception(number: bytes) -> None:
    raw = b'{"id": "a", "text": "x", "prediction": {"label": "pos", "score": ' + number + b"}}"
    err = _refuse(raw)
    # orjson refuses these numbers while parsing; a parser that read them would have to
    # refuse the score instead. Either way: a dead letter.
    assert err.kind in ("invalid_json", "bad_prediction")
    _assert_dead_letter_ok(raw, err)


def test_text_at_the_limit_passes_and_one_more_does_not() -> None:
    ok = parse(_json({"id": "a", "text": "y" * LIMIT}), SOURCE, max_text_chars=LIMIT)
    assert len(ok.text) == LIMIT
    assert _refuse(_json({"id": "a", "text": "y" * (LIMIT + 1)})).kind == "text_too_long"


def test_the_text_limit_counts_characters_not_bytes() -> None:
    text = "😀é" * (LIMIT // 2)  # LIMIT characters, 3 * LIMIT bytes
    assert len(text) == LIMIT and len(text.encode("utf-8")) > LIMIT
    assert parse(_json({"id": "a", "text": text}), SOURCE, max_text_chars=LIMIT).text == text


# --- valid records -----------------------------------------------------------------------------


def test_a_full_record_is_parsed_with_everything_kept() -> None:
    meta = {
        "source": "crawler",
        "tags": ["ü", "東京", "😀"],
        "nested": {"deep": {"n": 1, "x": 2.5, "ok": True, "none": None}},
        "ключ": "значение",
    }
    obj = {
        "id": "doc-ü-1",
        "text": "Über café. Second sentence!",
        "meta": meta,
        "prediction": {"label": "pos", "score": 0.25},
    }
    raw = _json(obj)
    INPUT.validate(obj)
    rec = parse(raw, SOURCE, max_text_chars=LIMIT, timestamp_ms=1_700_000_000_123)
    assert isinstance(rec, InputRecord)
    assert rec.id == "doc-ü-1"
    assert rec.text == obj["text"]
    assert rec.meta == meta
    assert rec.prediction == Prediction(label="pos", score=0.25)
    assert rec.source == SOURCE
    assert rec.timestamp_ms == 1_700_000_000_123
    assert rec.raw == raw


def test_a_minimal_record_has_no_meta_no_prediction_and_no_timestamp() -> None:
    rec = parse(b'{"text": " x ", "id": "m"}', SOURCE, max_text_chars=LIMIT)
    assert (rec.id, rec.text, rec.meta, rec.prediction, rec.timestamp_ms) == (
        "m",
        " x ",
        None,
        None,
        None,
    )


def test_an_integer_score_becomes_a_float_and_extra_keys_are_ignored() -> None:
    rec = parse(
        _json({"id": "a", "text": "t", "prediction": {"label": "l", "score": 1, "x": 0}, "y": 1}),
        SOURCE,
        max_text_chars=LIMIT,
    )
    assert rec.prediction == Prediction("l", 1.0)
    assert isinstance(rec.prediction.score, float)


def test_an_empty_meta_object_is_kept_as_an_empty_dict() -> None:
    rec = parse(_json({"id": "a", "text": "t", "meta": {}}), SOURCE, max_text_chars=LIMIT)
    assert rec.meta == {}


# --- never any other exception -----------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_parse_of_arbitrary_bytes_returns_a_record_or_refuses_it(raw: bytes) -> None:
    try:
        rec = parse(raw, SOURCE, max_text_chars=LIMIT)
    except InvalidRecord as err:
        DEAD.validate(dead_letter(raw, SOURCE, err.kind, err.message))
    else:
        assert isinstance(rec, InputRecord)
        assert rec.raw == raw


_text = st.text(st.characters(codec="utf-8"), max_size=12)
_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    _text,
    st.sampled_from(["", " ", "\t\n", "\u3000", "x", " y "]),
)
_json_value = st.recursive(
    _scalar,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_text, inner, max_size=3)),
    max_leaves=8,
)
_MISSING = object()


def _maybe(strategy: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(st.just(_MISSING), strategy)


_prediction = st.one_of(
    _json_value,
    st.fixed_dictionaries(
        {},
        optional={
            "label": st.one_of(_scalar, st.sampled_from(["pos", "neg"])),
            "score": st.one_of(_scalar, st.floats(0, 1)),
        },
    ),
)


@st.composite
def _candidate_objects(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 9)) == 0:
        return draw(_json_value)
    obj: dict[str, Any] = {}
    for key, strategy in (
        ("id", st.one_of(_scalar, st.sampled_from(["a", "doc-1"]))),
        ("text", st.one_of(_scalar, st.sampled_from(["hello", "  ", "Two. Sentences."]))),
        # null meta / prediction are allowed by both: the same as absent.
        ("meta", _json_value),
        ("prediction", _prediction),
    ):
        value = draw(_maybe(strategy))
        if value is not _MISSING:
            obj[key] = value
    return obj


@settings(max_examples=400, deadline=None)
@given(_candidate_objects())
def test_the_parser_and_the_input_schema_agree(obj: Any) -> None:
    raw = orjson.dumps(obj)
    schema_ok = INPUT.is_valid(obj)
    try:
        parse(raw, SOURCE, max_text_chars=10**6)
    except InvalidRecord as err:
        assert not schema_ok, (obj, err.kind, err.message)
    else:
        assert schema_ok, obj


GOOD = [
    {"id": "a", "text": "hello"},
    {"id": "a", "text": " x "},
    {"id": "東京", "text": "東京は日本の首都です。"},
    {"id": "a", "text": "t", "meta": {}},
    {"id": "a", "text": "t", "meta": {"k": [1, {"z": None}]}},
    {"id": "a", "text": "t", "prediction": {"label": "l", "score": 0}},
    {"id": "a", "text": "t", "prediction": {"label": "l", "score": -3.5e10}},
    {"id": "a", "text": "t", "extra": [1, 2]},
]

BAD = [
    [],
    "x",
    3,
    {},
    {"text": "t"},
    {"id": 1, "text": "t"},
    {"id": "", "text": "t"},
    {"id": None, "text": "t"},
    {"id": "a"},
    {"id": "a", "text": 1},
    {"id": "a", "text": ""},
    {"id": "a", "text": " \n\t"},
    {"id": "a", "text": "t", "meta": []},
    {"id": "a", "text": "t", "meta": "m"},
    {"id": "a", "text": "t", "prediction": []},
    {"id": "a", "text": "t", "prediction": {"label": "l"}},
    {"id": "a", "text": "t", "prediction": {"score": 1}},
    {"id": "a", "text": "t", "prediction": {"label": "", "score": 1}},
    {"id": "a", "text": "t", "prediction": {"label": "l", "score": "1"}},
    {"id": "a", "text": "t", "prediction": {"label": "l", "score": False}},
]


@pytest.mark.parametrize("obj", GOOD, ids=range(len(GOOD)))
def test_good_objects_pass_both_the_parser_and_the_schema(obj: Any) -> None:
    INPUT.validate(obj)
    rec = parse(_json(obj), SOURCE, max_text_chars=LIMIT)
    assert (rec.id, rec.text) == (obj["id"], obj["text"])


@pytest.mark.parametrize("obj", BAD, ids=range(len(BAD)))
def test_bad_objects_are_refused_by_both_the_parser_and_the_schema(obj: Any) -> None:
    assert not INPUT.is_valid(obj)
    _refuse(_json(obj))


# --- dead letters ------------------------------------------------------------------------------


def test_a_utf8_payload_is_kept_as_text() -> None:
    raw = '{"id": 1, "text": "café 😀"}'.encode()
    dead = dead_letter(raw, SOURCE, "bad_id", "why", worker="w-1")
    DEAD.validate(dead)
    assert dead["raw"] == {"encoding": "utf-8", "data": raw.decode("utf-8")}
    assert dead["worker"] == "w-1"
    assert raw_bytes(dead) == raw


def test_a_non_utf8_payload_is_kept_as_base64() -> None:
    raw = b"\xff\xfe{}\x00\x80"
    dead = dead_letter(raw, SOURCE, "not_utf8", "why")
    DEAD.validate(dead)
    assert dead["raw"]["encoding"] == "base64"
    assert base64.b64decode(dead["raw"]["data"], validate=True) == raw
    assert raw_bytes(dead) == raw
    assert "worker" not in dead


def test_no_payload_is_encoding_none() -> None:
    dead = dead_letter(None, SOURCE, "empty_payload", "why")
    DEAD.validate(dead)
    assert dead["raw"] == {"encoding": "none", "data": None}
    assert raw_bytes(dead) is None


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_payload_round_trips_through_a_serialized_dead_letter(raw: bytes) -> None:
    dead = orjson.loads(orjson.dumps(dead_letter(raw, SOURCE, "invalid_json", "m")))
    DEAD.validate(dead)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        assert dead["raw"]["encoding"] == "base64"
    else:
        assert dead["raw"] == {"encoding": "utf-8", "data": text}
    assert raw_bytes(dead) == raw


@settings(max_examples=100, deadline=None)
@given(st.text(st.characters(codec="utf-8"), max_size=100))
def test_any_text_payload_is_kept_as_text(text: str) -> None:
    raw = text.encode("utf-8")
    dead = dead_letter(raw, SOURCE, "invalid_json", "m")
    assert dead["raw"] == {"encoding": "utf-8", "data": text}
    assert raw_bytes(orjson.loads(orjson.dumps(dead))) == raw
