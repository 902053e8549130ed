"""Consumer lag of the input topic: how far the consumer group is behind, per partition.

``lag = log-end offset - the group's committed offset``: the records written to a partition that
the group has not finished yet (Kafka's own tools and KEDA's ``kafka`` scaler count the same).
A partition without a committed offset counts from its log-start offset, where the workers
start (``auto_offset_reset="earliest"``). ``position`` is this worker's next fetch offset, for
the partitions it owns: the records between ``committed`` and ``position`` are in the worker
(buffered, computing or publishing).

Every worker reports every partition of the topic, not only its own: a partition nobody owns
(during a rebalance, or with every worker down) is exactly the one whose lag matters. So across
replicas take ``max by (topic, partition)`` before summing; a plain ``sum`` counts each partition
once per worker.

The log-end offset has two sources, each a lower bound of the true one at the time it is read:
the broker's answer to a ListOffsets request, and, for the worker's own partitions, the high
watermark of its last fetch response. The larger is the better estimate (some brokers, Tansu
among them, answer ListOffsets with the start of the last record batch + 1, not its end).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class PartitionLag:
    """One partition's offsets; every offset is the *next* one (Kafka's convention)."""

    partition: int
    end: int  # log-end offset: the offset the next record written will get
    committed: int | None  # the group's committed offset; None: the group never committed
    lag: int
    owned: bool = False  # this worker holds the partition
    position: int | None = None  # this worker's next fetch offset (owned partitions only)

    def to_json(self) -> dict[str, Any]:
        return {
            "partition": self.partition,
            "end": self.end,
            "committed": self.committed,
            "lag": self.lag,
            "owned": self.owned,
            "position": self.position,
        }


def partition_lag(
    partition: int,
    *,
    ends: Iterable[int | None],
    committed: int | None,
    start: int | None = None,
    owned: bool = False,
    position: int | None = None,
) -> PartitionLag:
    """The lag of one partition from what is known of it.

    ``ends``: readings of the log-end offset (None: unknown); each is a lower bound, and so are
    the committed offset and the position (nothing can be committed or fetched past the end).
    ``start``: the log-start offset, where a group without a committed offset begins."""
    known = [e for e in ends if e is not None]
    known += [o for o in (committed, position) if o is not None]
    end = max(known, default=0)
    base = committed if committed is not None else (start or 0)
    return PartitionLag(
        partition=partition,
        end=end,
        committed=committed,
        lag=max(0, end - base),
        owned=owned,
        position=position if owned else None,
    )


@dataclass(frozen=True)
class LagReading:
    """The lag of every partition of one topic for one consumer group, read at ``at``.

    ``error`` says why a reading failed; a failed reading has no partitions."""

    topic: str
    group: str
    at: float
    partitions: tuple[PartitionLag, ...] = ()
    error: str | None = None

    @property
    def total(self) -> int:
        return sum(p.lag for p in self.partitions)

    @property
    def owned(self) -> tuple[int, ...]:
        return tuple(p.partition for p in self.partitions if p.owned)

    def to_json(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "group": self.group,
            "at": self.at,
            "total": self.total if not self.error else None,
            "partitions": [p.to_json() for p in self.partitions],
            "error": self.error,
        }


def describe(reading: LagReading | None, now: float | None = None) -> str:
    """The lag in a few words, for the worker's progress line."""
    if reading is None:
        return "consumer lag not read yet"
    age = max(0.0, (time.time() if now is None else now) - reading.at)
    if reading.error:
        return f"consumer lag unknown ({reading.error}; {age:.0f} s ago)"
    if not reading.partitions:
        return f"consumer lag: no partitions of {reading.topic}"
    worst = max(reading.partitions, key=lambda p: p.lag)
    text = f"consumer lag {reading.total:,} on {len(reading.partitions)} partitions"
    if worst.lag:
        text += f" (max {worst.lag:,} on partition {worst.partition})"
    owned = reading.owned
    text += f", {len(owned)} of them here" if owned else ", none of them here"
    return text + (f", read {age:.0f} s ago" if age >= 2 else "")


@dataclass
class LagHistory:
    """The latest readings' totals, for the dashboard's sparkline (bounded)."""

    size: int = 240
    points: list[tuple[float, int | None]] = field(default_factory=list)

    def add(self, reading: LagReading) -> None:
        self.points.append((reading.at, None if reading.error else reading.total))
        if len(self.points) > self.size:
            del self.points[: len(self.points) - self.size]


__all__ = ["LagHistory", "LagReading", "PartitionLag", "describe", "partition_lag"]
