"""Tiny separable classification data and pipelines, shared by the textcat and packaging tests."""

from __future__ import annotations

import random
from pathlib import Path

from spacy.training import Example

import stream_trf

POS = ["The quick brown fox jumps.", "Apple shares rose on the news.", "Numbers like 3.14 appear."]
NEG = ["東京は日本の首都です。", "Ὅμηρος wrote in Greek.", "Emoji are fun 😀🎉."]
# Five a side, for the training commands' data files.
POS5 = [*POS, "Here is some text to encode.", "The lazy dog sleeps."]
NEG5 = [*NEG, "北京是中国的首都。", "Толстой wrote in Russian."]


def _examples(nlp, exclusive: bool = True) -> list[Example]:
    out = []
    for texts, cats in ((POS, {"POS": 1.0, "NEG": 0.0}), (NEG, {"POS": 0.0, "NEG": 1.0})):
        for t in texts:
            out.append(Example.from_dict(nlp.make_doc(t), {"cats": dict(cats)}))
    return out


# The head's own optimizer (its learning rate); the transformer steps with the one spaCy passes.
HEAD_OPTIMIZER = {"@optimizers": "Adam.v1", "learn_rate": 1e-2, "use_averages": False}


def _pipeline(model_dir: Path, **tok2vec_cfg):
    nlp = stream_trf.load(str(model_dir), **tok2vec_cfg)
    nlp.add_pipe("trf_textcat", config={"exclusive_classes": True, "optimizer": HEAD_OPTIMIZER})
    return nlp


def _train(nlp, examples, steps: int) -> list[float]:
    nlp.initialize(lambda: examples)
    optimizer = nlp.resume_training()
    history = []
    random.seed(0)
    for _ in range(steps):
        random.shuffle(examples)
        losses: dict[str, float] = {}
        nlp.update(examples, sgd=optimizer, losses=losses, drop=0.1)
        history.append(losses["trf_textcat"])
    return history
