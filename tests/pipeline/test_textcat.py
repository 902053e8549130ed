"""trf_textcat, and training through nlp.update with the gradient-buffer mechanism."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import spacy
import torch
from spacy.language import Language
from textcat_helpers import NEG, POS, _examples, _pipeline, _train

import stream_trf
from stream_trf.pipeline.textcat import UntrainedClassifier


def test_fine_tuning_reaches_the_transformer_and_learns(tiny_models) -> None:
    nlp = _pipeline(tiny_models["bert"])
    examples = _examples(nlp)
    t2v = nlp.get_pipe("trf_tok2vec")
    before = {n: p.detach().clone() for n, p in t2v.runner.model.named_parameters()}
    history = _train(nlp, examples, 30)
    assert np.mean(history[-5:]) < 0.5 * np.mean(history[:5])
    changed = [n for n, p in t2v.runner.model.named_parameters() if not torch.equal(p, before[n])]
    assert any("encoder.layer.0" in n for n in changed)
    assert any("embeddings.word_embeddings" in n for n in changed)
    for text in POS:
        assert nlp(text).cats["POS"] > 0.8
    for text in NEG:
        assert nlp(text).cats["NEG"] > 0.8


def test_frozen_transformer_computes_no_gradient(tiny_models) -> None:
    nlp = _pipeline(tiny_models["bert"], grad_factor=0.0)
    examples = _examples(nlp)
    t2v = nlp.get_pipe("trf_tok2vec")
    before = {n: p.detach().clone() for n, p in t2v.runner.model.named_parameters()}
    tc = nlp.get_pipe("trf_textcat")
    assert not tc.has_head  # created by initialize in _train
    nlp.initialize(lambda: examples)
    initial = tc.model.get_param("W").copy()
    _train(nlp, examples, 5)
    for n, p in t2v.runner.model.named_parameters():
        assert torch.equal(p, before[n]), n
        assert p.grad is None, n
    # The head did learn something: its weights moved from their initial values.
    assert not np.array_equal(tc.model.get_param("W"), initial)


def test_gradient_buffer_holds_the_heads_gradient(tiny_models) -> None:
    """d loss / d rows lands in doc._.trf_d_last_hidden_state, and only class-token rows get it."""
    nlp = _pipeline(tiny_models["xlnet"])
    examples = _examples(nlp)
    nlp.initialize(lambda: examples)
    # Component by component (nlp.update works on copies of the examples).
    nlp.get_pipe("trf_tok2vec").update(examples)
    nlp.get_pipe("trf_textcat").update(examples)
    for eg in examples:
        doc = eg.predicted
        d = doc._.trf_d_last_hidden_state
        assert d.shape == doc._.trf_last_hidden_state.shape
        cls_rows = doc._.trf_pieces.class_token_rows()
        assert np.abs(d[cls_rows]).sum() > 0
        others = np.setdiff1d(np.arange(len(d)), cls_rows)
        assert not d[others].any()
        # XLNet: the class token is the LAST wordpiece of each sentence.
        assert doc._.trf_word_pieces_[cls_rows[0]] == "<cls>"


def test_multi_label_probabilities_are_independent(tiny_models) -> None:
    nlp = stream_trf.load(str(tiny_models["bert"]))
    tc = nlp.add_pipe("trf_textcat", config={"exclusive_classes": False})
    for label in ("A", "B", "C"):
        tc.add_label(label)
    nlp.initialize()
    cats = nlp("Here is some text.").cats
    assert set(cats) == {"A", "B", "C"}
    assert abs(sum(cats.values()) - 1.0) > 1e-3  # not a softmax
    # Each probability is the sigmoid of its own logit: changing one label's bias moves only it.
    bias = tc.model.get_param("b").copy()
    bias[0] += 3.0
    tc.model.set_param("b", bias)
    cats2 = nlp("Here is some text.").cats
    assert cats2["A"] > cats["A"]
    assert cats2["B"] == pytest.approx(cats["B"]) and cats2["C"] == pytest.approx(cats["C"])


def test_exclusive_probabilities_sum_to_one_and_empty_docs_work(tiny_models) -> None:
    nlp = _pipeline(tiny_models["roberta"])
    nlp.initialize(lambda: _examples(nlp))
    for text in ("One. Two sentences here!", "", "   "):
        cats = nlp(text).cats
        assert sum(cats.values()) == pytest.approx(1.0, abs=1e-5)


def test_untrained_classifier_says_what_to_do(tiny_models) -> None:
    nlp = stream_trf.load(str(tiny_models["bert"]))
    nlp.add_pipe("trf_textcat")
    with pytest.raises(UntrainedClassifier, match="add_label"):
        nlp("text")


@Language.factory("test_trf_tagger")
def _make_tagger(nlp: Language, name: str):
    return TinyTagger(nlp, name)


class TinyTagger:
    """A second listener (a per-token 2-way tagger) proving another component can train through
    the same mechanism: read doc.tensor-style rows, write d rows, call receive_gradient."""

    listens_to_trf = True
    is_trainable = True

    def __init__(self, nlp: Language, name: str) -> None:
        self.name, self.nlp = name, nlp
        torch.manual_seed(1)
        self.model = torch.nn.Linear(nlp.get_pipe("trf_tok2vec").width, 2)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.5)

    def __call__(self, doc):
        return doc

    def initialize(self, get_examples=None, *, nlp=None):
        return None

    def update(self, examples, *, drop=0.0, sgd=None, losses=None):
        losses = {} if losses is None else losses
        total = 0.0
        for eg in examples:
            doc = eg.predicted
            rows = torch.from_numpy(doc._.trf_last_hidden_state).clone().requires_grad_(True)
            # token label: 1 for tokens starting with a capital letter; token rows = W @ rows
            W = doc._.trf_pieces.rebuild.dense()
            token_rows = torch.from_numpy(W) @ rows
            gold = torch.tensor([int(t.text[:1].isupper()) for t in doc])
            loss = torch.nn.functional.cross_entropy(self.model(token_rows), gold)
            loss.backward()
            doc._.trf_d_last_hidden_state = doc._.trf_d_last_hidden_state + rows.grad.numpy()
            total += float(loss.detach())
        losses[self.name] = losses.get(self.name, 0.0) + total
        self.nlp.get_pipe("trf_tok2vec").receive_gradient(self.name)
        return losses

    def finish_update(self, sgd=None):
        self.opt.step()
        self.opt.zero_grad()


def test_a_second_listener_trains_through_the_same_buffer(tiny_models) -> None:
    nlp = _pipeline(tiny_models["bert"])
    nlp.add_pipe("test_trf_tagger")
    examples = _examples(nlp)
    nlp.initialize(lambda: examples)
    t2v = nlp.get_pipe("trf_tok2vec")
    assert {p.name for p in t2v.listener_components()} == {"trf_textcat", "test_trf_tagger"}
    seen_waiting = []
    original = t2v.receive_gradient

    def spy(name):
        if t2v._pending is not None:
            seen_waiting.append(set(t2v._pending.waiting_for - t2v._pending.received))
        original(name)

    t2v.receive_gradient = spy  # type: ignore[method-assign]
    before = {n: p.detach().clone() for n, p in t2v.runner.model.named_parameters()}
    losses_first = losses = {}
    optimizer = nlp.resume_training()
    for i in range(25):
        losses = {}
        nlp.update(examples, sgd=optimizer, losses=losses)
        if i == 0:
            losses_first = dict(losses)
    # The transformer waited for both listeners before stepping.
    assert seen_waiting[0] == {"trf_textcat", "test_trf_tagger"} and seen_waiting[1] == {
        "test_trf_tagger"
    }
    assert losses["test_trf_tagger"] < losses_first["test_trf_tagger"]
    assert any(not torch.equal(p, before[n]) for n, p in t2v.runner.model.named_parameters())


def test_save_and_load_predict_identically_in_a_fresh_process(tiny_models, tmp_path: Path) -> None:
    nlp = _pipeline(tiny_models["bert"])
    _train(nlp, _examples(nlp), 3)
    texts = POS + NEG + [""]
    expected = [nlp(t).cats for t in texts]
    nlp.to_disk(tmp_path / "model")
    again = spacy.load(tmp_path / "model")
    assert [again(t).cats for t in texts] == expected
    script = (
        "import json, sys, spacy; nlp = spacy.load(sys.argv[1]); "
        "print(json.dumps([nlp(t).cats for t in json.loads(sys.argv[2])]))"
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    proc = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "model"), json.dumps(texts)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == expected


@pytest.mark.parametrize("pooling", ["cls", "mean", "doc_mean"])
def test_pooling_against_the_head_applied_by_hand(tiny_models, pooling: str) -> None:
    """doc.cats from the head's weights and the doc's rows, recomputed with numpy."""
    nlp = stream_trf.load(str(tiny_models["bert"]))
    tc = nlp.add_pipe("trf_textcat", config={"exclusive_classes": True, "pooling": pooling})
    for label in ("A", "B", "C"):
        tc.add_label(label)
    nlp.initialize()
    doc = nlp("A first sentence. A much longer second sentence with many more words in it!")
    rows = np.asarray(doc._.trf_last_hidden_state)
    wp = doc._.trf_pieces
    assert wp.n_sentences == 2
    w, b = tc.model.get_param("W"), tc.model.get_param("b")

    def softmax(x: np.ndarray) -> np.ndarray:
        e = np.exp(x - x.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    if pooling == "doc_mean":
        expected = softmax(rows.mean(0) @ w.T + b)
    elif pooling == "mean":
        feats = np.stack([rows[wp.sentence(i)].mean(0) for i in range(2)])
        expected = softmax(feats @ w.T + b).mean(0)
    else:
        expected = softmax(rows[wp.class_token_rows()] @ w.T + b).mean(0)
    got = np.array([doc.cats[label] for label in ("A", "B", "C")])
    assert np.allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize("pooling", ["cls", "mean", "doc_mean"])
def test_max_wordpieces_reads_only_the_head_of_the_doc(tiny_models, pooling: str) -> None:
    """With max_wordpieces, the cats are those of the doc's first wordpieces only: here, the
    first sentence, whatever follows it."""
    nlp = stream_trf.load(str(tiny_models["bert"]))
    tc = nlp.add_pipe("trf_textcat", config={"pooling": pooling})
    for label in ("A", "B", "C"):
        tc.add_label(label)
    nlp.initialize()
    first = "A first sentence."
    a = nlp(first + " And then something else entirely, with other words!")
    n_first = a._.trf_pieces.sentence(0).stop
    tc.cfg["max_wordpieces"] = n_first
    b = nlp(first + " Yet another ending, quite unlike the first one?")
    alone = nlp(first)
    tc.cfg["max_wordpieces"] = 0
    full = nlp(first + " Yet another ending, quite unlike the first one?")
    tc.cfg["max_wordpieces"] = n_first
    a = nlp(first + " And then something else entirely, with other words!")
    for label in ("A", "B", "C"):
        assert a.cats[label] == pytest.approx(b.cats[label], abs=1e-6)
        # Sentences are encoded alone: the first sentence's rows are the same in every doc.
        assert a.cats[label] == pytest.approx(alone.cats[label], abs=1e-5)
    assert any(abs(full.cats[k] - b.cats[k]) > 1e-6 for k in ("A", "B", "C"))


def test_class_weights_scale_each_labels_loss_term(tiny_models) -> None:
    """The weighted loss is the unweighted loss with each example's term times its label's
    weight (both computed here on the same docs, with no dropout)."""
    nlp = _pipeline(tiny_models["bert"])
    examples = _examples(nlp)
    nlp.initialize(lambda: examples)
    tc = nlp.get_pipe("trf_textcat")
    for eg in examples:  # the transformer's rows, once: every loss below reads the same rows
        for name, proc in nlp.pipeline:
            if name != "trf_textcat":
                proc(eg.predicted)

    def loss(weights: dict[str, float] | None, egs: list) -> float:
        tc.set_class_weights(weights)
        losses: dict[str, float] = {}
        tc.update(egs, drop=0.0, losses=losses)
        for eg in egs:  # leave no gradient behind for the next call
            eg.predicted._.trf_d_last_hidden_state = None
        return losses["trf_textcat"] * len(egs)

    pos = [eg for eg in examples if eg.reference.cats["POS"] == 1.0]
    neg = [eg for eg in examples if eg.reference.cats["NEG"] == 1.0]
    plain_pos, plain_neg = loss(None, pos), loss(None, neg)
    weighted = loss({"POS": 3.0, "NEG": 0.5}, examples)
    assert weighted == pytest.approx(3.0 * plain_pos + 0.5 * plain_neg, rel=1e-5)
    with pytest.raises(ValueError, match="not in"):
        tc.set_class_weights({"MAYBE": 1.0})
    with pytest.raises(ValueError, match="positive"):
        tc.set_class_weights({"POS": 0.0})
