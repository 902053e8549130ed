"""The worker end to end against the real embedded broker over a socket."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import jsonschema
import numpy as np
import orjson
import pytest
from worker_harness import (
    TcpProxy,
    consume_until,
    create_topics,
    fresh_settings,
    ids_of,
    produce_json,
    produce_raw,
    wait_for,
)

import stream_trf
from stream_trf import schemas
from stream_trf.stream import clients
from stream_trf.stream.broker import EmbeddedBroker, free_port
from stream_trf.stream.local import WorkerProcess

WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "zeta",
    "eta",
    "theta",
    "iota",
    "kappa",
    "lambda",
]


def _docs(n: int, prefix: str = "d") -> list[dict]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        words = rng.choice(WORDS, size=int(rng.integers(3, 40)))
        text = " ".join(words) + ". " + " ".join(rng.choice(WORDS, size=5)) + "!"
        out.append({"id": f"{prefix}{i}", "text": text, "meta": {"n": i}})
    return out


@pytest.fixture()
def tiny_bert(tiny_models) -> str:
    return str(tiny_models["bert"])


def test_ids_in_equal_ids_out_and_bad_input_goes_to_the_dlq(
    broker, tiny_bert, tmp_path: Path
) -> None:
    settings = fresh_settings(broker.url, tiny_bert)
    create_topics(settings)
    good = _docs(150)
    good[3]["prediction"] = {"label": "spam", "score": 0.9}
    produce_json(settings, good[:75])
    bad = [
        b"not json at all",
        b"\xff\xfe\xfd",
        b"[1, 2, 3]",
        b'{"text": "no id"}',
        b'{"id": 7, "text": "id is a number"}',
        b'{"id": "x1"}',
        b'{"id": "x2", "text": "   "}',
        orjson.dumps({"id": "x3", "text": "a" * 5001}),
        b'{"id": "x4", "text": "ok", "prediction": {"label": "a", "score": "high"}}',
        b"",
    ]
    produce_raw(settings, bad)
    produce_json(settings, good[75:])
    worker = WorkerProcess(settings.with_(max_text_chars=5000), tmp_path / "worker.log")
    try:
        worker.wait_ready()
        out = consume_until(settings, settings.output_topic, lambda r: ids_of(r) >= ids_of(good))
        dead = consume_until(settings, settings.dlq_topic, lambda r: len(r) >= len(bad), timeout=30)
    finally:
        worker.terminate()
    assert ids_of(out) == ids_of(good)
    assert clients.duplicates(out) == 0
    # It set up its allocator before loading the model (stream/memory.py: flat RSS).
    assert "memory: mmap threshold pinned at 4 MiB; torch huge pages on" in worker.log()
    enriched_schema = jsonschema.Draft202012Validator(schemas.load("enriched"))
    dead_schema = jsonschema.Draft202012Validator(schemas.load("dead-letter"))
    nlp = stream_trf.load(tiny_bert)
    by_id = {r["id"]: r for r in out}
    for rec in out:
        rec.pop("_kafka")
        enriched_schema.validate(rec)
        assert rec["source"]["topic"] == settings.input_topic
    # The numbers are the library's, computed independently here.
    for doc_in in good[:5]:
        rec = by_id[doc_in["id"]]
        doc = nlp(doc_in["text"])
        assert rec["meta"] == doc_in["meta"]
        assert rec["n_tokens"] == len(doc)
        assert rec["n_wordpieces"] == len(doc._.trf_word_pieces)
        np.testing.assert_allclose(rec["doc_vector"], doc.vector, atol=1e-4)
    assert by_id["d3"]["production"] == {"label": "spam", "score": 0.9, "agrees": None}
    # Dead letters: one per bad record, each with its reason and its payload back.
    assert len(dead) == len(bad)
    kinds = sorted(d["error"]["type"] for d in dead)
    assert kinds == sorted(
        [
            "invalid_json",
            "not_utf8",
            "not_an_object",
            "missing_id",
            "bad_id",
            "missing_text",
            "empty_text",
            "text_too_long",
            "bad_prediction",
            "empty_payload",
        ]
    )
    payloads = set()
    for d in dead:
        d.pop("_kafka")
        dead_schema.validate(d)
        raw = d["raw"]
        payloads.add(
            base64.b64decode(raw["data"])
            if raw["encoding"] == "base64"
            else (raw["data"] or "").encode()
        )
    assert payloads == set(bad)
    assert worker.proc.returncode == 0


def test_unreachable_broker_at_start_is_retried(tiny_bert, tmp_path: Path) -> None:
    port = free_port()
    settings = fresh_settings(f"kafka://127.0.0.1:{port}", tiny_bert)
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    try:
        assert wait_for(lambda: worker.log().count("cannot reach the broker") >= 2, timeout=30)
        assert worker.proc.poll() is None
        with EmbeddedBroker(port=port) as late_broker:
            create_topics(settings.with_(broker=late_broker.url))
            worker.wait_ready(timeout=120)
            docs = _docs(20, prefix="late")
            produce_json(settings, docs)
            out = consume_until(
                settings, settings.output_topic, lambda r: ids_of(r) >= ids_of(docs)
            )
            assert ids_of(out) == ids_of(docs)
            assert worker.terminate() == 0
    finally:
        worker.stop()


def test_broker_that_goes_away_and_comes_back_needs_no_worker_restart(
    tiny_bert, tmp_path: Path
) -> None:
    """The worker reaches the broker through a proxy; cutting the proxy makes the broker vanish
    (every connection dropped, nothing listening) with its storage intact, as a broker restart
    or a network partition would."""
    public_port = free_port()
    with EmbeddedBroker(advertised_port=public_port) as broker:
        proxy = TcpProxy(public_port, broker.port)
        proxy.restore()
        settings = fresh_settings(broker.url, tiny_bert)
        create_topics(settings)
        worker = WorkerProcess(settings, tmp_path / "worker.log")
        try:
            worker.wait_ready()
            before = _docs(30, prefix="before")
            produce_json(settings, before)
            out = consume_until(
                settings, settings.output_topic, lambda r: ids_of(r) >= ids_of(before)
            )
            assert ids_of(out) == ids_of(before)
            proxy.cut()
            assert wait_for(lambda: "Connect call failed" in worker.log(), timeout=30)
            time.sleep(8)  # longer than the session timeout: the group forgets the member
            assert worker.proc.poll() is None, "the worker keeps running without its broker"
            proxy.restore()
            after = _docs(30, prefix="after")
            produce_json(settings, after)
            out = consume_until(
                settings, settings.output_topic, lambda r: ids_of(r) >= ids_of(after), timeout=120
            )
            assert ids_of(out) >= ids_of(before) | ids_of(after)
            assert worker.terminate() == 0
        finally:
            worker.stop()
            proxy.close()
