"""Input records: validated once, at the edge. Bad input becomes a dead letter with a reason.

Everything downstream of :func:`parse` trusts its types. A dead letter keeps the original
bytes (base64 when they are not UTF-8) and where they came from, so nothing is ever lost.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass, field
from typing import Any

import orjson

INPUT_SCHEMA = "stream_trf/input/v1"
DEAD_LETTER_SCHEMA = "stream_trf/dead-letter/v1"


Headers = tuple[tuple[str, bytes], ...]


@dataclass(frozen=True)
class Source:
    """Where a record came from: enough to find it again, and to drop duplicates.

    ``key`` and ``headers`` are the input record's own, passed on so that a consumer of the
    enriched topic can join it back (the key) and follow a trace (``traceparent``, …).
    ``last_offset`` is set when one output stands for several offsets (an undecodable batch)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None = None
    headers: Headers = ()
    last_offset: int | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
        }
        if self.last_offset is not None:
            out["last_offset"] = self.last_offset
        if self.key is not None:
            out.update(_text_or_base64("key", self.key))
        if self.headers:
            out["headers"] = [
                {"name": name, **_text_or_base64("value", value)} for name, value in self.headers
            ]
        return out


def _text_or_base64(name: str, value: bytes | None) -> dict[str, Any]:
    """``{name: text}`` for UTF-8 bytes, ``{name_base64: ...}`` otherwise (JSON holds no bytes)."""
    if value is None:
        return {name: None}
    try:
        return {name: value.decode("utf-8")}
    except UnicodeDecodeError:
        return {f"{name}_base64": base64.b64encode(value).decode("ascii")}


@dataclass(frozen=True)
class Prediction:
    """The production model's own output, carried so the transformer can health-check it."""

    label: str
    score: float


@dataclass(frozen=True)
class InputRecord:
    id: str
    text: str
    meta: dict[str, Any] | None
    prediction: Prediction | None
    source: Source
    timestamp_ms: int | None = None  # broker timestamp, for end-to-end latency
    raw: bytes | None = field(default=None, repr=False)  # the payload as it arrived


class InvalidRecord(Exception):
    """Why a record was refused; ``kind`` is a stable machine-readable reason."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def _require(cond: bool, kind: str, message: str) -> None:
    if not cond:
        raise InvalidRecord(kind, message)


def parse(
    raw: bytes | None, source: Source, *, max_text_chars: int, timestamp_ms: int | None = None
) -> InputRecord:
    """Validate one raw record against the input contract, or raise :class:`InvalidRecord`."""
    if raw is None:
        raise InvalidRecord(
            "tombstone",
            "the record's value is null: a tombstone (a delete marker for its key in a compacted "
            "topic), which has no text to enrich",
        )
    _require(len(raw) > 0, "empty_payload", "the record's value is empty (0 bytes)")
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InvalidRecord(
            "not_utf8",
            f"the payload is not UTF-8 (byte {err.start}: {raw[err.start : err.start + 1]!r})",
        ) from None
    try:
        obj = orjson.loads(decoded)
    except orjson.JSONDecodeError as err:
        raise InvalidRecord("invalid_json", f"the payload is not valid JSON: {err}") from None
    _require(
        isinstance(obj, dict),
        "not_an_object",
        f"the payload must be a JSON object, got {type(obj).__name__}",
    )
    _require("id" in obj, "missing_id", "the record has no 'id'")
    _require(
        isinstance(obj["id"], str) and obj["id"] != "",
        "bad_id",
        f"'id' must be a non-empty string, got {type(obj['id']).__name__}",
    )
    _require("text" in obj, "missing_text", "the record has no 'text'")
    text = obj["text"]
    _require(
        isinstance(text, str), "bad_text", f"'text' must be a string, got {type(text).__name__}"
    )
    _require(text.strip() != "", "empty_text", "'text' is empty or only whitespace")
    _require(
        len(text) <= max_text_chars,
        "text_too_long",
        f"'text' has {len(text)} characters, over the limit of {max_text_chars} (--max-text-chars)",
    )
    meta = obj.get("meta")
    _require(
        meta is None or isinstance(meta, dict),
        "bad_meta",
        f"'meta' must be an object, got {type(meta).__name__}",
    )
    return InputRecord(
        id=obj["id"],
        text=text,
        meta=meta,
        prediction=_prediction(obj.get("prediction")),
        source=source,
        timestamp_ms=timestamp_ms,
        raw=raw,
    )


def _prediction(value: Any) -> Prediction | None:
    if value is None:
        return None
    _require(
        isinstance(value, dict),
        "bad_prediction",
        f"'prediction' must be an object {{label, score}}, got {type(value).__name__}",
    )
    label, score = value.get("label"), value.get("score")
    _require(
        isinstance(label, str) and label != "",
        "bad_prediction",
        "'prediction.label' must be a non-empty string",
    )
    _require(
        isinstance(score, (int, float)) and not isinstance(score, bool) and math.isfinite(score),
        "bad_prediction",
        "'prediction.score' must be a finite number",
    )
    return Prediction(label=label, score=float(score))


def dead_letter(
    raw: bytes | None,
    source: Source,
    error_type: str,
    message: str,
    *,
    worker: str = "",
    omit_raw: bool = False,
) -> dict[str, Any]:
    """The dead-letter record: the reason, where it came from, and the original payload.

    ``omit_raw`` leaves the payload out (its size is kept): for a dead letter that would itself
    be too large to publish; ``source`` still finds the payload in the input topic."""
    payload: dict[str, Any]
    if raw is None:
        payload = {"encoding": "none", "data": None}
    elif omit_raw:
        payload = {"encoding": "omitted", "data": None, "bytes": len(raw)}
    else:
        try:
            payload = {"encoding": "utf-8", "data": raw.decode("utf-8")}
        except UnicodeDecodeError:
            payload = {"encoding": "base64", "data": base64.b64encode(raw).decode("ascii")}
    record: dict[str, Any] = {
        "schema": DEAD_LETTER_SCHEMA,
        "error": {"type": error_type, "message": message},
        "source": source.as_dict(),
        "raw": payload,
    }
    if worker:
        record["worker"] = worker
    return record


def raw_bytes(dead: dict[str, Any]) -> bytes | None:
    """The original payload of a dead letter (for replaying it)."""
    raw = dead["raw"]
    if raw["encoding"] == "omitted":
        raise ValueError(
            "this dead letter does not carry its payload (it was too large to publish): read it "
            "from the input topic at the dead letter's source"
        )
    if raw["encoding"] == "none":
        return None
    if raw["encoding"] == "base64":
        return base64.b64decode(raw["data"])
    return str(raw["data"]).encode("utf-8")
