"""A buffer's outputs to one topic as one record batch per partition.

Handing the producer one record at a time cost more than the model on a fast device: faust's
channel and aiokafka's ``send`` build futures, callbacks and a partition lookup per record, on
the event loop that also fetches and acknowledges. Here the records of a buffer are grouped by
partition (the producer's own partitioner, so every record lands where ``send`` would have put
it), appended to aiokafka's batch builders and submitted with ``send_batch``: one future per
batch. A record larger than the producer's request limit is not batched: the caller sends it
alone and gets the producer's own "too large" error for it (stream/publisher.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from aiokafka.record.default_records import DefaultRecordBatchBuilder

Record = tuple[bytes | None, bytes, list[tuple[str, bytes]]]  # key, value, headers


class PartitionBatches:
    """Sends records to a topic in batches, one partition's records in order."""

    def __init__(self, producer: Callable[[], Any], max_request_bytes: int) -> None:
        """``producer``: returns the started ``AIOKafkaProducer``; ``max_request_bytes``: its
        ``max_request_size`` (a record above it is left to the caller)."""
        self._producer = producer
        self.max_request_bytes = max_request_bytes

    async def send(self, topic: str, records: Sequence[Record]) -> list[asyncio.Future[Any] | None]:
        """Submit ``records``; per record, the future of the batch that carries it (records
        of one batch share it), or None for a record to be sent alone. A batch the producer
        would not take gets a future failed with its error."""
        aio = self._producer()
        await aio.partitions_for(topic)  # metadata, known after the first call
        futures: list[asyncio.Future[Any] | None] = [None] * len(records)
        by_partition: dict[int, list[int]] = {}
        for i, (key, value, headers) in enumerate(records):
            size = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, headers)
            if size > self.max_request_bytes:
                continue
            # the producer's own choice (its partitioner over the topic's partitions)
            partition = aio._partition(topic, None, None, None, key, value)
            by_partition.setdefault(partition, []).append(i)
        for partition, members in by_partition.items():
            batch = aio.create_batch()
            held: list[int] = []
            for i in members:
                key, value, headers = records[i]
                if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                    await self._submit(aio, batch, topic, partition, held, futures)
                    batch, held = aio.create_batch(), []
                    # an empty batch takes any record (one within the request limit)
                    batch.append(key=key, value=value, timestamp=None, headers=headers)
                held.append(i)
            await self._submit(aio, batch, topic, partition, held, futures)
        return futures

    @staticmethod
    async def _submit(
        aio: Any,
        batch: Any,
        topic: str,
        partition: int,
        held: list[int],
        futures: list[asyncio.Future[Any] | None],
    ) -> None:
        if not held:
            return
        try:
            future = await aio.send_batch(batch, topic, partition=partition)
        except Exception as err:  # the producer stopping, a full queue that timed out
            future = asyncio.get_running_loop().create_future()
            future.set_exception(err)
        for i in held:
            futures[i] = future
