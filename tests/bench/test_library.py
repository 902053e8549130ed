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


def test_the_library_is_measured_as_a_stream_of_docs(tiny_models, monkeypatch) -> None:
    """Every wordpiece counted, and no more than a batch or two of docs alive at once: the
    library's figure is not charged for keeping the whole run's outputs."""
    import weakref

    from bench.harness.library import run_library

    texts = [r["text"] for r in shared_descriptions(80)]
    model = str(tiny_models["bert"])
    expected = sum(
        len(d._.trf_pieces.ids) for d in stream_trf.load(model, classifier=None).pipe(texts)
    )
    load = stream_trf.load
    most_alive: list[tuple[int, int]] = []  # per nlp.pipe call: (docs, most alive at once)

    def watched_load(*args, **kwargs):
        nlp = load(*args, **kwargs)
        pipe = nlp.pipe

        def watched_pipe(*a, **k):
            refs: list[weakref.ref] = []
            most = 0
            for doc in pipe(*a, **k):
                refs.append(weakref.ref(doc))
                most = max(most, sum(r() is not None for r in refs))
                yield doc
            most_alive.append((len(refs), most))

        nlp.pipe = watched_pipe
        return nlp

    monkeypatch.setattr(stream_trf, "load", watched_load)
    result = run_library(texts, model=model, words_per_batch=200, batch_size=8)
    assert result["wordpieces"] == expected
    assert result["sub_batches"] > 0 and 0 < result["padding_efficiency"] <= 1
    assert result["bare_model_same_batches_wordpieces_per_s"] > 0
    # the warm-up's 20 docs (kept: a list), then the measured 80 of which at most the batch
    # being handed out and the one before it were alive at once
    assert most_alive[0] == (20, 20)
    assert most_alive[1][0] == 80 and most_alive[1][1] <= 2 * 8
