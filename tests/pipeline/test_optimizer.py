"""The components step with the optimizer spaCy passes (``sgd``), or one of their own: the
update is the optimizer's rule applied to the gradient, checked against torch autograd."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from textcat_helpers import _examples
from thinc.api import SGD, Optimizer

import stream_trf
from stream_trf.pipeline.extensions import _wp


class CountingSGD(Optimizer):
    """Plain SGD that counts how often each parameter was stepped."""

    def __init__(self, learn_rate: float) -> None:
        super().__init__(learn_rate, beta1=0.0, beta2=0.0, grad_clip=0.0, use_averages=False)
        self.calls: dict[tuple[int, str], int] = {}

    def __call__(self, key, weights, gradient, *, lr_scale=1.0):
        self.calls[key] = self.calls.get(key, 0) + 1
        return super().__call__(key, weights, gradient, lr_scale=lr_scale)


def _pipeline(model_dir, head_optimizer=None, **tok2vec_cfg):
    nlp = stream_trf.load(str(model_dir), grad_clip=0.0, **tok2vec_cfg)
    config = {"pooling": "doc_mean", "dropout": 0.0}
    if head_optimizer is not None:
        config["optimizer"] = head_optimizer
    nlp.add_pipe("trf_textcat", config=config)
    examples = _examples(nlp)
    nlp.initialize(lambda: examples)
    return nlp, examples


def _params(nlp) -> dict[str, np.ndarray]:
    t2v = nlp.get_pipe("trf_tok2vec").model
    out = {n: p.detach().numpy().copy() for n, p in t2v.named_parameters()}
    head = nlp.get_pipe("trf_textcat").model
    out["head.W"] = np.asarray(head.get_param("W")).copy()
    out["head.b"] = np.asarray(head.get_param("b")).copy()
    return out


def _reference_gradients(nlp, examples) -> dict[str, np.ndarray]:
    """The same loss computed independently in torch (doc_mean pooling, softmax,
    cross-entropy, mean over docs) through the HF model: its gradients for every parameter."""
    t2v = nlp.get_pipe("trf_tok2vec")
    tc = nlp.get_pipe("trf_textcat")
    model = t2v.runner.model
    model.zero_grad()
    W = torch.from_numpy(np.asarray(tc.model.get_param("W")).copy()).requires_grad_(True)
    b = torch.from_numpy(np.asarray(tc.model.get_param("b")).copy()).requires_grad_(True)
    losses = []
    for eg in examples:
        doc = nlp.make_doc(eg.reference.text)
        for _name, proc in nlp.pipeline[:2]:
            doc = proc(doc)
        wp = _wp(doc)
        sentences = []
        for s in range(wp.n_sentences):
            ids = torch.from_numpy(wp.ids[wp.sentence(s)])[None, :]
            kwargs = {}
            if wp.type_ids is not None:
                kwargs["token_type_ids"] = torch.from_numpy(wp.type_ids[wp.sentence(s)])[None, :]
            sentences.append(model(input_ids=ids, **kwargs).last_hidden_state[0])
        rows = torch.cat(sentences)
        probs = torch.softmax(rows.mean(0) @ W.T + b, -1)
        gold = torch.tensor([eg.reference.cats[k] for k in tc.labels])
        losses.append(-(gold * torch.log(probs)).sum())
    torch.stack(losses).mean().backward()
    out = {n: p.grad.numpy().copy() for n, p in model.named_parameters() if p.grad is not None}
    out["head.W"], out["head.b"] = W.grad.numpy(), b.grad.numpy()
    model.zero_grad()
    return out


@pytest.fixture(scope="module")
def no_dropout_bert(tiny_models, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny BERT without dropout, so that a training step is deterministic."""
    out = tmp_path_factory.mktemp("bert-no-dropout")
    for f in tiny_models["bert"].iterdir():
        shutil.copy(f, out / f.name)
    config = json.loads((out / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (out / "config.json").write_text(json.dumps(config))
    return out


def test_one_update_is_sgds_rule_on_the_autograd_gradient(no_dropout_bert: Path) -> None:
    """With spaCy's SGD (lr 0.5), every parameter moves by -0.5 × its gradient, transformer
    and head alike; the gradient is torch autograd's on the same loss."""
    nlp, examples = _pipeline(no_dropout_bert)
    grads = _reference_gradients(nlp, examples)
    before = _params(nlp)
    nlp.update(examples, sgd=SGD(0.5, grad_clip=0.0, use_averages=False), drop=0.0)
    after = _params(nlp)
    moved = 0
    for name, g in grads.items():
        np.testing.assert_allclose(after[name] - before[name], -0.5 * g, atol=2e-6, err_msg=name)
        moved += int(np.abs(g).max() > 1e-6)
    assert moved > 10  # the check is about real updates


def test_own_optimizer_overrides_spacys_for_that_component(tiny_models) -> None:
    """The head with an optimizer of its own at learning rate 0 stays put while spaCy's
    optimizer moves the transformer; and the other way round."""
    frozen_head = {"@optimizers": "SGD.v1", "learn_rate": 0.0}
    nlp, examples = _pipeline(tiny_models["bert"], head_optimizer=frozen_head)
    before = _params(nlp)
    nlp.update(examples, sgd=SGD(0.5, use_averages=False))
    after = _params(nlp)
    assert np.array_equal(before["head.W"], after["head.W"])
    assert any(not np.array_equal(before[k], after[k]) for k in before if not k.startswith("head"))

    frozen_transformer = {"@optimizers": "SGD.v1", "learn_rate": 0.0}
    nlp, examples = _pipeline(tiny_models["bert"], optimizer=frozen_transformer)
    before = _params(nlp)
    nlp.update(examples, sgd=SGD(0.5, use_averages=False))
    after = _params(nlp)
    assert not np.array_equal(before["head.W"], after["head.W"])
    assert all(np.array_equal(before[k], after[k]) for k in before if not k.startswith("head"))


@pytest.mark.parametrize("order", ["nlp.update", "spacy train"])
def test_each_parameter_steps_once_per_batch(tiny_models, order: str) -> None:
    """nlp.update calls finish_update before the listeners have run, spaCy's loop after all
    updates: either way each parameter is stepped exactly once per batch; two updates before
    one finish_update (accumulate_gradient) step once, with both batches' gradients."""
    nlp, examples = _pipeline(tiny_models["bert"])
    sgd = CountingSGD(0.1)
    for _ in range(3):
        if order == "nlp.update":
            nlp.update(examples, sgd=sgd)
        else:
            nlp.update(examples, sgd=False)
            for _name, proc in nlp.pipeline:
                if getattr(proc, "is_trainable", False) and proc.model not in (True, False, None):
                    proc.finish_update(sgd)
    # every parameter but BERT's pooler (unused by the rows), and the head's W and b
    names = [n for n, _ in nlp.get_pipe("trf_tok2vec").model.named_parameters()]
    assert len(sgd.calls) == len([n for n in names if not n.startswith("pooler")]) + 2
    assert set(sgd.calls.values()) == {3}

    if order == "spacy train":
        sgd.calls.clear()
        nlp.update(examples[:3], sgd=False)
        nlp.update(examples[3:], sgd=False)
        for _name, proc in nlp.pipeline:
            if getattr(proc, "is_trainable", False):
                proc.finish_update(sgd)
        assert set(sgd.calls.values()) == {1}


def test_averaged_weights_are_used_inside_use_params(tiny_models) -> None:
    """An optimizer that keeps parameter averages (spaCy evaluates and saves with them):
    inside nlp.use_params the predictions change, and afterwards they are what they were."""
    nlp, examples = _pipeline(tiny_models["bert"])
    from thinc.api import Adam

    adam = Adam(0.01, use_averages=True)
    for _ in range(4):
        nlp.update(examples, sgd=adam)
    text = examples[0].reference.text
    plain = nlp(text).cats
    with nlp.use_params(adam.averages):
        averaged = nlp(text).cats
        t2v = nlp.get_pipe("trf_tok2vec").model
        key = nlp.get_pipe("trf_tok2vec")._param_key
        name, param = next(iter(t2v.named_parameters()))
        np.testing.assert_array_equal(
            param.detach().numpy(), adam.averages[(key, f"stream_trf:{name}")]
        )
    assert averaged != plain
    assert nlp(text).cats == plain
