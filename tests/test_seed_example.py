"""The example from "spaCy meets Transformers" (2019), adapted to spaCy 3 and this package."""

from __future__ import annotations

import numpy
from numpy.testing import assert_almost_equal


def test_seed_example(minilm_nlp) -> None:
    import stream_trf

    stream_trf.prefer_gpu()
    nlp = minilm_nlp
    doc = nlp("Here is some text to encode.")
    assert doc.tensor.shape == (7, 384)  # Always has one row per token
    assert doc._.trf_word_pieces_ == [
        "[CLS]",
        "here",
        "is",
        "some",
        "text",
        "to",
        "en",
        "##code",
        ".",
        "[SEP]",
    ]
    assert len(doc._.trf_word_pieces) == 10  # Wordpiece IDs (not spaCy's hash values)
    assert doc._.trf_alignment == [[1], [2], [3], [4], [5], [6, 7], [8]]
    # The raw transformer output has one row per wordpiece.
    assert len(doc._.trf_last_hidden_state) == len(doc._.trf_word_pieces)
    # To avoid losing information, doc.tensor is calculated so that the sum-pooled vectors match.
    assert_almost_equal(doc.tensor.sum(axis=0), doc._.trf_last_hidden_state.sum(axis=0), decimal=4)
    span = doc[2:4]
    # Access the tensor from Span elements (especially helpful for sentences).
    assert numpy.array_equal(span.tensor, doc.tensor[2:4])
    # .vector and .similarity use the transformer outputs.
    apple1 = nlp("Apple shares rose on the news.")
    apple2 = nlp("Apple sold fewer iPhones this quarter.")
    apple3 = nlp("Apple pie is delicious.")
    # The company is closer to the company than to the pie.
    assert apple1[0].similarity(apple2[0]) > apple1[0].similarity(apple3[0])
    assert apple1.similarity(apple2) > apple1.similarity(apple3)
