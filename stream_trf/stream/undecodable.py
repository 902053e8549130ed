"""Record batches the consumer cannot decode become one marked record each, not a crash.

aiokafka decodes a fetched record batch while the application iterates it. A batch it cannot
decode — a codec whose library is missing, a CRC that does not match, a batch cut short —
raises out of ``getmany``: faust's fetcher dies, the worker exits, and its restart fetches the
same batch again (a crash loop that stalls the partition for good).

:func:`install` wraps aiokafka's fetched-records classes so that such a batch yields a single
record at the batch's *last* offset whose value is an :class:`UndecodableBatch`: the batch's
raw bytes, what failed and which offsets it covered. The worker turns it into a dead letter
(``undecodable_batch``) and acknowledges it like any record, so the committed offset moves past
the whole batch and the partition goes on. Batches that decode are untouched.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from ..errors import describe

log = logging.getLogger(__name__)

_INSTALLED = "_stream_trf_undecodable_guard"


class UndecodableBatch(bytes):
    """The raw bytes of a record batch that could not be decoded, and why."""

    reason: str
    first_offset: int
    last_offset: int

    def __new__(
        cls, raw: bytes, *, reason: str, first_offset: int, last_offset: int
    ) -> UndecodableBatch:
        obj = super().__new__(cls, raw)
        obj.reason = reason
        obj.first_offset = first_offset
        obj.last_offset = last_offset
        return obj


class _MarkerRecord:
    """Quacks like one of aiokafka's decoded records, for the batch that would not decode."""

    __slots__ = ("checksum", "headers", "key", "offset", "timestamp", "timestamp_type", "value")

    def __init__(self, batch: Any, value: UndecodableBatch) -> None:
        self.offset = value.last_offset
        self.timestamp = _safe(lambda: batch.max_timestamp) or _safe(lambda: batch.first_timestamp)
        self.timestamp_type = _safe(lambda: batch.timestamp_type) or 0
        self.key = None
        self.value = value
        self.checksum = None
        self.headers: list[tuple[str, bytes]] = []


def _safe(read: Any) -> Any:
    try:
        return read()
    except Exception:
        return None


class _CheckedBatch:
    """One fetched batch, decoded up front so that a failure is caught here, batch by batch."""

    def __init__(
        self, batch: Any, raw: bytes, fetch_offset: int, check_crcs: bool, where: str
    ) -> None:
        self._batch = batch
        self._next = 0
        self.records: list[Any]
        try:
            if check_crcs and not batch.validate_crc():
                raise ValueError("the batch's CRC does not match its bytes (corrupt record batch)")
            self.records = list(batch)
        except Exception as err:
            first = max(int(batch.base_offset), fetch_offset)
            last = int(batch.next_offset) - 1
            reason = describe(err)
            log.error(
                "cannot decode the record batch of %s at offsets %d-%d (%s); it becomes an "
                "undecodable_batch dead letter holding its bytes, and the partition goes on. "
                "If a codec library is missing, reinstall stream_trf (cramjam)",
                where,
                first,
                last,
                reason,
            )
            marker = UndecodableBatch(raw, reason=reason, first_offset=first, last_offset=last)
            self.records = [_MarkerRecord(batch, marker)]

    def validate_crc(self) -> bool:
        return True  # checked in __init__; a bad batch already became a marker

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        # one pass, like aiokafka's own batches (it reads a control batch's first record with
        # next() and iterates data batches with for)
        if self._next >= len(self.records):
            raise StopIteration
        self._next += 1
        return self.records[self._next - 1]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._batch, name)


class _RecordsWithBytes:
    """aiokafka's ``MemoryRecords`` that also hands out each batch's raw bytes.

    Every batch, v0/v1 message or v2 record batch, starts with its base offset (int64) and the
    length of the rest (int32), so the bytes of batch ``i`` are found by walking those
    prefixes in step with ``next_batch``."""

    def __init__(self, buffer: Any, records_class: Any) -> None:
        self._buffer = memoryview(buffer)
        self._records = records_class(buffer)
        self._position = 0
        self.fetch_offset = 0
        self.check_crcs = True
        self.where = "a partition"

    def has_next(self) -> bool:
        return bool(self._records.has_next())

    def size_in_bytes(self) -> int:
        return int(self._records.size_in_bytes())

    def next_batch(self) -> Any:
        batch = self._records.next_batch()
        if batch is None:
            return None
        start = self._position
        length = int.from_bytes(self._buffer[start + 8 : start + 12], "big", signed=True)
        end = start + 12 + max(length, 0)
        self._position = end
        raw = bytes(self._buffer[start:end])
        return _CheckedBatch(batch, raw, self.fetch_offset, self.check_crcs, self.where)


def install() -> bool:
    """Guard aiokafka's consumer in this process (idempotent). False, with a warning, where
    aiokafka's internals are not the ones this was written against: then a bad batch stops the
    consumer as before."""
    try:
        from aiokafka.consumer import fetcher
    except ImportError:  # pragma: no cover - aiokafka is a dependency
        return False
    if getattr(fetcher, _INSTALLED, False):
        return True
    records_class = getattr(fetcher, "MemoryRecords", None)
    partition_records = getattr(fetcher, "PartitionRecords", None)
    init = getattr(partition_records, "__init__", None)
    if records_class is None or init is None or not hasattr(partition_records, "_unpack_records"):
        log.warning(
            "aiokafka %s is not laid out as expected: undecodable record batches will stop the "
            "consumer instead of becoming dead letters",
            getattr(__import__("aiokafka"), "__version__", "?"),
        )
        return False

    def partition_records_init(self: Any, tp: Any, records: Any, *args: Any, **kwargs: Any) -> None:
        # aiokafka's signature: (tp, records, aborted_transactions, fetch_offset,
        # key_deserializer, value_deserializer, check_crcs, isolation_level)
        if isinstance(records, _RecordsWithBytes):
            records.where = f"{tp.topic}[{tp.partition}]"
            records.fetch_offset = int(args[1] if len(args) > 1 else kwargs["fetch_offset"])
            records.check_crcs = bool(args[4] if len(args) > 4 else kwargs.get("check_crcs", True))
        init(self, tp, records, *args, **kwargs)

    fetcher.MemoryRecords = lambda buffer: _RecordsWithBytes(buffer, records_class)
    setattr(partition_records, "__init__", partition_records_init)  # noqa: B010
    setattr(fetcher, _INSTALLED, True)
    return True


__all__ = ["UndecodableBatch", "install"]
