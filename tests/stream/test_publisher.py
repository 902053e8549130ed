"""The publisher against topics that answer as a broker would (real aiokafka and faust error
classes). The worker publishing through the real broker is covered in
tests/integration/test_real_producers.py."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import jsonschema
import orjson
import pytest
from aiokafka import errors as kafka_errors
from faust.exceptions import ProducerSendError

from stream_trf import schemas
from stream_trf.stream.enrich import dumps
from stream_trf.stream.processor import Output
from stream_trf.stream.publisher import Publisher, permanent_failure
from stream_trf.stream.records import Source, dead_letter

DLQ_SCHEMA = jsonschema.Draft202012Validator(schemas.load("dead-letter"))

Answer = Callable[[bytes], BaseException | None]  # value → error to answer with, or None


class Topic:
    """A topic that fails sends as told: ``at_send`` raises from ``send`` (the producer refused
    before sending), ``at_ack`` fails the acknowledgement (the broker refused)."""

    def __init__(
        self, at_send: Answer | None = None, at_ack: Answer | None = None, name: str = "t"
    ) -> None:
        self.name = name
        self.at_send = at_send or (lambda v: None)
        self.at_ack = at_ack or (lambda v: None)
        self.sent: list[tuple[bytes | None, bytes, Any]] = []
        self.acked: list[bytes] = []

    async def send(self, key: bytes | None, value: bytes, headers: Any = None) -> Any:
        self.sent.append((key, value, headers))
        err = self.at_send(value)
        if err is not None:
            raise err
        fut = asyncio.get_running_loop().create_future()
        err = self.at_ack(value)
        if err is None:
            self.acked.append(value)
            fut.set_result(None)
        else:
            fut.set_exception(err)
        return fut

    def get_topic_name(self) -> str:
        return self.name


class Batches:
    """``PartitionBatches`` as a broker would answer it: all of a topic's records in one batch,
    whose acknowledgement fails as ``at_ack`` says for any of its values (a batch is refused
    as a whole); a record over ``limit`` bytes is left out (None)."""

    def __init__(self, at_ack: Answer | None = None, limit: int = 10**9) -> None:
        self.at_ack = at_ack or (lambda v: None)
        self.limit = limit
        self.sent: list[tuple[str, list[bytes]]] = []

    async def send(self, topic: str, records: list[Any]) -> list[Any]:
        batched = [value for _, value, _ in records if len(value) <= self.limit]
        self.sent.append((topic, batched))
        fut = asyncio.get_running_loop().create_future()
        errors = [e for e in map(self.at_ack, batched) if e is not None]
        if errors:
            fut.set_exception(errors[0])
        else:
            fut.set_result(None)
        return [fut if len(value) <= self.limit else None for _, value, _ in records]


SRC = Source("docs-in", 2, 40, b"key-1", (("traceparent", b"00-abc"),))


def _enriched(i: int, size: int = 10) -> Output:
    raw = orjson.dumps({"id": f"r{i}", "text": "x"})
    value = orjson.dumps({"id": f"r{i}", "pad": "y" * size})
    src = Source(SRC.topic, SRC.partition, SRC.offset + i, SRC.key, SRC.headers)
    return Output("enriched", f"r{i}".encode(), value, src, f"r{i}", raw)


def _run(publisher: Publisher, outputs: list[Output]) -> list[Output]:
    return asyncio.run(asyncio.wait_for(publisher.publish(outputs), timeout=10))


def _big(limit: int) -> Answer:
    def answer(value: bytes) -> BaseException | None:
        if len(value) <= limit:
            return None
        cause = kafka_errors.MessageSizeTooLargeError(f"The message is {len(value)} bytes")
        try:  # as faust wraps the producer's error
            raise ProducerSendError(f"Error while sending: {cause!r}") from cause
        except ProducerSendError as err:
            return err

    return answer


def test_everything_acknowledged_is_returned_as_it_was_with_its_headers() -> None:
    out, dlq = Topic(), Topic()
    outputs = [_enriched(i) for i in range(3)]
    assert _run(Publisher(out, dlq), outputs) == outputs
    assert [h for _, _, h in out.sent] == [[("traceparent", b"00-abc")]] * 3
    assert dlq.sent == []


def test_retriable_errors_are_sent_again_until_acknowledged() -> None:
    failures = iter([kafka_errors.KafkaTimeoutError(), kafka_errors.NotLeaderForPartitionError()])
    out = Topic(at_ack=lambda v: next(failures, None) if v.startswith(b'{"id":"r1"') else None)
    publisher = Publisher(out, Topic(), max_delay=0.01)
    outputs = [_enriched(i) for i in range(3)]
    assert _run(publisher, outputs) == outputs
    assert publisher.stats.retries == 2
    assert sorted(out.acked) == sorted(o.value for o in outputs)


@pytest.mark.parametrize("where", ["at_send", "at_ack"])
def test_an_output_too_large_becomes_a_dead_letter_and_the_rest_go_on(where: str) -> None:
    out = Topic(**{where: _big(1000)})
    dlq = Topic()
    outputs = [_enriched(0), _enriched(1, size=5000), _enriched(2)]
    published = _run(Publisher(out, dlq, max_record_bytes=1000), outputs)
    assert [o.kind for o in published] == ["enriched", "dead_letter", "enriched"]
    assert published[1].reason == "output_too_large"
    (letter_value,) = [v for _, v, _ in dlq.sent]
    letter = orjson.loads(letter_value)
    DLQ_SCHEMA.validate(letter)
    assert letter["error"]["type"] == "output_too_large"
    assert "1,000 bytes (--max-record-bytes)" in letter["error"]["message"]
    assert letter["source"] == outputs[1].source.as_dict()  # offset, key and headers
    assert letter["raw"] == {"encoding": "utf-8", "data": outputs[1].raw.decode()}
    assert dlq.sent[0][2] == [("traceparent", b"00-abc")]


def test_a_refused_topic_becomes_output_rejected() -> None:
    out = Topic(at_ack=lambda v: kafka_errors.TopicAuthorizationFailedError())
    dlq = Topic()
    published = _run(Publisher(out, dlq), [_enriched(0)])
    assert [o.reason for o in published] == ["output_rejected"]


def test_a_dead_letter_too_large_goes_without_its_payload_then_is_given_up() -> None:
    given_up: list[Output] = []
    raw = b'{"id": "huge", "text": "' + b"z" * 3000 + b'"}'
    letter = dead_letter(raw, SRC, "text_too_long", "too long")
    small_enough = Output("dead_letter", None, dumps(letter), SRC, raw=raw, reason="text_too_long")
    too_large_anyway = Output(
        "dead_letter", None, dumps(letter) + b" " * 5000, SRC, raw=raw, reason="text_too_long"
    )

    # first: without its payload it fits
    dlq = Topic(at_ack=_big(2000))
    published = _run(Publisher(Topic(), dlq), [small_enough])
    assert len(published) == 1
    sent = orjson.loads(dlq.acked[0])
    DLQ_SCHEMA.validate(sent)
    assert sent["raw"] == {"encoding": "omitted", "data": None, "bytes": len(raw)}
    assert sent["error"]["type"] == "text_too_long"

    # then: a dead letter the broker refuses even without payload is logged, counted, dropped
    dlq = Topic(at_ack=_big(10))
    publisher = Publisher(Topic(), dlq, on_unpublished=lambda o, kind: given_up.append(o))
    assert _run(publisher, [too_large_anyway]) == []
    assert len(dlq.sent) == 2  # with payload, without: never more
    assert publisher.stats.unpublished["text_too_long"] == 1
    assert given_up and given_up[0].source == SRC


def test_which_errors_are_permanent() -> None:
    assert permanent_failure(kafka_errors.RecordTooLargeError()) == "output_too_large"
    assert permanent_failure(kafka_errors.CorruptRecordException()) == "output_rejected"
    for retriable in (
        kafka_errors.KafkaTimeoutError(),
        kafka_errors.KafkaConnectionError(),
        kafka_errors.RequestTimedOutError(),
        kafka_errors.LeaderNotAvailableError(),
        RuntimeError("anything unknown is retried"),
    ):
        assert permanent_failure(retriable) is None


def test_batched_outputs_go_in_one_batch_per_topic_and_come_back_as_they_were() -> None:
    out, dlq, batches = Topic(name="out"), Topic(name="dlq"), Batches()
    letter = dead_letter(b"{}", SRC, "invalid_json", "not JSON")
    outputs = [_enriched(0), Output("dead_letter", None, dumps(letter), SRC), _enriched(1)]
    assert _run(Publisher(out, dlq, batches=batches), outputs) == outputs
    assert [(t, len(v)) for t, v in batches.sent] == [("out", 2), ("dlq", 1)]
    assert out.sent == dlq.sent == []  # nothing one by one


def test_a_batch_refused_for_good_is_sent_again_one_by_one_and_only_the_culprit_is_lost() -> None:
    """The broker refuses a whole batch for one record too large: each output of it is sent
    alone, so the others are published and only that one becomes a dead letter."""
    batches = Batches(at_ack=_big(1000))
    out, dlq = Topic(at_ack=_big(1000)), Topic()
    outputs = [_enriched(0), _enriched(1, size=5000), _enriched(2)]
    published = _run(Publisher(out, dlq, batches=batches), outputs)
    assert [o.kind for o in published] == ["enriched", "dead_letter", "enriched"]
    assert published[1].reason == "output_too_large"
    assert sorted(out.acked) == sorted([outputs[0].value, outputs[2].value])


def test_a_record_over_the_request_limit_is_sent_alone_and_becomes_a_dead_letter() -> None:
    batches = Batches(limit=1000)
    out, dlq = Topic(at_send=_big(1000)), Topic()
    outputs = [_enriched(0), _enriched(1, size=5000), _enriched(2)]
    published = _run(Publisher(out, dlq, batches=batches), outputs)
    assert [o.kind for o in published] == ["enriched", "dead_letter", "enriched"]
    assert [len(v) for _, v in batches.sent[:1]] == [2]  # the two that fit, batched
    assert [v for _, v, _ in out.sent] == [outputs[1].value]  # the big one alone


def test_a_batch_that_fails_for_now_is_sent_again_until_acknowledged() -> None:
    failures = iter([kafka_errors.KafkaTimeoutError()])
    batches = Batches(at_ack=lambda v: next(failures, None))
    publisher = Publisher(Topic(), Topic(), batches=batches, max_delay=0.01)
    outputs = [_enriched(i) for i in range(3)]
    assert _run(publisher, outputs) == outputs
    assert publisher.stats.retries == 1 and len(batches.sent) == 2
