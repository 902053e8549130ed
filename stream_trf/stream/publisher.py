"""Publishing a batch's outputs, at least once, without letting one output stall a partition.

A batch's input offsets are committed only after every output of it was acknowledged, so an
output that is never acknowledged holds its partition, and with two batches in flight, the
worker. The broker's refusals come in two sorts:

* retriable (broker away, leader moved, timeouts, anything unknown): send again, with backoff
  and jitter, for as long as it takes — the record is good, the broker will take it;
* permanent for that record (too large, invalid, not authorized): sending again can never
  work. An enriched record refused so becomes a dead letter (``output_too_large`` or
  ``output_rejected``) carrying the input's payload and source; a dead letter refused so is
  sent once more without its payload; a dead letter refused even then is logged and counted
  (``stream_trf_unpublished_total``) and given up. The partition goes on in every case.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
from aiokafka import errors as kafka_errors

from .backoff import Backoff
from .batches import PartitionBatches
from .enrich import dumps
from .processor import Output
from .records import dead_letter

log = logging.getLogger("stream_trf.worker")

TOO_LARGE = (
    kafka_errors.MessageSizeTooLargeError,
    kafka_errors.RecordTooLargeError,
    kafka_errors.RecordListTooLargeError,
)
REJECTED = (
    kafka_errors.CorruptRecordException,
    kafka_errors.InvalidTimestampError,
    kafka_errors.UnsupportedForMessageFormatError,
    kafka_errors.UnsupportedCodecError,
    kafka_errors.TopicAuthorizationFailedError,
    kafka_errors.ClusterAuthorizationFailedError,
    kafka_errors.InvalidTopicError,
    kafka_errors.PolicyViolationError,
)


def permanent_failure(err: BaseException) -> str | None:
    """The dead-letter kind for an error no retry can cure, or None for a retriable one.

    faust wraps the producer's errors (``ProducerSendError`` from the original), so the whole
    chain of causes is looked at."""
    seen: set[int] = set()
    cause: BaseException | None = err
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, TOO_LARGE):
            return "output_too_large"
        if isinstance(cause, REJECTED):
            return "output_rejected"
        cause = cause.__cause__ or cause.__context__
    return None


Send = Callable[[Output], Awaitable[Any]]


@dataclass
class PublishStats:
    retries: int = 0  # rounds that had to send something again
    rerouted: Counter[str] = field(default_factory=Counter)  # outputs that became dead letters
    unpublished: Counter[str] = field(default_factory=Counter)  # given up, by kind


class Publisher:
    """Sends outputs (enriched records to ``output``, dead letters to ``dlq``) and returns once
    each was acknowledged, replaced by a dead letter, or given up as unpublishable."""

    def __init__(
        self,
        output: Any,
        dlq: Any,
        *,
        max_delay: float = 30.0,
        max_record_bytes: int | None = None,
        worker: str = "",
        on_unpublished: Callable[[Output, str], None] | None = None,
        on_retry: Callable[[], None] | None = None,
        batches: PartitionBatches | None = None,
    ) -> None:
        """``output``, ``dlq``: faust topics (``send``, ``get_topic_name``). ``batches``: send
        a buffer's outputs as one batch per partition (stream/batches.py) instead of one
        producer call each."""
        self.output = output
        self.dlq = dlq
        self.batches = batches
        self.max_delay = max_delay
        self.max_record_bytes = max_record_bytes
        self.worker = worker
        self.on_unpublished = on_unpublished
        self.on_retry = on_retry
        self.stats = PublishStats()

    @property
    def retries(self) -> int:
        return self.stats.retries

    async def publish(self, outputs: list[Output]) -> list[Output]:
        """Publish every output; returns what was published in their place (an enriched record
        refused for good appears as its dead letter; an output given up does not appear)."""
        published: dict[int, Output] = {}  # position in ``outputs`` → what was published
        pending = list(enumerate(outputs))
        stripped: set[int] = set()  # positions whose dead letter already went without payload
        backoff = Backoff(cap=self.max_delay)
        while pending:
            results = await self._send_all([o for _, o in pending])
            again: list[tuple[int, Output]] = []
            first_retriable: BaseException | None = None
            n_retriable = 0
            for (i, o), result in zip(pending, results):
                if not isinstance(result, BaseException):
                    published[i] = o
                    continue
                kind = permanent_failure(result)
                if kind is None:
                    first_retriable = first_retriable or result
                    n_retriable += 1
                    again.append((i, o))
                    continue
                instead = self._instead(o, kind, result, stripped_before=i in stripped)
                if instead is None:
                    continue
                if instead.kind == o.kind:  # the same dead letter, without its payload
                    stripped.add(i)
                again.append((i, instead))
            if first_retriable is not None:
                self.stats.retries += 1
                if self.on_retry is not None:
                    self.on_retry()
                delay = backoff.delay()
                log.warning(
                    "broker did not acknowledge %d of %d records (%s: %s); retrying in %.1fs",
                    n_retriable,
                    len(pending),
                    type(first_retriable).__name__,
                    first_retriable,
                    delay,
                )
                await asyncio.sleep(delay)
            pending = again
        return [published[i] for i in sorted(published)]

    async def _send_all(self, outputs: list[Output]) -> list[Any]:
        """Hand every output to the producer in order, then wait for each acknowledgement; an
        error comes back in its output's place.

        With ``batches``, each topic's outputs go as one batch per partition; an output the
        batches leave out (over the request limit) is sent alone, and so is each output of a
        batch the broker refused for good, so that only the one it refused becomes a dead
        letter."""
        if self.batches is None:
            return await self._send_each(outputs)
        futures: list[Any] = [None] * len(outputs)
        shared: list[bool] = [False] * len(outputs)
        for topic in (self.output, self.dlq):
            positions = [i for i, o in enumerate(outputs) if self._topic(o) is topic]
            if not positions:
                continue
            records = [
                (outputs[i].key, outputs[i].value, list(outputs[i].headers)) for i in positions
            ]
            try:
                batched = await self.batches.send(topic.get_topic_name(), records)
            except Exception as err:  # no metadata, producer stopping: retried as a whole
                batched = [_failed(err)] * len(positions)
            for i, future in zip(positions, batched):
                futures[i] = future
                shared[i] = future is not None
        alone = [i for i, f in enumerate(futures) if f is None]
        for i, result in zip(alone, await self._send_each([outputs[i] for i in alone])):
            futures[i] = _done(result)
        results = list(await asyncio.gather(*futures, return_exceptions=True))
        refused = [
            i
            for i, r in enumerate(results)
            if shared[i] and isinstance(r, BaseException) and permanent_failure(r) is not None
        ]
        for i, result in zip(refused, await self._send_each([outputs[i] for i in refused])):
            results[i] = result
        return results

    def _topic(self, o: Output) -> Any:
        return self.output if o.kind == "enriched" else self.dlq

    async def _send_each(self, outputs: list[Output]) -> list[Any]:
        """One producer call per output, in order; then wait for each acknowledgement."""
        futures: list[Any] = []
        for o in outputs:
            try:
                futures.append(
                    await self._topic(o).send(
                        key=o.key, value=o.value, headers=list(o.headers) or None
                    )
                )
            except Exception as err:  # refused before it left: too large, producer stopping
                futures.append(_failed(err))
        return list(await asyncio.gather(*futures, return_exceptions=True))

    def _instead(
        self, o: Output, kind: str, err: BaseException, *, stripped_before: bool
    ) -> Output | None:
        """What to send in place of an output the broker refused for good (None: give up)."""
        src = o.source
        where = f"{src.topic}[{src.partition}]@{src.offset}"
        if o.kind == "enriched":
            self.stats.rerouted[kind] += 1
            message = self._refusal(o, kind, err)
            log.error("enriched record for %s refused for good: %s", where, message)
            record = dead_letter(o.raw, src, kind, message, worker=self.worker)
            return Output("dead_letter", None, dumps(record), src, None, o.raw, reason=kind)
        if not stripped_before and o.raw is not None:
            record = orjson.loads(o.value)
            record = dead_letter(
                o.raw,
                src,
                record["error"]["type"],
                record["error"]["message"]
                + f" (its payload was left out: the dead letter with it was refused: {err})",
                worker=self.worker,
                omit_raw=True,
            )
            log.warning(
                "dead letter for %s refused (%s): sending it without its payload", where, err
            )
            return replace(o, value=dumps(record))
        self.stats.unpublished[o.reason or o.kind] += 1
        log.error(
            "giving up on the dead letter for %s (%s, %s: %s): it cannot be published. The "
            "input is still in %s at that offset; its offset is committed so the partition "
            "goes on",
            where,
            o.reason or "dead letter",
            type(err).__name__,
            err,
            src.topic,
        )
        if self.on_unpublished is not None:
            self.on_unpublished(o, kind)
        return None

    def _refusal(self, o: Output, kind: str, err: BaseException) -> str:
        size = f"the enriched record is {len(o.value):,} bytes"
        if kind == "output_too_large":
            limit = (
                f"; this worker's producer takes records up to {self.max_record_bytes:,} bytes "
                "(--max-record-bytes)"
                if self.max_record_bytes
                else ""
            )
            return (
                f"{size}, more than the producer or the broker accepts ({err}){limit}. Ask for "
                "smaller records (--vector-encoding base64-f16, or without --emit-tokens / "
                "--emit-wordpieces), or raise the limit on the worker (--max-record-bytes) and "
                "on the output topic (max.message.bytes)"
            )
        return (
            f"{size} and the broker refused it for good ({type(err).__name__}: {err}); check "
            "the output topic's configuration and this worker's permissions on it"
        )


def _failed(err: BaseException) -> asyncio.Future[Any]:
    fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    fut.set_exception(err)
    return fut


def _done(result: Any) -> asyncio.Future[Any]:
    """A future already holding ``result`` (an exception is set as the future's error)."""
    if isinstance(result, BaseException):
        return _failed(result)
    fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    fut.set_result(result)
    return fut
