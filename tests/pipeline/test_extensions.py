"""The per-document accessors of ``doc._.trf_pieces`` / ``doc._.trf_outputs`` read and write the
same value as spaCy's ``doc._`` (they go to ``doc.user_data`` directly, for speed)."""

from __future__ import annotations

from pathlib import Path

import stream_trf
from stream_trf.pipeline.extensions import (
    clear_doc_gradient,
    doc_outputs,
    doc_pieces,
    set_doc_outputs,
    set_doc_pieces,
)


def test_direct_accessors_see_what_doc_underscore_sees(tiny_models: dict[str, Path]) -> None:
    nlp = stream_trf.load(str(tiny_models["bert"]), outputs="pooled", doc_tensor=False)
    doc = nlp("One sentence here. And another one.")
    assert doc_pieces(doc) is doc._.trf_pieces is not None
    assert doc_outputs(doc) is doc._.trf_outputs is not None
    blank = nlp.make_doc("Nothing ran on this.")
    assert doc_pieces(blank) is None and doc_outputs(blank) is None  # the registered default
    set_doc_pieces(blank, doc._.trf_pieces)
    set_doc_outputs(blank, doc._.trf_outputs)
    assert blank._.trf_pieces is doc._.trf_pieces
    assert blank._.trf_outputs is doc._.trf_outputs
    assert blank._.trf_word_pieces is doc._.trf_pieces.ids  # the getters read them too
    blank._.trf_pieces = None
    assert doc_pieces(blank) is None
    blank._.trf_d_last_hidden_state = 1.0
    clear_doc_gradient(blank)
    assert blank._.trf_d_last_hidden_state is None
    clear_doc_gradient(blank)  # twice: still the default
    assert blank._.trf_d_last_hidden_state is None
