"""XLM, the seed's fourth family: a slow (pure-Python) tokenizer that lowercases, strips accents,
runs Moses and marks word ends with </w>, and gives no character offsets. Its pieces are aligned
to the text by their strings; every result is checked against the tokenizer and the HF model
run on each sentence alone."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import numpy as np
import pytest
from conftest import hf_reference
from transformers import AutoTokenizer

import stream_trf
from stream_trf.model.source import load_tokenizer
from stream_trf.pipeline.extensions import _wp
from stream_trf.text.wordpieces import (
    class_token_position,
    content_offsets,
    piece_text,
    tokenize_sentences,
)
from stream_trf.training.data import truncate_to_wordpieces

TEXTS = [
    "Über Café naïve Résumé façade.",
    "Apple shares rose on the news. Apple sold fewer iPhones this quarter!",
    '"Quotes" & São Paulo, 3.14 and 2,718 -- a </s> and <s> in the text.',
    "   spaces   inside\tand\ttabs  ",
]


@pytest.fixture(scope="module")
def xlm(tiny_models) -> Path:
    return tiny_models["xlm"]


def _fold(text: str) -> str:
    """What XLM's tokenizer keeps of a string: lowercased, accents stripped."""
    decomposed = unicodedata.normalize("NFD", text.lower())
    return "".join(c for c in decomposed if unicodedata.category(c) != "Mn")


def test_the_tokenizer_is_slow_and_loads(xlm: Path) -> None:
    tok = load_tokenizer(xlm)
    assert not tok.is_fast  # what this path exists for
    assert tok.tokenize("Café")[0].endswith("</w>")


def test_wordpieces_are_the_tokenizers_own(xlm: Path) -> None:
    ref = AutoTokenizer.from_pretrained(str(xlm), split_special_tokens=True)
    batch = tokenize_sentences(load_tokenizer(xlm), TEXTS, [0] * len(TEXTS))
    for sp, text in zip(batch, TEXTS):
        enc = ref(text, return_special_tokens_mask=True)
        assert sp.ids.tolist() == enc["input_ids"]
        assert sp.strings == ref.convert_ids_to_tokens(enc["input_ids"])
        # <s> … </s>, and a literal "</s>" in the text stays text
        assert (sp.n_prefix, sp.n_suffix) == (1, 1)
        assert sp.strings[0] == "<s>" and sp.strings[-1] == "</s>"
        assert int((sp.starts < 0).sum()) == 2


def test_class_token_comes_from_the_models_config(xlm: Path) -> None:
    """XLM's tokenizer calls the final </s> its cls_token, but XLM classifies from the first
    row (config summary_type "first"): the config decides, the probe would say last."""
    tok = load_tokenizer(xlm)
    assert class_token_position(tok) == -1
    assert class_token_position(tok, "first") == 0
    nlp = stream_trf.load(str(xlm))
    wp = _wp(nlp("Apple shares rose."))
    assert wp is not None and wp.class_token == 0


def test_string_offsets_cover_each_piece(xlm: Path) -> None:
    """Every piece's span holds, lowercased and accent-stripped, the piece's text."""
    tok = load_tokenizer(xlm)
    for text in TEXTS:
        pieces = tok.tokenize(text)
        spans = content_offsets(tok, text)
        assert len(spans) == len(pieces)
        starts = [a for a, _ in spans]
        assert starts == sorted(starts)
        for piece, (a, b) in zip(pieces, spans):
            if a == b:
                continue  # matched nothing (a normalized quote): sent to the nearest token
            assert _fold(text[a:b]).replace(" ", "") == piece_text(piece), (piece, text[a:b])


def test_tokens_align_to_the_pieces_that_spell_them(xlm: Path) -> None:
    nlp = stream_trf.load(str(xlm))
    for doc in nlp.pipe(TEXTS):
        wp = _wp(doc)
        assert wp is not None
        pieces = doc._.trf_word_pieces_
        for token, aligned in zip(doc, doc._.trf_alignment):
            if token.is_space:
                assert aligned == []
                continue
            assert aligned, token.text
            spelled = "".join(piece_text(pieces[i]) for i in aligned)
            if "<unk>" not in spelled and '"' not in token.text:
                assert _fold(token.text) in spelled, (token.text, spelled)
        # doc.tensor keeps the sum of the wordpiece rows (text/alignment.py's invariant)
        np.testing.assert_allclose(
            doc.tensor.sum(0), doc._.trf_last_hidden_state.sum(0), rtol=1e-4, atol=1e-4
        )


def test_rows_are_the_hf_model_on_each_sentence_alone(xlm: Path) -> None:
    nlp = stream_trf.load(str(xlm), words_per_batch=60, packing="off")
    worst, n = 0.0, 0
    for doc in nlp.pipe(TEXTS):
        wp = _wp(doc)
        assert wp is not None
        for s in range(wp.n_sentences):
            sl = wp.sentence(s)
            a, b = wp.sentence_chars[s]
            ids, ref = hf_reference(xlm, doc.text[a:b])
            np.testing.assert_array_equal(ids, wp.ids[sl])
            worst = max(worst, float(np.abs(ref - doc._.trf_last_hidden_state[sl]).max()))
            n += 1
    assert n >= 5
    assert worst <= 1e-4


def test_training_on_the_head_of_a_doc_cuts_on_words(xlm: Path) -> None:
    tok = load_tokenizer(xlm)
    text = TEXTS[1]
    for budget in (1, 3, 6):
        cut = truncate_to_wordpieces(text, tok, budget)
        assert text.startswith(cut) and cut
        assert len(tok.tokenize(cut)) <= budget or len(cut.split()) == 1
        assert len(text) == len(cut) or text[len(cut)].isspace()


def test_xlm_fine_tunes_through_spacy(xlm: Path) -> None:
    """The classifier trains on XLM's rows and its gradient reaches the transformer."""
    import torch
    from textcat_helpers import NEG, POS, _examples, _pipeline, _train

    nlp = _pipeline(xlm)
    examples = _examples(nlp)
    model = nlp.get_pipe("trf_tok2vec")
    history = _train(nlp, examples, 2)
    before = {n: p.detach().clone() for n, p in model.model.named_parameters()}
    history += _train(nlp, examples, 25)
    assert np.mean(history[-5:]) < 0.5 * np.mean(history[:3])
    assert any(not torch.equal(p, before[n]) for n, p in model.model.named_parameters())
    assert all(nlp(t).cats["POS"] > 0.5 for t in POS)
    assert all(nlp(t).cats["NEG"] > 0.5 for t in NEG)
