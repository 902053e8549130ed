"""The "production model" the monitor health-checks the transformer against: multinomial naive
Bayes on word counts, and its out-of-fold predictions for every document."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from .labelled import LabelledDoc

PRODUCTION_RECIPE = "multinomial-naive-bayes alpha=0.1 tokens=[a-z0-9]+ folds=5 seed=0"


_TOKEN = re.compile(r"[a-z0-9]+")


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


class NaiveBayes:
    """Multinomial naive Bayes on lower-cased word counts: the "production model".

    Written in numpy rather than taken from scikit-learn, which is not a dependency of the
    package. It stands for the cheap model a team runs in production and wants health-checked
    against the transformer: on the Debian sections it is about as accurate as the transformer's
    head (0.91 on dev), and it disagrees with it on different documents, which is what makes the
    agreement ratio informative. Its scores are naive Bayes posteriors, over-confident as usual.
    """

    def __init__(self, alpha: float = 0.1) -> None:
        self.alpha = alpha
        self.labels: list[str] = []
        self.vocab: dict[str, int] = {}
        self.log_prior: npt.NDArray[np.float64] = np.zeros(0)
        self.log_likelihood: npt.NDArray[np.float64] = np.zeros((0, 0))

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> NaiveBayes:
        self.labels = sorted(set(labels))
        index = {label: i for i, label in enumerate(self.labels)}
        tokenized = [_tokens(t) for t in texts]
        self.vocab = {w: i for i, w in enumerate(sorted({w for ts in tokenized for w in ts}))}
        counts = np.zeros((len(self.labels), len(self.vocab)), dtype=np.float64)
        prior = np.zeros(len(self.labels), dtype=np.float64)
        for ts, label in zip(tokenized, labels):
            y = index[label]
            prior[y] += 1
            np.add.at(counts[y], [self.vocab[w] for w in ts], 1.0)
        smoothed = counts + self.alpha
        self.log_likelihood = np.log(smoothed / smoothed.sum(axis=1, keepdims=True))
        self.log_prior = np.log(prior / prior.sum())
        return self

    def predict(self, texts: Sequence[str]) -> list[tuple[str, float]]:
        """(label, posterior probability of that label) per text."""
        out = []
        for text in texts:
            idx = [self.vocab[w] for w in _tokens(text) if w in self.vocab]
            joint = self.log_prior + self.log_likelihood[:, idx].sum(axis=1)
            p = np.exp(joint - joint.max())
            p /= p.sum()
            best = int(p.argmax())
            out.append((self.labels[best], round(float(p[best]), 6)))
        return out


def production_predictions(
    train: Sequence[LabelledDoc], dev: Sequence[LabelledDoc], folds: int = 5, seed: int = 0
) -> tuple[dict[str, tuple[str, float]], dict[str, float]]:
    """A production prediction for every document, never from a model that saw it.

    Dev documents get the model trained on the whole train split; train documents get the model
    trained on the other folds (out-of-fold), since the stream uses both splits and a model's
    predictions on its own training data would make it look better than it is.
    Returns the predictions by id and the accuracies (out-of-fold on train, dev).
    """
    preds: dict[str, tuple[str, float]] = {}
    order = np.random.default_rng(seed).permutation(len(train))
    correct = 0
    for k in range(folds):
        held = set(order[k::folds].tolist())
        model = NaiveBayes().fit(
            [d.text for i, d in enumerate(train) if i not in held],
            [d.label for i, d in enumerate(train) if i not in held],
        )
        docs = [d for i, d in enumerate(train) if i in held]
        for d, p in zip(docs, model.predict([d.text for d in docs])):
            preds[d.id] = p
            correct += p[0] == d.label
    model = NaiveBayes().fit([d.text for d in train], [d.label for d in train])
    dev_correct = 0
    for d, p in zip(dev, model.predict([d.text for d in dev])):
        preds[d.id] = p
        dev_correct += p[0] == d.label
    return preds, {
        "train_out_of_fold_accuracy": round(correct / max(len(train), 1), 4),
        "dev_accuracy": round(dev_correct / max(len(dev), 1), 4),
    }
