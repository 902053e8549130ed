"""Records as other Kafka clients write them, through the real broker over a socket (issue 27).

librdkafka (confluent-kafka) writes every codec, keys, headers, tombstones and transactions; a
worker whose output the broker can never take moves on; a worker that cannot decode a batch
dead-letters it and moves on; our own producer's codecs are read back by kcat.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path

import jsonschema
import orjson
import pytest
from worker_harness import (
    commit_for_group,
    committed_and_end,
    committed_past,
    consume_until,
    create_topics,
    fresh_settings,
    ids_of,
    librdkafka_producer,
    no_lag,
    wait_for,
)

from stream_trf import schemas
from stream_trf.stream import clients
from stream_trf.stream.kafka import CODECS
from stream_trf.stream.local import WorkerProcess

TRACE = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
BINARY = b"\xff\x00\xfe"


def _doc(i: str, words: int = 12) -> bytes:
    text = " ".join(["gamma", "delta", "kappa"] * (words // 3 + 1))[: words * 6] + "."
    return orjson.dumps({"id": i, "text": text})


def _headers(kafka: dict) -> list[tuple[str, bytes]]:
    return [(k, bytes(v)) for k, v in kafka["headers"]]


def test_records_of_a_librdkafka_producer_every_codec_keys_headers_tombstones_transactions(
    broker, tiny_models, tmp_path: Path
) -> None:
    """One worker, one partition: every codec, keys and headers come back enriched; a tombstone
    and an output the broker can never take become dead letters of their own kinds, and the
    records behind them are enriched and committed, so a restart redoes nothing."""
    settings = fresh_settings(
        broker.url,
        str(tiny_models["bert"]),
        partitions=1,
        emit_tokens=True,
        max_record_bytes=40_000,
    )
    create_topics(settings)
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    dlq_schema = jsonschema.Draft202012Validator(schemas.load("dead-letter"))
    enriched_schema = jsonschema.Draft202012Validator(schemas.load("enriched"))
    try:
        worker.wait_ready()
        expected: set[str] = set()
        for codec in CODECS:
            producer = librdkafka_producer(settings, **{"compression.type": codec})
            for i in range(3):
                rid = f"{codec}-{i}"
                expected.add(rid)
                producer.produce(
                    settings.input_topic,
                    key=f"key-{rid}".encode(),
                    value=_doc(rid),
                    headers=[("traceparent", TRACE), ("bin", BINARY)],
                )
            producer.flush(10)
        producer = librdkafka_producer(settings, **{"compression.type": "gzip"})
        producer.produce(settings.input_topic, key=b"gone", value=None)  # a tombstone
        big = _doc("big", words=600)  # ~600 token rows: far over 40 kB as JSON
        producer.produce(settings.input_topic, key=b"big", value=big)
        for i in range(3):  # behind the oversize output, in the same partition
            expected.add(f"after-{i}")
            producer.produce(settings.input_topic, value=_doc(f"after-{i}"))
        producer.flush(10)
        tx = librdkafka_producer(settings, **{"transactional.id": f"tx-{settings.group_id}"})
        tx.init_transactions(30)
        tx.begin_transaction()
        tx.produce(settings.input_topic, value=_doc("tx-committed"))
        tx.commit_transaction(30)
        tx.begin_transaction()
        tx.produce(settings.input_topic, value=_doc("tx-aborted"))
        tx.abort_transaction(30)
        expected.add("tx-committed")

        out = consume_until(settings, settings.output_topic, lambda r: ids_of(r) >= expected)
        dead = consume_until(settings, settings.dlq_topic, lambda r: len(r) >= 2, timeout=30)
        assert wait_for(lambda: committed_past(settings, out + dead), timeout=30), (
            committed_and_end(settings),
            worker.log()[-4000:],
        )
        # The aborted transaction's record and marker end the partition: the group commits
        # past them too, so its lag reads zero (a scale-to-zero autoscaler can reach zero).
        assert wait_for(lambda: no_lag(settings), timeout=30), (
            committed_and_end(settings),
            worker.log()[-4000:],
        )
        assert worker.proc.poll() is None
        assert worker.terminate() == 0
    finally:
        worker.stop()

    assert ids_of(out) == expected  # the aborted transaction's record is never enriched
    assert clients.duplicates(out) == 0
    by_id = {r["id"]: r for r in out}
    for codec in CODECS:
        rec = by_id[f"{codec}-0"]
        assert rec["source"]["key"] == f"key-{codec}-0"
        assert rec["source"]["headers"] == [
            {"name": "traceparent", "value": TRACE.decode()},
            {"name": "bin", "value_base64": base64.b64encode(BINARY).decode()},
        ]
        assert _headers(rec["_kafka"]) == [("traceparent", TRACE), ("bin", BINARY)]
        assert rec["_kafka"]["key"] == f"{codec}-0".encode()  # outputs stay keyed by id
        assert len(rec["token_vectors"]) == rec["n_tokens"]
    assert "key" not in by_id["after-0"]["source"] and "headers" not in by_id["after-0"]["source"]
    for rec in out:
        rec.pop("_kafka")
        enriched_schema.validate(rec)

    kinds = {d["error"]["type"]: d for d in dead}
    assert set(kinds) == {"tombstone", "output_too_large"}
    tomb = kinds["tombstone"]
    assert tomb["source"]["key"] == "gone" and tomb["raw"]["encoding"] == "none"
    too_large = kinds["output_too_large"]
    assert too_large["source"]["key"] == "big"
    assert too_large["raw"] == {"encoding": "utf-8", "data": big.decode()}
    assert "--max-record-bytes" in too_large["error"]["message"]
    assert too_large["source"]["offset"] < by_id["after-0"]["source"]["offset"]
    for d in dead:
        d.pop("_kafka")
        dlq_schema.validate(d)

    # A restart in the same group finds everything committed: it redoes nothing. It starts
    # one short of the end, where workers before this fix left such a partition (the last
    # offset holds no record for it), and commits the end.
    end = committed_and_end(settings)[0][1]
    commit_for_group(settings, {0: end - 1})
    again = WorkerProcess(settings, tmp_path / "worker-again.log")
    try:
        again.wait_ready()
        assert wait_for(lambda: no_lag(settings), timeout=30), (
            committed_and_end(settings),
            again.log()[-4000:],
        )
        assert again.terminate() == 0
    finally:
        again.stop()
    out_after = consume_until(settings, settings.output_topic, lambda r: False, timeout=4)
    dead_after = consume_until(settings, settings.dlq_topic, lambda r: False, timeout=3)
    assert len(out_after) == len(out) and len(dead_after) == len(dead)


def test_a_batch_the_worker_cannot_decode_is_dead_lettered_and_the_partition_goes_on(
    broker, tiny_models, tmp_path: Path
) -> None:
    """The crash of the issue, reproduced: a worker without the snappy library (cramjam
    blocked) gets a snappy batch. It no longer exits: the batch becomes one dead letter with
    its offsets and raw bytes, and the records around it are enriched and committed."""
    blocker = tmp_path / "no-codecs"
    blocker.mkdir()
    (blocker / "cramjam.py").write_text("raise ImportError('blocked for this test')\n")
    settings = fresh_settings(broker.url, str(tiny_models["bert"]), partitions=1)
    create_topics(settings)
    worker = WorkerProcess(settings, tmp_path / "worker.log", {"PYTHONPATH": str(blocker)})
    try:
        worker.wait_ready()
        for codec, ids in (("none", ["a0", "a1"]), ("snappy", ["s0", "s1", "s2"])):
            producer = librdkafka_producer(settings, **{"compression.type": codec})
            for rid in ids:
                producer.produce(settings.input_topic, value=_doc(rid))
            producer.flush(10)
        producer = librdkafka_producer(settings)
        for rid in ("b0", "b1"):
            producer.produce(settings.input_topic, value=_doc(rid))
        producer.flush(10)
        want = {"a0", "a1", "b0", "b1"}
        out = consume_until(settings, settings.output_topic, lambda r: ids_of(r) >= want)
        dead = consume_until(settings, settings.dlq_topic, lambda r: len(r) >= 1, timeout=30)
        assert wait_for(lambda: committed_past(settings, out + dead), timeout=30), (
            committed_and_end(settings),
            worker.log()[-4000:],
        )
        assert worker.proc.poll() is None, "the worker must not exit on an undecodable batch"
        assert worker.terminate() == 0
    finally:
        worker.stop()
    assert ids_of(out) == want
    assert len(dead) == 1
    letter = dead[0]
    assert letter["error"]["type"] == "undecodable_batch"
    assert "snappy" in letter["error"]["message"] and "kcat" in letter["error"]["message"]
    assert letter["source"]["offset"] == 2 and letter["source"]["last_offset"] == 4
    batch = base64.b64decode(letter["raw"]["data"])
    assert int.from_bytes(batch[:8], "big") == 2  # the record batch's own base offset
    assert int.from_bytes(batch[8:12], "big") == len(batch) - 12
    letter.pop("_kafka")
    jsonschema.Draft202012Validator(schemas.load("dead-letter")).validate(letter)


@pytest.mark.parametrize("codec", CODECS)
def test_produce_compresses_with_each_codec_and_other_clients_read_it(
    broker, codec: str, tmp_path: Path
) -> None:
    """``stream-trf produce --compression`` writes batches librdkafka decodes, and ``consume``
    reads them back. (Debian's kcat links librdkafka 2.0, which cannot parse the embedded
    broker's ApiVersions v3 answer; confluent-kafka's librdkafka can.)"""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    from stream_trf import cli

    settings = fresh_settings(broker.url, "unused", partitions=1)
    lines = [_doc(f"{codec}-{i}") for i in range(5)]
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    argv = ["produce", str(path), "--topic", settings.input_topic, "--create-topic"]
    argv += ["--partitions", "1", "--compression", codec, "--header", "traceparent=abc"]
    assert cli.main([*argv, "--quiet", "--broker", settings.broker]) == 0

    reader = Consumer(
        {
            "bootstrap.servers": settings.bootstrap_servers()[0],
            "group.id": f"reader-{codec}",
            "auto.offset.reset": "earliest",
        }
    )
    reader.assign([TopicPartition(settings.input_topic, 0, OFFSET_BEGINNING)])  # no group join
    got: list[tuple[bytes, list]] = []
    deadline = time.monotonic() + 30
    try:
        while len(got) < 5 and time.monotonic() < deadline:
            m = reader.poll(0.5)
            if m is not None:
                assert m.error() is None, m.error()
                got.append((m.value(), m.headers()))
    finally:
        reader.close()
    assert [v for v, _ in got] == lines
    assert all(h == [("traceparent", b"abc")] for _, h in got)
    back = consume_until(settings, settings.input_topic, lambda r: len(r) >= 5, timeout=20)
    assert [orjson.dumps({k: v for k, v in r.items() if k != "_kafka"}) for r in back] == lines
