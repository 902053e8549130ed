"""The packed ceiling: every wordpiece in full rows, no padding, and real timings."""

from __future__ import annotations

import numpy as np

from stream_trf.benchmark.ceiling import packed_ceiling, packed_rows


def test_packed_rows_keep_every_id_in_order_without_padding() -> None:
    seqs = [np.arange(5), np.arange(100, 103), np.arange(200, 209)]
    rows = packed_rows(seqs, 4)
    stream = np.concatenate(seqs)
    assert rows.shape == (len(stream) // 4, 4)
    assert np.array_equal(rows.ravel(), stream[: rows.size])


def test_packed_ceiling_measures_every_shape_and_takes_the_best(tiny_models) -> None:
    rng = np.random.default_rng(0)
    seqs = [rng.integers(5, 200, size=int(n)) for n in rng.integers(4, 40, size=60)]
    result = packed_ceiling(
        tiny_models["bert"], seqs, row_lengths=(8, 32), tokens_per_batch=(64, 256), max_tokens=512
    )
    shapes = result["shapes"]
    assert {(s["row_length"], s["rows_per_batch"]) for s in shapes} == {
        (8, 8),
        (8, 32),
        (32, 2),
        (32, 8),
    }
    assert all(s["wordpieces"] % s["row_length"] == 0 and s["seconds"] > 0 for s in shapes)
    assert result["wordpieces_per_s"] == max(s["wordpieces_per_s"] for s in shapes)
