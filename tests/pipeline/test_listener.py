"""A second listener through ``spacy train``: spaCy's own ``tagger`` on the transformer's rows
(``stream_trf.TransformerListener.v1``), trained by spaCy's training loop on data built here."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import spacy
import torch
from safetensors.numpy import load_file
from spacy.tokens import Doc, DocBin
from spacy.training.initialize import init_nlp
from spacy.training.loop import train as train_loop
from thinc.api import Config

import stream_trf
from stream_trf.pipeline.extensions import _wp
from stream_trf.pipeline.listener import TransformerListener

WORDS = {
    "DET": ["the", "a", "this", "every"],
    "NUM": ["3", "42", "1999", "7", "256", "80"],
    "PUNCT": [",", ";", "!", "?", "."],
    "NOUN": ["apple", "river", "stone", "music", "paper", "window", "garden", "news", "dog"],
}

CONFIG = """
[paths]
train = null
dev = null

[system]
seed = 0
gpu_allocator = null

[nlp]
lang = "en"
pipeline = ["sentencizer","trf_wordpiecer","trf_tok2vec","tagger"]
batch_size = 16

[components]

[components.sentencizer]
factory = "sentencizer"

[components.trf_wordpiecer]
factory = "trf_wordpiecer"
model = "{model}"

[components.trf_tok2vec]
factory = "trf_tok2vec"
model = "{model}"

[components.tagger]
factory = "tagger"

[components.tagger.model]
@architectures = "spacy.Tagger.v2"
nO = null

[components.tagger.model.tok2vec]
@architectures = "stream_trf.TransformerListener.v1"
upstream = "trf_tok2vec"
grad_factor = 1.0

[corpora]

[corpora.train]
@readers = "spacy.Corpus.v1"
path = ${{paths.train}}

[corpora.dev]
@readers = "spacy.Corpus.v1"
path = ${{paths.dev}}

[training]
seed = ${{system.seed}}
gpu_allocator = null
dropout = 0.1
max_epochs = 0
max_steps = {steps}
eval_frequency = 20
train_corpus = "corpora.train"
dev_corpus = "corpora.dev"

[training.batcher]
@batchers = "spacy.batch_by_sequence.v1"
size = 8
get_length = null

[training.logger]
@loggers = "spacy.ConsoleLogger.v3"
progress_bar = null
console_output = false

[training.optimizer]
@optimizers = "stream_trf.Adam.v1"
learn_rate = 0.003
use_averages = false

[initialize]
"""


def _tagged_docs(n: int, seed: int) -> list[Doc]:
    """Sentences of 4-9 words drawn from WORDS, each word tagged with its class."""
    rng = random.Random(seed)
    vocab = spacy.blank("en").vocab
    docs = []
    for _ in range(n):
        tags = [rng.choice(list(WORDS)) for _ in range(rng.randint(4, 9))]
        words = [rng.choice(WORDS[t]) for t in tags]
        docs.append(Doc(vocab, words=words, spaces=[True] * len(words), tags=tags))
    return docs


def _write(docs: list[Doc], path: Path) -> Path:
    DocBin(docs=docs, attrs=["ORTH", "TAG"]).to_disk(path)
    return path


@pytest.fixture(scope="module")
def trained(tiny_models, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("listener")
    model = tiny_models["bert"]
    text = CONFIG.format(model=model, steps=60)
    config = (
        Config()
        .from_str(text, interpolate=False)
        .merge(
            {
                "paths": {
                    "train": str(_write(_tagged_docs(120, 0), root / "train.spacy")),
                    "dev": str(_write(_tagged_docs(30, 1), root / "dev.spacy")),
                }
            }
        )
    )
    nlp = init_nlp(config)
    before = {
        n: p.detach().clone() for n, p in nlp.get_pipe("trf_tok2vec").model.named_parameters()
    }
    (root / "out").mkdir()
    train_loop(nlp, root / "out")
    return nlp, before, root


def _accuracy(nlp, docs: list[Doc]) -> tuple[float, float]:
    predicted = list(nlp.pipe(d.text for d in docs))
    gold = [t.tag_ for d in docs for t in d]
    guess = [t.tag_ for d in predicted for t in d]
    assert len(gold) == len(guess)
    majority = max(gold.count(t) for t in set(gold)) / len(gold)
    return sum(g == p for g, p in zip(gold, guess)) / len(gold), majority


def test_spacy_links_the_listener_to_the_transformer(trained) -> None:
    nlp, _before, _root = trained
    t2v = nlp.get_pipe("trf_tok2vec")
    assert t2v.listening_components == ["tagger"]
    (listener,) = t2v.listeners
    assert isinstance(listener, TransformerListener)
    assert listener.get_dim("nO") == t2v.width


def test_the_tagger_learns_tags_of_sentences_it_never_saw(trained) -> None:
    nlp, _before, _root = trained
    accuracy, majority = _accuracy(nlp, _tagged_docs(40, 7))
    assert majority < 0.45
    assert accuracy > 0.9, accuracy


def test_the_taggers_gradient_reached_the_transformer(trained) -> None:
    nlp, before, _root = trained
    after = dict(nlp.get_pipe("trf_tok2vec").model.named_parameters())
    changed = [n for n, p in after.items() if not torch.equal(p, before[n])]
    assert any("encoder.layer.0" in n for n in changed)
    assert any("word_embeddings" in n for n in changed)


def test_model_best_loads_and_tags_like_the_trained_pipeline(trained, tiny_models) -> None:
    _nlp, _before, root = trained
    best = root / "out" / "model-best"
    loaded = spacy.load(best)
    assert loaded.get_pipe("trf_tok2vec").listening_components == ["tagger"]
    docs = _tagged_docs(10, 9)
    accuracy, _ = _accuracy(loaded, docs)
    assert accuracy > 0.9
    # the saved transformer is the fine-tuned one, not the tiny model it started from
    saved = load_file(str(best / "trf_tok2vec" / "transformer" / "model.safetensors"))
    original = load_file(str(tiny_models["bert"] / "model.safetensors"))
    key = next(k for k in saved if "encoder.layer.0.attention.self.query.weight" in k)
    assert not np.array_equal(saved[key], original[key])


def test_listener_gradient_is_the_transpose_of_the_token_rows(tiny_models) -> None:
    """Backprop sends d tokens to the wordpieces by W.T (doc.tensor = W @ rows), checked
    against torch autograd through the dense W."""
    nlp = stream_trf.load(str(tiny_models["xlnet"]))
    listener = TransformerListener("trf_tok2vec", grad_factor=0.5)
    nlp.get_pipe("trf_tok2vec").add_listener(listener, "probe")
    doc = nlp("One sentence here. And   a second, longer one!")
    doc._.trf_d_last_hidden_state = np.zeros_like(doc._.trf_last_hidden_state)
    (rows_out,), backprop = listener([doc], is_train=True)
    np.testing.assert_allclose(rows_out, doc.tensor, atol=1e-6)
    wp = _wp(doc)
    assert wp is not None
    d_tokens = np.random.default_rng(0).normal(size=rows_out.shape).astype(np.float32)
    backprop([d_tokens])
    rows = torch.from_numpy(np.asarray(doc._.trf_last_hidden_state)).requires_grad_(True)
    tokens = torch.from_numpy(wp.rebuild.dense()) @ rows
    (tokens * torch.from_numpy(d_tokens)).sum().backward()
    assert rows.grad is not None
    np.testing.assert_allclose(
        doc._.trf_d_last_hidden_state, 0.5 * rows.grad.numpy(), rtol=1e-5, atol=1e-6
    )
