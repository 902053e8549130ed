"""trf_tok2vec with outputs="pooled": per-sentence sums and class-token rows instead of rows.

Checked against the same pipeline keeping every row (itself checked against the HF model in
test_tok2vec.py), and the doc vector against the HF model run sentence by sentence.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from conftest import CORPUS, hf_reference, shared_descriptions
from textcat_helpers import _examples, _pipeline, _train

import stream_trf
from stream_trf.errors import AlignmentNotKept, RowsNotKept, UsageError

TEXTS = [
    "Here is some text to encode. It has two sentences.",
    "Short.",
    "",
    "Über café naïve 😀 東京は日本の首都です。 Another one!",
    "A sentence with   extra   spaces\tand tabs.\n\nAnd newlines [SEP] <s> <cls> in it.",
]
# no sentence punctuation: one sentence of several hundred wordpieces, cut into windows
LONG = re.sub(r"[.!?。]", "", " ".join(CORPUS[:12] * 3))


def _both(model_dir: Path, **cfg):
    rows = stream_trf.load(str(model_dir), **cfg)
    pooled = stream_trf.load(str(model_dir), outputs="pooled", **cfg)
    return rows, pooled


def _assert_pooled_reduces_rows(rows_docs, pooled_docs) -> None:
    for want, doc in zip(rows_docs, pooled_docs):
        assert doc._.trf_last_hidden_state is None
        assert doc.tensor.size == 0
        np.testing.assert_array_equal(doc._.trf_word_pieces, want._.trf_word_pieces)
        assert doc._.trf_windowed_wordpieces == want._.trf_windowed_wordpieces
        wp = want._.trf_pieces
        hidden = want._.trf_last_hidden_state
        pooled = doc._.trf_outputs.pooled
        assert pooled.sentence_sums.shape == (wp.n_sentences, hidden.shape[1])
        np.testing.assert_array_equal(pooled.sentence_lengths, np.diff(wp.sentence_starts))
        for s in range(wp.n_sentences):
            np.testing.assert_allclose(
                pooled.sentence_sums[s], hidden[wp.sentence(s)].sum(0), rtol=1e-5, atol=1e-4
            )
        np.testing.assert_allclose(pooled.class_rows, hidden[wp.class_token_rows()], atol=1e-5)
        np.testing.assert_allclose(doc.vector, want.vector, atol=1e-5)


def test_pooled_outputs_reduce_each_sentences_rows(tiny_dir: Path) -> None:
    """Every family (XLNet's class token is last), one-window and windowed sentences, two
    lanes, sub-batches mixing both: the sums, class rows and doc vector of the rows."""
    texts = [*TEXTS, LONG, *CORPUS[:10]]
    rows, pooled = _both(tiny_dir, window_overlap=16, words_per_batch=200, lanes=2)
    got = list(pooled.pipe(texts, batch_size=len(texts)))
    want = list(rows.pipe(texts, batch_size=len(texts)))
    assert any(d._.trf_windowed_wordpieces for d in got)  # the long one was windowed
    _assert_pooled_reduces_rows(want, got)


def test_batches_whose_sentences_fit_take_the_path_over_arrays(tiny_dir: Path) -> None:
    """No sentence needs windows: the batch goes through ``predict_pooled`` in sub-batches of
    sentence indices (pipeline/pooled_batch.py), and reduces the rows all the same (every
    family: XLNet's class token is last, GPT-2 has none, BERT's token types)."""
    texts = [*TEXTS, *CORPUS[:10]]
    rows, pooled = _both(tiny_dir, words_per_batch=200, lanes=2)
    runner = pooled.get_pipe("trf_tok2vec").runner
    sizes: list[int] = []
    predict = runner.predict_pooled

    def counted(ids, type_ids, starts, lengths):
        sizes.append(len(lengths))
        return predict(ids, type_ids, starts, lengths)

    runner.predict_pooled = counted
    got = list(pooled.pipe(texts, batch_size=len(texts)))
    want = list(rows.pipe(texts, batch_size=len(texts)))
    assert len(sizes) > 1 and sum(sizes) == sum(d._.trf_pieces.n_sentences for d in got)
    _assert_pooled_reduces_rows(want, got)


def test_a_long_sentence_leaves_the_rest_of_its_batch_on_the_arrays(tiny_dir: Path) -> None:
    """One sentence longer than the model takes, in a batch of short ones: only it is cut into
    windows (rows, stitched, then reduced); every other sentence of the batch goes through
    ``predict_pooled``, and the outputs are the rows' reductions all the same."""
    texts = [*TEXTS[:2], LONG, *CORPUS[:10]]
    rows, pooled = _both(tiny_dir, window_overlap=16, words_per_batch=200, lanes=2)
    runner = pooled.get_pipe("trf_tok2vec").runner
    pooled_sizes: list[int] = []
    window_lengths: list[int] = []
    predict_pooled, predict = runner.predict_pooled, runner.predict

    def counted_pooled(ids, type_ids, starts, lengths):
        pooled_sizes.append(len(lengths))
        return predict_pooled(ids, type_ids, starts, lengths)

    def counted(ids, type_ids, *args, **kwargs):
        window_lengths.extend(len(x) for x in ids)
        return predict(ids, type_ids, *args, **kwargs)

    runner.predict_pooled, runner.predict = counted_pooled, counted
    got = list(pooled.pipe(texts, batch_size=len(texts)))
    want = list(rows.pipe(texts, batch_size=len(texts)))
    long_doc = got[2]
    assert long_doc._.trf_windowed_wordpieces > runner.max_length  # it was windowed
    assert len(window_lengths) > 1 and max(window_lengths) <= runner.max_length
    n_sentences = sum(d._.trf_pieces.n_sentences for d in got)
    assert sum(pooled_sizes) == n_sentences - 1  # all but the long one
    _assert_pooled_reduces_rows(want, got)
    # a batch of nothing but the long sentence: no sub-batch of sentence indices at all
    alone = list(pooled.pipe([LONG]))
    _assert_pooled_reduces_rows(list(rows.pipe([LONG])), alone)


@pytest.mark.parametrize("packing", ["off", "on"])
@pytest.mark.parametrize("trace", ["off", "on"])
def test_pooled_outputs_on_every_model_path(tiny_models, packing: str, trace: str) -> None:
    """Padded eager, traced and padding-free (packed) runs reduce the same way."""
    rows, pooled = _both(tiny_models["bert"], packing=packing, trace=trace, words_per_batch=120)
    texts = [*TEXTS, *CORPUS[:12]]
    _assert_pooled_reduces_rows(list(rows.pipe(texts)), list(pooled.pipe(texts)))


def test_doc_vector_against_the_hf_model_sentence_by_sentence(minilm_dir: Path) -> None:
    """The mean of every wordpiece row of a doc, boundary tokens included, from the HF model
    run on each sentence alone: what outputs='pooled' gives without keeping a row."""
    nlp = stream_trf.load(str(minilm_dir), outputs="pooled", classifier=None)
    texts = [r["text"] for r in shared_descriptions(30)]
    checked = 0
    for doc in nlp.pipe(texts):
        wp = doc._.trf_pieces
        if doc._.trf_windowed_wordpieces or wp.n_sentences == 0:
            continue
        total, n = np.zeros(doc.vector.shape, dtype=np.float64), 0
        for s in range(wp.n_sentences):
            a, b = wp.sentence_chars[s]
            ids, ref = hf_reference(minilm_dir, doc.text[a:b])
            np.testing.assert_array_equal(ids, wp.ids[wp.sentence(s)])
            total += ref.sum(0)
            n += len(ids)
        np.testing.assert_allclose(doc.vector, total / n, atol=2e-5)
        checked += 1
    assert checked >= 20


def test_rows_are_refused_with_a_typed_error(tiny_models) -> None:
    rows, pooled = _both(tiny_models["bert"])
    text = "Tools for the stream. They enrich records."
    doc, want = pooled(text), rows(text)
    other, other_want = pooled("Another doc entirely."), rows("Another doc entirely.")
    assert doc.similarity(other) == pytest.approx(want.similarity(other_want), abs=1e-5)
    assert doc.has_vector
    for ask in (
        lambda: doc[0].vector,
        lambda: doc[0:2].vector,
        lambda: doc[0:2]._.trf_last_hidden_state,
    ):
        with pytest.raises(RowsNotKept, match="outputs='rows'"):
            ask()


def test_without_alignment_the_same_outputs_and_a_typed_error(tiny_dir: Path, tmp_path) -> None:
    """``alignment=False`` (the worker's unless records carry tokens or wordpieces) reads no
    character offsets: every doc's wordpieces and pooled outputs are those of a pipeline that
    keeps them, for every family (XLM's slow tokenizer included); asking for the alignment is a
    typed error that says what to do, and a saved pipeline keeps the choice."""
    texts = [*TEXTS, LONG, *CORPUS[:8]]
    cfg = {"outputs": "pooled", "doc_tensor": False, "words_per_batch": 200}
    kept = stream_trf.load(str(tiny_dir), **cfg)
    lean = stream_trf.load(str(tiny_dir), alignment=False, **cfg)
    want = list(kept.pipe(texts, batch_size=len(texts)))
    got = list(lean.pipe(texts, batch_size=len(texts)))
    for w, g in zip(want, got):
        a, b = w._.trf_pieces, g._.trf_pieces
        assert b.piece_chars is None and a.piece_chars is not None
        for name in ("ids", "is_boundary", "sentence_starts", "sentence_prefix", "sentence_chars"):
            np.testing.assert_array_equal(getattr(b, name), getattr(a, name))
        assert b.strings == a.strings
        np.testing.assert_array_equal(g.vector, w.vector)
        assert w._.trf_alignment is not None
        with pytest.raises(AlignmentNotKept, match="alignment=True"):
            g._.trf_alignment  # noqa: B018
    lean.to_disk(tmp_path / "lean")
    assert not stream_trf.load(tmp_path / "lean").get_pipe("trf_wordpiecer").cfg["alignment"]
    kept.to_disk(tmp_path / "kept")
    reloaded = stream_trf.load(tmp_path / "kept", alignment=False)
    assert not reloaded.get_pipe("trf_wordpiecer").cfg["alignment"]


def test_no_alignment_with_a_doc_tensor_is_refused(tiny_models, tmp_path) -> None:
    with pytest.raises(UsageError, match="doc_tensor=False"):
        stream_trf.load(str(tiny_models["bert"]), alignment=False)
    stream_trf.load(str(tiny_models["bert"])).to_disk(tmp_path / "saved")
    with pytest.raises(UsageError, match="doc_tensor=False"):
        stream_trf.load(tmp_path / "saved", alignment=False)


def test_settings_that_need_rows_are_refused(tiny_models) -> None:
    with pytest.raises(ValueError, match="hidden states"):
        stream_trf.load(str(tiny_models["bert"]), outputs="pooled", output_hidden_states=True)
    with pytest.raises(ValueError, match="outputs must be one of"):
        stream_trf.load(str(tiny_models["bert"]), outputs="some")


@pytest.mark.parametrize("pooling", ["cls", "mean", "doc_mean"])
def test_the_classifier_reads_the_same_from_pooled_outputs(tiny_models, pooling: str) -> None:
    """The same head on the same docs: cats from every row and from the reductions agree,
    with and without max_wordpieces (which reads the sentences the head of a doc holds)."""
    nlp = stream_trf.load(str(tiny_models["xlnet"]))
    tc = nlp.add_pipe("trf_textcat", config={"exclusive_classes": True, "pooling": pooling})
    for label in ("A", "B", "C"):
        tc.add_label(label)
    nlp.initialize()
    t2v = nlp.get_pipe("trf_tok2vec")
    texts = [*TEXTS, *CORPUS[:8], LONG]
    first = nlp("A first sentence.")._.trf_pieces.sentence(0).stop
    for limit in (0, first):
        tc.cfg["max_wordpieces"] = limit
        t2v.cfg["outputs"] = "rows"
        want = list(nlp.pipe(texts))
        t2v.cfg["outputs"] = "pooled"
        if pooling == "doc_mean" and limit:
            with pytest.raises(RowsNotKept, match="max_wordpieces"):
                list(nlp.pipe(texts))
            continue
        got = list(nlp.pipe(texts))
        for a, b in zip(want, got):
            assert b._.trf_last_hidden_state is None
            for label in ("A", "B", "C"):
                assert b.cats[label] == pytest.approx(a.cats[label], abs=1e-5)


@pytest.mark.parametrize("grad_factor", [1.0, 0.0])
def test_training_keeps_rows_and_inference_stays_pooled(tiny_models, grad_factor: float) -> None:
    """nlp.update needs rows for the gradients (and a frozen transformer's listeners read
    them); the pipeline still answers pooled outside training, with the trained head."""
    nlp = _pipeline(tiny_models["bert"], outputs="pooled", grad_factor=grad_factor)
    history = _train(nlp, _examples(nlp), steps=4)
    assert all(np.isfinite(history))
    doc = nlp("Apple shares rose on the news.")
    assert doc._.trf_last_hidden_state is None
    t2v = nlp.get_pipe("trf_tok2vec")
    t2v.cfg["outputs"] = "rows"
    want = nlp("Apple shares rose on the news.")
    for label in ("POS", "NEG"):
        assert doc.cats[label] == pytest.approx(want.cats[label], abs=1e-5)
