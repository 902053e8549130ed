"""The library's measurement paired with the ceiling: chunk by chunk, on the same wordpieces."""

from __future__ import annotations

import pytest
from conftest import shared_descriptions

import stream_trf
from bench.harness.library import paired_with_ceiling


def test_pairing_times_each_chunk_of_the_library_and_the_packed_ceiling(tiny_models) -> None:
    texts = [r["text"] for r in shared_descriptions(60)]
    nlp = stream_trf.load(str(tiny_models["bert"]), classifier=None)
    shape = {"lanes": 2, "row_length": 16, "rows_per_batch": 4}
    paired = paired_with_ceiling(nlp, texts, shape, chunk_docs=25, batch_size=8)

    # chunks of 25, 25 and 10 docs; every one long enough to fill the shape once
    assert [c["docs"] for c in paired["chunks"]] == [25, 25, 10]
    # the library's side counts every wordpiece of its sentences, boundary tokens included
    docs = [list(nlp.pipe(texts[a : a + 25])) for a in (0, 25, 50)]
    per_chunk = [sum(len(d._.trf_pieces.ids) for d in chunk) for chunk in docs]
    lib_s = sum(n / c["library_wordpieces_per_s"] for n, c in zip(per_chunk, paired["chunks"]))
    assert paired["library_wordpieces_per_s"] == pytest.approx(sum(per_chunk) / lib_s, rel=1e-3)
    # the ceiling's side: that chunk's wordpieces in full rows of 16
    rows = [n // 16 * 16 for n in per_chunk]
    ceil_s = sum(n / c["ceiling_wordpieces_per_s"] for n, c in zip(rows, paired["chunks"]))
    assert paired["ceiling_wordpieces_per_s"] == pytest.approx(sum(rows) / ceil_s, rel=1e-3)
    assert paired["library_over_ceiling"] == pytest.approx(
        paired["library_wordpieces_per_s"] / paired["ceiling_wordpieces_per_s"], abs=1e-3
    )
    assert paired["shape"] == shape and paired["chunk_docs"] == 25


def test_a_chunk_too_short_for_the_ceiling_shape_is_left_out(tiny_models) -> None:
    nlp = stream_trf.load(str(tiny_models["bert"]), classifier=None)
    texts = ["A short one.", "Another short one."]
    paired = paired_with_ceiling(
        nlp, texts, {"lanes": 2, "row_length": 16, "rows_per_batch": 64}, chunk_docs=10
    )
    assert paired == {"chunks": []}
