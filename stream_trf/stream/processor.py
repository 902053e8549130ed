"""One buffer of raw messages → one output per message (enriched record or dead letter).

Synchronous and broker-free: the worker runs it in a thread, tests run it directly. Model
failures are contained by bisection: a failing batch is split in halves until the record that
fails alone is found; that record becomes a dead letter and the rest go on.

Each buffer runs inside spaCy's memory zone (stream/zones.py): every string a buffer adds to
the vocab (package names, URLs, numbers: a stream never runs out of new ones) is dropped when
the buffer is done, and the vocab's hash tables are kept from growing, so a long-running
worker's memory stays flat. Outputs are serialized inside the zone. The first buffers, up to
``vocab_warmup_chars`` characters of text, run outside any zone instead, so that the stream's
common words stay in spaCy's caches (its tokenizer caches nothing inside a zone). After
each buffer the freed heap goes back to the OS (stream/memory.py: glibc would keep it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..pipeline.extensions import keep_text
from .enrich import HeavyFields, ModelInfo, dumps, enrich_batch
from .memory import release_freed_memory
from .records import Headers, InputRecord, InvalidRecord, Source, dead_letter, parse
from .zones import BufferZones

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Doc

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RawMessage:
    value: bytes | None
    source: Source  # with the record's key and headers
    timestamp_ms: int | None = None
    # set when the consumer could not decode the record batch: ``value`` is then the batch's
    # raw bytes and ``source`` covers its offsets (stream/undecodable.py)
    undecodable: str | None = None


@dataclass(frozen=True)
class Output:
    """What to publish for one input message."""

    kind: str  # "enriched" or "dead_letter"
    key: bytes | None
    value: bytes
    source: Source
    record_id: str | None = None
    # the input's payload as it arrived: what a dead letter carries if this output cannot be
    # published (stream/publisher.py)
    raw: bytes | None = field(default=None, repr=False)
    reason: str | None = None  # a dead letter's kind (its error type)
    # an enriched record as a dict, for the monitor (saves parsing ``value`` back)
    record: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    @property
    def headers(self) -> Headers:
        """The input record's headers, passed on with its output (trace ids and the like)."""
        return self.source.headers


@dataclass
class ProcessorStats:
    records: int = 0
    enriched: int = 0
    dead_letters: int = 0
    model_failures: int = 0
    words: int = 0
    batches: int = 0
    busy_s: float = 0.0  # wall time inside ``process``: how busy the model thread is
    dead_letter_kinds: dict[str, int] = field(default_factory=dict)


class BatchProcessor:
    def __init__(
        self,
        nlp: Any,
        model: ModelInfo,
        *,
        max_text_chars: int = 1_000_000,
        heavy: HeavyFields | None = None,
        worker: str = "",
        batch_size: int = 256,
        vocab_warmup_chars: int = 0,
        on_warmup_done: Callable[[], Any] | None = None,
        release: Callable[[], Any] = release_freed_memory,
    ) -> None:
        """``release``: called after each buffer to hand freed heap back (stream/memory.py)."""
        self.nlp = nlp
        # the records read no lexical attribute but IS_PUNCT and IS_SPACE (stream/enrich.py)
        self.zones = BufferZones(nlp, vocab_warmup_chars, lean_lexemes=True)
        self.model = model
        self.max_text_chars = max_text_chars
        self.heavy = heavy or HeavyFields()
        self.worker = worker
        self.batch_size = batch_size
        self.stats = ProcessorStats()
        self.on_warmup_done = on_warmup_done
        self.release = release

    def process(self, messages: list[RawMessage]) -> list[Output]:
        t0 = time.perf_counter()
        outputs = self._process(messages)
        self.release()
        self.stats.busy_s += time.perf_counter() - t0
        return outputs

    def _process(self, messages: list[RawMessage]) -> list[Output]:
        started = time.time()
        outputs: list[Output | None] = [None] * len(messages)
        valid: list[tuple[int, InputRecord]] = []
        for i, msg in enumerate(messages):
            if msg.undecodable is not None:
                outputs[i] = self._dead(
                    msg.value, msg.source, "undecodable_batch", undecodable_message(msg)
                )
                continue
            try:
                valid.append(
                    (
                        i,
                        parse(
                            msg.value,
                            msg.source,
                            max_text_chars=self.max_text_chars,
                            timestamp_ms=msg.timestamp_ms,
                        ),
                    )
                )
            except InvalidRecord as err:
                outputs[i] = self._dead(msg.value, msg.source, err.kind, err.message)
        was_warming_up = self.zones.warming_up
        with self.zones.buffer(sum(len(r.text) for _, r in valid)):
            for i, out in self._run(valid, started):
                outputs[i] = out
        if was_warming_up and not self.zones.warming_up:
            log.info(
                "vocabulary warm-up done after %d buffers (%d records): their words stay "
                "cached, and every buffer from now on runs in its own memory zone",
                self.zones.warmup_buffers,
                self.stats.records + len(messages),
            )
            if self.on_warmup_done is not None:
                self.on_warmup_done()
        self.stats.records += len(messages)
        self.stats.batches += 1
        assert all(o is not None for o in outputs)
        return [o for o in outputs if o is not None]

    def _run(
        self, items: list[tuple[int, InputRecord]], started: float
    ) -> list[tuple[int, Output]]:
        if not items:
            return []
        t0 = time.time()
        try:
            docs = list(
                self.nlp.pipe(
                    _docs_keeping_text(self.nlp, [r.text for _, r in items]),
                    batch_size=self.batch_size,
                )
            )
        except Exception as err:  # contained: split, and dead-letter what fails alone
            if len(items) == 1:
                i, record = items[0]
                self.stats.model_failures += 1
                log.exception("record %s failed in the model", record.id)
                return [
                    (
                        i,
                        self._dead(
                            record.raw, record.source, "model_error", f"{type(err).__name__}: {err}"
                        ),
                    )
                ]
            log.warning("batch of %d failed (%s): splitting", len(items), type(err).__name__)
            half = len(items) // 2
            return self._run(items[:half], started) + self._run(items[half:], started)
        model_s = time.time() - t0
        per_doc_ms = 1000 * model_s / len(items)
        done = time.time()
        batch_ms = 1000 * (done - started)
        timings = []
        for _, record in items:
            t = {"model_ms": per_doc_ms, "batch_ms": batch_ms}
            if record.timestamp_ms is not None:
                t["ingested_at_ms"] = float(record.timestamp_ms)
                t["queued_ms"] = max(0.0, started * 1000 - record.timestamp_ms)
            timings.append(t)
        records = [record for _, record in items]
        enriched = enrich_batch(docs, records, self.model, timings, self.heavy, self.worker)
        out = []
        for (i, record), rec in zip(items, enriched):
            self.stats.words += rec["n_words"]
            self.stats.enriched += 1
            out.append(
                (
                    i,
                    Output(
                        "enriched",
                        record.id.encode("utf-8"),
                        dumps(rec),
                        record.source,
                        record.id,
                        record.raw,
                        record=rec,
                    ),
                )
            )
        return out

    def _dead(self, raw: bytes | None, source: Source, kind: str, message: str) -> Output:
        self.stats.dead_letters += 1
        self.stats.dead_letter_kinds[kind] = self.stats.dead_letter_kinds.get(kind, 0) + 1
        value = dumps(dead_letter(raw, source, kind, message, worker=self.worker))
        return Output("dead_letter", None, value, source, raw=raw, reason=kind)


def undecodable_message(msg: RawMessage) -> str:
    """What went wrong with an undecodable batch, and how to get its records back."""
    src = msg.source
    last = src.offset if src.last_offset is None else src.last_offset
    return (
        f"the record batch at offsets {src.offset}-{last} of {src.topic}[{src.partition}] "
        f"could not be decoded ({msg.undecodable}); 'raw' holds the batch's bytes as fetched. "
        "If a compression library is missing, reinstall stream_trf (cramjam decodes gzip, "
        "snappy, lz4 and zstd); if the batch is corrupt, fix the producer. Then replay those "
        f"offsets, e.g. kcat -C -b BROKER -t {src.topic} -p {src.partition} -o {src.offset} "
        f"-c {last - src.offset + 1} -e"
    )


def _docs_keeping_text(nlp: Language, texts: list[str]) -> Iterator[Doc]:
    """``nlp.make_doc`` of each text, lazily (``nlp.pipe`` runs it where it ran the tokenizer),
    each doc keeping its text: the wordpiecer reads it instead of rebuilding it per token."""
    for text in texts:
        doc = nlp.make_doc(text)
        keep_text(doc, text)
        yield doc
