"""The per-document accessors of ``doc._.trf_pieces`` / ``doc._.trf_outputs`` read and write the
same value as spaCy's ``doc._`` (they go to ``doc.user_data`` directly, for speed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import stream_trf
from stream_trf.pipeline.extensions import (
    clear_doc_gradient,
    doc_outputs,
    doc_pieces,
    keep_text,
    kept_text,
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


TEXTS = [
    "  Leading spaces, then two sentences. Here\tis  the second.  ",
    "",
    "x",
    "Ünïcödé and an emoji 😀 at the end 😀",
]


def test_a_kept_text_is_what_the_wordpiecer_reads_and_gives_the_same_pieces(
    tiny_models: dict[str, Path],
) -> None:
    nlp = stream_trf.load(str(tiny_models["bert"]), outputs="pooled", doc_tensor=False)
    wordpiecer = nlp.get_pipe("trf_wordpiecer")
    rebuilt = [nlp.make_doc(t) for t in TEXTS]
    kept = [nlp.make_doc(t) for t in TEXTS]
    for doc, text in zip(kept, TEXTS):
        keep_text(doc, text)
        assert kept_text(doc) == text
    for docs in (rebuilt, kept):
        for doc in docs:
            nlp.get_pipe("sentencizer")(doc)
        wordpiecer.set_annotations(docs)
    for a, b, text in zip(rebuilt, kept, TEXTS):
        pa, pb = doc_pieces(a), doc_pieces(b)
        assert pa is not None and pb is not None
        assert pa.text == pb.text == text == a.text
        assert pa.strings == pb.strings
        np.testing.assert_array_equal(pa.ids, pb.ids)
        np.testing.assert_array_equal(pa.sentence_chars, pb.sentence_chars)


def test_a_kept_text_that_does_not_fit_the_tokens_is_not_read(
    tiny_models: dict[str, Path],
) -> None:
    nlp = stream_trf.load(str(tiny_models["bert"]), outputs="pooled", doc_tensor=False)
    text = "The real text of this doc."
    docs = [nlp.make_doc(text) for _ in range(3)]
    keep_text(docs[1], "Something else entirely, and longer.")
    keep_text(docs[2], "The real text of this cat.")  # the same length: taken as is
    for doc in docs:
        nlp.get_pipe("sentencizer")(doc)
    nlp.get_pipe("trf_wordpiecer").set_annotations(docs)
    plain, wrong, same_length = (doc_pieces(doc) for doc in docs)
    assert plain is not None and wrong is not None and same_length is not None
    assert wrong.text == plain.text == text
    assert wrong.strings == plain.strings
    # only the length is checked (the maker's word that the text is the doc's): a text of the
    # same length is read, so this test can see the kept text at all
    assert same_length.text == "The real text of this cat." and same_length.strings != plain.strings
