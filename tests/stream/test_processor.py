"""``BatchProcessor.process``: one output per input message, in order; model failures contained."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
import torch
from jsonschema import Draft202012Validator

import stream_trf
from stream_trf import schemas
from stream_trf.stream.enrich import HeavyFields, ModelInfo
from stream_trf.stream.processor import BatchProcessor, Output, RawMessage
from stream_trf.stream.records import Source, raw_bytes

ENRICHED = Draft202012Validator(schemas.load("enriched"))
DEAD = Draft202012Validator(schemas.load("dead-letter"))
MODEL = ModelInfo("tiny-bert", "1")


@pytest.fixture(scope="module")
def nlp(tiny_models: dict[str, Path]) -> Any:
    return stream_trf.load(str(tiny_models["bert"]))


def _msg(value: bytes | None, offset: int, timestamp_ms: int | None = None) -> RawMessage:
    return RawMessage(value, Source("docs-in", offset % 3, offset), timestamp_ms)


def _good(i: int, text: str | None = None, **extra: Any) -> bytes:
    text = text if text is not None else f"Document number {i} is here. It has two sentences."
    return orjson.dumps({"id": f"doc-{i}-ü", "text": text, **extra})


def _validate(out: Output) -> dict[str, Any]:
    rec = orjson.loads(out.value)
    (ENRICHED if out.kind == "enriched" else DEAD).validate(rec)
    return rec


# (payload, dead-letter kind or None for a good record)
MIXED: list[tuple[bytes | None, str | None]] = [
    (_good(0, meta={"k": [1, "ü"]}), None),
    (b"", "empty_payload"),
    (None, "tombstone"),
    (b"\xff\xfe{}", "not_utf8"),
    (_good(1), None),
    (b"this line is not JSON", "invalid_json"),
    (b"[1, 2]", "not_an_object"),
    (b'{"text": "no id"}', "missing_id"),
    (_good(2, prediction={"label": "pos", "score": 0.5}), None),
    (b'{"id": 5, "text": "x"}', "bad_id"),
    (b'{"id": "a"}', "missing_text"),
    (b'{"id": "a", "text": 5}', "bad_text"),
    (b'{"id": "a", "text": "   "}', "empty_text"),
    (orjson.dumps({"id": "a", "text": "y" * 201}), "text_too_long"),
    (b'{"id": "a", "text": "x", "meta": []}', "bad_meta"),
    (b'{"id": "a", "text": "x", "prediction": {"label": 3}}', "bad_prediction"),
    (_good(3, "Short."), None),
    (_good(4, "y" * 200), None),  # exactly at the limit
]


def test_a_mixed_batch_gives_one_output_per_message_in_order(nlp: Any) -> None:
    messages = [_msg(value, i) for i, (value, _) in enumerate(MIXED)]
    proc = BatchProcessor(nlp, MODEL, max_text_chars=200, worker="w-7")
    outputs = proc.process(messages)
    assert len(outputs) == len(messages)
    words = 0
    for out, msg, (value, kind) in zip(outputs, messages, MIXED):
        rec = _validate(out)
        assert out.source == msg.source
        assert rec["source"] == msg.source.as_dict()
        assert rec["worker"] == "w-7"
        if kind is None:
            obj = orjson.loads(value)
            assert out.kind == "enriched"
            assert out.key == obj["id"].encode("utf-8")
            assert out.record_id == obj["id"] == rec["id"]
            assert rec["meta"] == obj.get("meta")
            tokens = nlp.make_doc(obj["text"])
            assert rec["n_tokens"] == len(tokens)
            words += sum(1 for t in tokens if not t.is_space and not t.is_punct)
        else:
            assert out.kind == "dead_letter"
            assert out.key is None
            assert out.record_id is None
            assert rec["error"]["type"] == kind
            assert raw_bytes(rec) == value
    kinds = Counter(k for _, k in MIXED if k is not None)
    stats = proc.stats
    assert stats.records == len(MIXED)
    assert stats.enriched == sum(1 for _, k in MIXED if k is None)
    assert stats.dead_letters == sum(kinds.values())
    assert stats.dead_letter_kinds == dict(kinds)
    assert stats.model_failures == 0
    assert stats.words == words
    assert stats.batches == 1


def test_stats_add_up_over_batches_and_an_empty_batch_is_fine(nlp: Any) -> None:
    proc = BatchProcessor(nlp, MODEL)
    start = time.perf_counter()
    assert proc.process([]) == []
    proc.process([_msg(_good(1), 0), _msg(b"", 1)])
    t0 = time.perf_counter()
    proc.process([_msg(_good(2), 2)])
    end = time.perf_counter()
    last, total = end - t0, end - start
    assert (proc.stats.records, proc.stats.enriched, proc.stats.dead_letters) == (3, 2, 1)
    assert proc.stats.batches == 3
    # the model thread's busy time (the worker logs its share): every call counts, and no
    # more than the calls took
    assert 0 < last <= proc.stats.busy_s <= total


def test_heavy_fields_and_no_worker_reach_the_output(nlp: Any) -> None:
    proc = BatchProcessor(nlp, MODEL, heavy=HeavyFields(tokens=True, wordpieces=True))
    (out,) = proc.process([_msg(_good(1), 0)])
    rec = _validate(out)
    assert "worker" not in rec
    assert rec["tokens"] == [t.text for t in nlp.make_doc(orjson.loads(_good(1))["text"])]
    assert len(rec["wordpieces"]) == rec["n_wordpieces"]


# --- model failures ----------------------------------------------------------------------------


class Poisoned:
    """The pipeline, failing every batch that holds a text with the marker (after the docs
    before it, like a real generator would)."""

    def __init__(self, nlp: Any, marker: str = "POISON") -> None:
        self.nlp = nlp
        self.marker = marker
        self.calls: list[int] = []

    def __getattr__(self, name: str) -> Any:  # the rest as the pipeline has it
        return getattr(self.nlp, name)

    def make_doc(self, text: str) -> Any:
        return self.nlp.make_doc(text)

    def pipe(self, docs: Any, batch_size: int = 256) -> Any:
        docs = list(docs)
        self.calls.append(len(docs))
        if any(self.marker in d.text for d in docs):
            for d in docs:
                if self.marker in d.text:
                    raise RuntimeError("boom")
                yield self.nlp(d)
        yield from self.nlp.pipe(docs, batch_size=batch_size)


class OutOfMemory:
    """The pipeline, out of memory for every batch of more than two records."""

    def __init__(self, nlp: Any) -> None:
        self.nlp = nlp
        self.calls: list[int] = []

    def __getattr__(self, name: str) -> Any:  # the rest as the pipeline has it
        return getattr(self.nlp, name)

    def make_doc(self, text: str) -> Any:
        return self.nlp.make_doc(text)

    def pipe(self, docs: Any, batch_size: int = 256) -> Any:
        docs = list(docs)
        self.calls.append(len(docs))
        if len(docs) > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self.nlp.pipe(docs, batch_size=batch_size)


TEXTS = [
    "Here is some text to encode.",
    "Apple shares rose on the news. Apple sold fewer iPhones this quarter.",
    "The quick brown fox jumps over the lazy dog!",
    "Über café naïve résumé façade.",
    "東京は日本の首都です。",
    "Numbers like 3.14159 and 2,718 appear in technical text.",
    "A sentence with   extra   spaces\tand\ttabs\nand newlines.",
    "don't can't won't it's",
    "Debian packages describe libraries, tools, fonts and documentation.",
    "x",
]


def _messages(poisoned: set[int]) -> list[RawMessage]:
    out = []
    for i, text in enumerate(TEXTS):
        if i in poisoned:
            text = f"This one is POISON number {i}."
        out.append(_msg(orjson.dumps({"id": f"id-{i}", "text": text}), 100 + i))
    return out


def _assert_same_enriched(got: dict[str, Any], want: dict[str, Any]) -> None:
    np.testing.assert_allclose(got.pop("doc_vector"), want.pop("doc_vector"), rtol=1e-4, atol=1e-5)
    got.pop("timings")
    want.pop("timings")
    assert got == want


@pytest.mark.parametrize("poisoned", [{4}, {0}, {9}, {2, 7}, {5, 6}])
def test_a_failing_record_is_dead_lettered_and_the_rest_are_enriched(
    nlp: Any, poisoned: set[int]
) -> None:
    messages = _messages(poisoned)
    model = Poisoned(nlp)
    proc = BatchProcessor(model, MODEL)
    outputs = proc.process(messages)
    reference = BatchProcessor(nlp, MODEL).process(
        [m for i, m in enumerate(messages) if i not in poisoned]
    )
    assert len(outputs) == len(messages)
    expected = iter(reference)
    for i, (out, msg) in enumerate(zip(outputs, messages)):
        rec = _validate(out)
        if i in poisoned:
            assert out.kind == "dead_letter"
            assert out.key is None
            assert rec["error"] == {"type": "model_error", "message": "RuntimeError: boom"}
            assert raw_bytes(rec) == msg.value
            assert rec["raw"]["encoding"] == "utf-8"
            assert rec["source"] == msg.source.as_dict()
        else:
            assert out.kind == "enriched"
            assert out.key == f"id-{i}".encode()
            _assert_same_enriched(rec, orjson.loads(next(expected).value))
    assert proc.stats.model_failures == len(poisoned)
    assert proc.stats.dead_letters == len(poisoned)
    assert proc.stats.dead_letter_kinds == {"model_error": len(poisoned)}
    assert proc.stats.enriched == len(messages) - len(poisoned)
    # Every record that failed was tried alone before it was given up.
    assert model.calls.count(1) >= len(poisoned)


def test_a_poisoned_record_among_invalid_ones_keeps_every_position(nlp: Any) -> None:
    messages = [
        _msg(b"not json", 0),
        _msg(orjson.dumps({"id": "p", "text": "POISON"}), 1),
        _msg(orjson.dumps({"id": "g", "text": "Fine."}), 2),
        _msg(None, 3),
    ]
    outputs = BatchProcessor(Poisoned(nlp), MODEL).process(messages)
    kinds = [
        orjson.loads(o.value)["error"]["type"] if o.kind == "dead_letter" else "enriched"
        for o in outputs
    ]
    assert kinds == ["invalid_json", "model_error", "enriched", "tombstone"]


def test_out_of_memory_for_big_batches_is_split_away_without_dead_letters(nlp: Any) -> None:
    messages = _messages(set())
    model = OutOfMemory(nlp)
    proc = BatchProcessor(model, MODEL)
    outputs = proc.process(messages)
    reference = BatchProcessor(nlp, MODEL).process(messages)
    assert [o.kind for o in outputs] == ["enriched"] * len(messages)
    for out, want in zip(outputs, reference):
        assert out.key == want.key
        _assert_same_enriched(_validate(out), orjson.loads(want.value))
    assert proc.stats.dead_letters == 0
    assert proc.stats.model_failures == 0
    assert max(model.calls) == len(messages)  # it was tried whole first
    assert sum(n for n in model.calls if n <= 2) == len(messages)  # then done in small pieces


# --- timings -----------------------------------------------------------------------------------


def test_timings_with_a_broker_timestamp(nlp: Any) -> None:
    before = time.time() * 1000
    ts = int(before) - 5000
    (out,) = BatchProcessor(nlp, MODEL).process([_msg(_good(1), 0, timestamp_ms=ts)])
    after = time.time() * 1000
    timings = _validate(out)["timings"]
    assert timings["ingested_at_ms"] == float(ts)
    assert 5000 - 1 <= timings["queued_ms"] <= after - ts + 1
    assert 0 <= timings["model_ms"] <= timings["batch_ms"] + 1e-3
    assert timings["batch_ms"] <= after - before + 1


def test_timings_without_a_broker_timestamp(nlp: Any) -> None:
    (out,) = BatchProcessor(nlp, MODEL).process([_msg(_good(1), 0)])
    timings = _validate(out)["timings"]
    assert "ingested_at_ms" not in timings and "queued_ms" not in timings
    assert {"model_ms", "batch_ms"} <= set(timings)


def test_a_timestamp_in_the_future_queues_for_zero(nlp: Any) -> None:
    ts = int(time.time() * 1000) + 60_000
    (out,) = BatchProcessor(nlp, MODEL).process([_msg(_good(1), 0, timestamp_ms=ts)])
    assert _validate(out)["timings"]["queued_ms"] == 0.0


def test_memory_stays_flat_on_a_stream_of_new_words(nlp: Any) -> None:
    """Strings a buffer adds to the vocab are dropped with the buffer (spaCy's memory zone), so
    a stream of ever-new words (package names, URLs) does not grow the worker's memory."""
    proc = BatchProcessor(nlp, MODEL)
    proc.process([_msg(_good(0), 0)])  # warm-up: the pipeline's own strings
    before = len(nlp.vocab.strings)
    for batch in range(3):
        words = [f"zq{batch}x{i}unseen" for i in range(200)]
        msgs = [_msg(_good(i, " ".join(words[i : i + 20]) + "."), i) for i in range(0, 200, 20)]
        outs = proc.process(msgs)
        assert [o.kind for o in outs] == ["enriched"] * len(msgs)
        rec = _validate(outs[0])  # serialized inside the zone: still whole afterwards
        assert rec["n_tokens"] == 21
        assert len(nlp.vocab.strings) == before
    assert words[0] not in nlp.vocab.strings


def test_warmup_buffers_keep_their_words_then_zones_take_over(nlp: Any, caplog: Any) -> None:
    """``vocab_warmup_chars``: the first buffers run outside any memory zone, so their words
    stay cached; once the budget is spent, each buffer's new words go with it again."""
    first = " ".join(f"zqwarm{i}word" for i in range(10)) + "."
    proc = BatchProcessor(nlp, MODEL, vocab_warmup_chars=len(first))
    with caplog.at_level("INFO", logger="stream_trf.stream.processor"):
        (out,) = proc.process([_msg(_good(0, first), 0)])
    assert out.kind == "enriched"
    assert not proc.zones.warming_up
    assert "vocabulary warm-up done after 1 buffers (1 records)" in caplog.text
    assert "zqwarm3word" in nlp.vocab.strings  # kept: warmed up
    before = len(nlp.vocab.strings)
    later = " ".join(f"zqlater{i}word" for i in range(10)) + "."
    outs = proc.process([_msg(_good(1, later), 1), _msg(_good(2, first), 2)])
    assert [_validate(o)["n_tokens"] for o in outs] == [11, 11]
    assert len(nlp.vocab.strings) == before
    assert "zqlater3word" not in nlp.vocab.strings


def test_the_processor_s_docs_keep_the_text_they_were_made_from(nlp: Any) -> None:
    from stream_trf.pipeline.extensions import kept_text
    from stream_trf.stream.processor import _docs_keeping_text

    texts = ["  Two sentences.  Here they are. ", "", "naïve café"]
    made = _docs_keeping_text(nlp, texts)
    assert not isinstance(made, list)  # lazy: nlp.pipe makes each doc where it tokenized
    for doc, text in zip(nlp.pipe(made), texts):
        assert kept_text(doc) == doc.text == text
        assert doc._.trf_pieces.text == text
