""".vector and .similarity use the transformer, checked against sentence-transformers."""

from __future__ import annotations

import numpy as np
import pytest


def _cos(a, b) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_doc_vector_is_the_sentence_transformers_embedding(minilm_nlp, minilm_dir) -> None:
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(minilm_dir), device="cpu")
    texts = ["Apple shares rose on the news.", "A tool to convert PDF files to text", "Hello"]
    ref = st.encode(texts, normalize_embeddings=True)
    for text, r in zip(texts, ref):
        doc = minilm_nlp(text)
        assert _cos(doc.vector, r) > 0.9999
        assert doc.vector_norm == pytest.approx(float(np.linalg.norm(doc.vector)), rel=1e-6)
        assert doc.has_vector


def test_similarity_of_docs_spans_tokens(minilm_nlp) -> None:
    a = minilm_nlp("The cat sat on the mat.")
    b = minilm_nlp("A kitten was sitting on a rug.")
    c = minilm_nlp("Quarterly revenue fell sharply.")
    assert a.similarity(a) == pytest.approx(1.0, abs=1e-5)
    assert a.similarity(b) == pytest.approx(b.similarity(a), abs=1e-6)
    assert a.similarity(b) > a.similarity(c)
    assert a[1].vector.tolist() == a.tensor[1].tolist()
    assert a[0:3].vector == pytest.approx(a.tensor[0:3].mean(0), abs=1e-6)
    assert a[1].similarity(b[1]) == pytest.approx(_cos(a.tensor[1], b.tensor[1]), abs=1e-5)
    assert a[0:3].similarity(b[0:3]) == pytest.approx(
        _cos(a.tensor[0:3].mean(0), b.tensor[0:3].mean(0)), abs=1e-5
    )
