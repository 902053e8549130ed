"""Undecodable record batches become one marked record each (stream/undecodable.py), read
through aiokafka's own fetched-records classes. The real consumer path is covered in
tests/integration/test_real_producers.py."""

from __future__ import annotations

import pytest
from aiokafka.consumer import fetcher
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.structs import TopicPartition

from stream_trf.stream.undecodable import UndecodableBatch, install

TP = TopicPartition("docs-in", 0)


def _batch(base_offset: int, values: list[bytes]) -> bytes:
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=0,
        is_transactional=0,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 20,
    )
    for i, value in enumerate(values):
        builder.append(i, timestamp=1_000 + i, key=b"k", value=value, headers=[("h", b"1")])
    raw = bytearray(builder.build())
    raw[:8] = base_offset.to_bytes(8, "big")  # the base offset is outside the CRC
    return bytes(raw)


def _read(buffer: bytes, fetch_offset: int = 0, check_crcs: bool = True) -> list:
    records = fetcher.MemoryRecords(buffer)
    parts = fetcher.PartitionRecords(
        TP,
        records,
        [],
        fetch_offset,
        None,
        None,
        check_crcs,
        0,  # READ_UNCOMMITTED
    )
    return list(parts)


@pytest.fixture(scope="module", autouse=True)
def guard() -> None:
    assert install() is True
    assert install() is True  # idempotent


def test_good_batches_come_through_unchanged() -> None:
    buffer = _batch(0, [b"a", b"b"]) + _batch(2, [b"c"])
    got = _read(buffer)
    assert [(r.offset, r.value, r.key, r.headers) for r in got] == [
        (0, b"a", b"k", (("h", b"1"),)),
        (1, b"b", b"k", (("h", b"1"),)),
        (2, b"c", b"k", (("h", b"1"),)),
    ]
    assert not any(isinstance(r.value, UndecodableBatch) for r in got)


def test_a_corrupt_batch_becomes_one_marker_between_its_neighbours() -> None:
    first, bad, last = (
        _batch(0, [b"a"]),
        bytearray(_batch(1, [b"b", b"c", b"d"])),
        _batch(4, [b"e"]),
    )
    bad[-3] ^= 0xFF  # a flipped byte in the records: the CRC no longer matches
    got = _read(first + bytes(bad) + last)
    assert [r.offset for r in got] == [0, 3, 4]  # the marker sits at the batch's last offset
    marker = got[1].value
    assert isinstance(marker, UndecodableBatch)
    assert (marker.first_offset, marker.last_offset) == (1, 3)
    assert "CRC" in marker.reason
    assert bytes(marker) == bytes(bad)  # the batch's bytes as fetched, nothing lost
    assert got[2].value == b"e"


def test_a_fetch_that_starts_inside_a_bad_batch_says_so() -> None:
    bad = bytearray(_batch(10, [b"x", b"y", b"z"]))
    bad[-3] ^= 0xFF
    (marker_record,) = _read(bytes(bad), fetch_offset=11)
    marker = marker_record.value
    assert (marker.first_offset, marker.last_offset) == (11, 12)


def test_records_that_do_not_parse_become_a_marker_even_without_crc_checks() -> None:
    """With check_crcs off, the flipped byte reaches the record parser (a header name that is
    not UTF-8): aiokafka raises there; the guard turns that into a marker too."""
    bad = bytearray(_batch(0, [b"a"]))
    bad[-3] ^= 0xFF
    (got,) = _read(bytes(bad), check_crcs=False)
    assert isinstance(got.value, UndecodableBatch)
    assert "UnicodeDecodeError" in got.value.reason
