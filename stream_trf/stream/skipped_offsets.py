"""Offsets that hold nothing for the agent, committed once the record before them is acknowledged.

A transactional producer's commit and abort markers take offsets of their own, and an aborted
transaction's records never reach a ``read_committed`` consumer: aiokafka's position moves past
both. faust commits only the offsets of acknowledged messages (and fills a gap between two of
them), so a partition whose log ends in such offsets keeps its committed offset short of its
end. Its lag never reads zero, and an autoscaler that scales the group to zero on lag never
does.

After each fetch, the fetch loop (``stream/intake.py``) notes per partition the run of offsets
between the last record it read and aiokafka's position (:meth:`SkippedOffsets.note`). A run is
marked acknowledged in faust's books once the record before it is: acknowledgements come in
offset order within a partition, and a run marked earlier could let faust commit past an
unacknowledged record (its commit tolerates one missing offset right after the committed one).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any

from faust.types import TP
from faust.types.tuples import ack_lock

log = logging.getLogger(__name__)


@dataclass
class Run:
    """Offsets ``first`` to ``end - 1`` of a partition hold nothing for the agent."""

    first: int
    end: int
    # Nothing was read before it since the latest rebalance: what precedes it is committed.
    ready: bool


class SkippedOffsets:
    """Per partition, the runs ``[first, end)`` after a read record that hold nothing for the
    agent and wait for that record's acknowledgement."""

    def __init__(self) -> None:
        self.runs: dict[TP, list[Run]] = {}
        # The offset after the last record put in the intake since the latest rebalance.
        self.read_end: dict[TP, int] = {}
        self._broken = False

    def __bool__(self) -> bool:
        return bool(self.runs)

    def clear(self) -> None:
        """A rebalance: the partitions are read again from their committed offsets."""
        self.runs.clear()
        self.read_end.clear()

    def read(self, last_read: dict[TP, int]) -> None:
        """The last offset of each partition's records just put in the intake."""
        for tp, offset in last_read.items():
            self.read_end[tp] = offset + 1

    def note(
        self,
        consumer: Any,
        topic: str,
        active: Collection[TP] | None = None,
        dropped: Collection[TP] = (),
    ) -> None:
        """After a fetch whose records are in the intake: each partition of ``topic`` whose
        position is past the offset after its last record read (or, with none read since the
        latest rebalance, past the committed offset the fetch started from). Only partitions
        the fetch was for (``active``; None: all), and none whose fetched records were left
        unread (``dropped``)."""
        read_offset = consumer._read_offset
        for tp, position in self._positions(consumer, topic):
            if (active is not None and tp not in active) or tp in dropped:
                continue
            first = self.read_end.get(tp)
            ready = first is None  # nothing read since the seek to the committed offset
            if first is None:
                first = read_offset[tp]
                if first is None:
                    continue
            if position <= first:
                continue
            runs = self.runs.setdefault(tp, [])
            if runs and runs[-1].end == first:
                runs[-1].end = position
            else:
                runs.append(Run(first, position, ready))
            self.read_end[tp] = position
            # faust notes a gap from the last offset read to the next record it fetches
            read_offset[tp] = position - 1
        self.settle(consumer)

    def settle(self, consumer: Any) -> None:
        """Mark acknowledged every run whose record before it is acknowledged or committed."""
        if not self.runs:
            return
        committed_offsets = consumer._committed_offset
        for tp, runs in list(self.runs.items()):
            acked_index = consumer._acked_index[tp]
            committed = committed_offsets.get(tp)
            while runs:
                run = runs[0]
                first = run.first
                if not (
                    run.ready
                    or (first - 1) in acked_index
                    or (committed is not None and committed >= first)
                ):
                    break
                runs.pop(0)
                last = run.end - 1
                if committed is not None and last < committed:
                    continue
                with ack_lock:
                    if last > first:
                        consumer._gap[tp].addi(first, last)  # first .. last - 1
                    if last not in acked_index:
                        acked_index.add(last)
                        consumer._acked[tp].append(last)
            if not runs:
                del self.runs[tp]

    def _positions(self, consumer: Any, topic: str) -> Iterator[tuple[TP, int]]:
        """aiokafka's position in each assigned partition of ``topic``, read where its fetcher
        keeps it: its ``position`` coroutine would be a call into faust's consumer thread per
        partition and fetch. The fetcher moves it only while faust awaits a fetch."""
        if self._broken:
            return
        try:
            subscription = consumer._thread._consumer._subscription.subscription
            assignment = None if subscription is None else subscription.assignment
            if assignment is None:
                return
            for tp in assignment.tps:
                if tp.topic == topic:
                    state = assignment.state_value(tp)
                    if state is not None and state.has_valid_position:
                        yield TP(tp.topic, tp.partition), state.position
        except AttributeError as err:  # aiokafka's internals moved: commits as faust makes them
            self._broken = True
            log.warning(
                "cannot read aiokafka's fetch positions (%s): offsets after a partition's last "
                "record (transaction markers) will not be committed until a record follows",
                err,
            )
