"""``trf_textcat``: text classification on the transformer's rows.

Per doc, pooled features from its wordpiece rows — per sentence the class-token row (wherever
the model family puts it) or the mean of its rows, or once for the doc the mean of all its rows —
→ dropout → the head (``stream_trf.TransformerTextcatHead.v1``, a linear layer) → logits /
temperature → softmax (exclusive classes) or sigmoid (multi-label, independent probabilities) →
mean over the doc's features → ``doc.cats``.

It trains through spaCy (``nlp.update`` or ``spacy train``): d loss / d rows goes into
``doc._.trf_d_last_hidden_state`` and ``trf_tok2vec`` backpropagates it (pipeline/training.py);
the head steps with the optimizer spaCy passes, or an ``optimizer`` of its own. The temperature
is fitted after training (training/calibrate.py) and changes probabilities, never the ranking.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import srsly
from scipy import sparse
from scipy.special import expit
from spacy.language import Language
from spacy.pipeline import Pipe
from spacy.scorer import Scorer
from spacy.tokens import Doc
from spacy.util import minibatch, registry
from thinc.api import Adam, Linear, Model, Optimizer
from thinc.types import Floats1d, Floats2d

from ..errors import RowsNotKept, StreamTrfError
from .extensions import PooledOutputs, _wp, install_extensions
from .training import RETIRED_SETTINGS

install_extensions()

POOLINGS = ("cls", "mean", "doc_mean")
CLASS_WEIGHTINGS = ("none", "sqrt", "balanced")

# Settings saved in the component's ``cfg`` (the head's weights go beside them).
DEFAULT_SETTINGS: dict[str, Any] = {
    "exclusive_classes": True,
    "dropout": 0.1,
    "tok2vec": "trf_tok2vec",
    "pooling": "cls",
    "max_wordpieces": 0,
    "class_weighting": "none",
}

DEFAULT_CONFIG: dict[str, Any] = {
    **DEFAULT_SETTINGS,
    "model": {"@architectures": "stream_trf.TransformerTextcatHead.v1", "nO": None},
    "optimizer": None,
}


class UntrainedClassifier(StreamTrfError):
    """trf_textcat was used before it had labels and weights."""


@registry.architectures("stream_trf.TransformerTextcatHead.v1")
def textcat_head(nO: int | None = None) -> Model:
    """The classifier's weights: one linear layer from the pooled transformer features to a
    logit per label. ``nO`` (the number of labels) and the input width are set when the
    component is initialized or loaded."""
    return Linear(nO=nO)


@Language.factory(
    "trf_textcat",
    default_config=DEFAULT_CONFIG,
    default_score_weights={"cats_score": 1.0, "cats_macro_f": None, "cats_micro_f": None},
)
def make_textcat(
    nlp: Language,
    name: str,
    model: Model,
    exclusive_classes: bool,
    dropout: float,
    tok2vec: str,
    pooling: str,
    max_wordpieces: int,
    class_weighting: str,
    optimizer: Optimizer | None,
) -> TransformerTextCat:
    """Classify docs from the transformer's rows.

    model: the head (``stream_trf.TransformerTextcatHead.v1``).
    exclusive_classes: one label per doc (softmax) or independent labels (sigmoid).
    dropout: on the pooled features while training.
    tok2vec: the name of the trf_tok2vec component whose rows it reads.
    pooling: per sentence, "cls" (the class-token row, as the model was pretrained) or "mean"
        (the mean of the sentence's wordpiece rows, as sentence-transformers models are), each
        sentence classified and the probabilities averaged; or "doc_mean": the mean of all the
        doc's wordpiece rows (longer sentences weigh more), classified once.
    max_wordpieces: read only the doc's first N wordpieces (the sentences that start within
        them; for doc_mean, the first N rows); 0 = all. Train on the same head of each doc
        (the ``stream_trf.first_wordpieces.v1`` augmenter), so that serving sees what training
        saw.
    class_weighting: "none", "sqrt" or "balanced": at initialize, each label's loss term is
        weighed by the inverse square root (or inverse) of its count in the training examples.
    optimizer: a Thinc optimizer of its own (the head's learning rate); null: the one spaCy
        passes (``[training.optimizer]``).
    """
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    if class_weighting not in CLASS_WEIGHTINGS:
        raise ValueError(
            f"class_weighting must be one of {CLASS_WEIGHTINGS}, got {class_weighting!r}"
        )
    return TransformerTextCat(
        nlp,
        name,
        model=model,
        optimizer=optimizer,
        exclusive_classes=exclusive_classes,
        dropout=dropout,
        tok2vec=tok2vec,
        pooling=pooling,
        max_wordpieces=max_wordpieces,
        class_weighting=class_weighting,
    )


def weights_from_counts(counts: dict[str, int], scheme: str) -> dict[str, float]:
    """Loss weights per label from its count of training examples: "none" ({}), "sqrt" (the
    inverse square root of the count) or "balanced" (the inverse count). Scaled so that the mean
    weight over the examples is 1, which keeps the loss's scale (and so the learning rates)
    what it is without weights.

    With skewed counts (here 157 to 642 docs a label) an unweighted loss pulls doubtful
    documents towards the big labels, which costs the small labels' recall and so macro-F1.
    """
    if scheme not in CLASS_WEIGHTINGS:
        raise ValueError(f"class weighting must be one of {CLASS_WEIGHTINGS}, got {scheme!r}")
    if scheme == "none":
        return {}
    power = 0.5 if scheme == "sqrt" else 1.0
    raw = {label: (1.0 / max(c, 1)) ** power for label, c in counts.items()}
    mean = sum(raw[k] * c for k, c in counts.items()) / max(sum(counts.values()), 1)
    return {label: raw[label] / mean for label in counts}


class TransformerTextCat(Pipe):
    listens_to_trf = True

    def __init__(
        self,
        nlp: Language,
        name: str = "trf_textcat",
        *,
        model: Model | None = None,
        optimizer: Optimizer | None = None,
        **cfg: Any,
    ) -> None:
        self.vocab = nlp.vocab
        self.name = name
        self._nlp = nlp
        self.model: Model = model if model is not None else textcat_head()
        self.own_optimizer = optimizer
        self.cfg: dict[str, Any] = {**DEFAULT_SETTINGS, **cfg, "labels": []}

    # --- labels and weights --------------------------------------------------------------

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.cfg["labels"])

    def add_label(self, label: str) -> int:
        if label in self.cfg["labels"]:
            return 0
        if self.has_head:
            raise StreamTrfError(f"{self.name}: add labels before the head is initialized")
        self.cfg["labels"].append(label)
        return 1

    @property
    def exclusive(self) -> bool:
        return bool(self.cfg["exclusive_classes"])

    @property
    def temperature(self) -> float:
        """What tempers each doc's probabilities (``doc_probabilities``; 1: as trained)."""
        return float(self.cfg.get("temperature") or 1.0)

    @property
    def has_head(self) -> bool:
        return bool(self.model.has_param("W"))

    def _tok2vec(self) -> Any:
        return self._nlp.get_pipe(self.cfg["tok2vec"])

    def _make_head(self, width: int) -> None:
        self.model.set_dim("nO", len(self.labels), force=True)
        self.model.set_dim("nI", width, force=True)
        self.model.initialize()

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Any]] | None = None,
        *,
        nlp: Any = None,
        labels: Iterable[str] | None = None,
        probe_epochs: int = 0,
        probe_learn_rate: float = 1e-2,
        probe_batch_size: int = 32,
    ) -> None:
        """Labels (given, or read from the examples), a new head, the class weights from the
        examples' label counts, and with ``probe_epochs`` a head trained alone on the frozen
        transformer's rows first ("linear probing, then fine-tuning": the transformer's first
        updates then follow a head that already points the right way)."""
        scheme = str(self.cfg.get("class_weighting") or "none")
        needed = not (labels or self.labels) or scheme != "none" or probe_epochs > 0
        examples = list(get_examples()) if get_examples is not None and needed else []
        if labels:
            for label in labels:
                self.add_label(label)
        elif not self.labels:
            for eg in examples:
                for label in eg.reference.cats:
                    self.add_label(label)
        if self.labels and not self.has_head:
            self._make_head(self._tok2vec().width)
        if scheme != "none" and examples:
            counts = {label: 0 for label in self.labels}
            for eg in examples:
                for label, value in eg.reference.cats.items():
                    if label in counts and value > 0.5:
                        counts[label] += 1
            self.set_class_weights(weights_from_counts(counts, scheme))
        if probe_epochs > 0 and examples:
            features = self.head_features([eg.predicted.text for eg in examples], desc="probe rows")
            golds = np.stack([self._gold(eg) for eg in examples])
            self.fit_head(
                features,
                golds,
                epochs=probe_epochs,
                learn_rate=probe_learn_rate,
                batch_size=probe_batch_size,
                desc="probe (head only)",
            )

    @property
    def is_trainable(self) -> bool:
        return True

    # --- features --------------------------------------------------------------------------

    def _require_head(self) -> None:
        if not self.has_head:
            raise UntrainedClassifier(
                f"{self.name} has no labels or weights yet: add labels "
                f"(nlp.get_pipe('{self.name}').add_label(...)) and call nlp.initialize(), "
                "or load a trained pipeline."
            )

    def _width(self) -> int:
        return int(self.model.get_dim("nI"))

    def _features(self, doc: Doc, rows: np.ndarray) -> tuple[np.ndarray, sparse.csr_matrix | None]:
        """The doc's pooled features (k × width) and the matrix that made them from its rows
        (features = P @ rows; its transpose carries gradients back). An empty doc reads one
        all-zero feature row, and sends nothing back."""
        wp = _wp(doc)
        if wp is None or wp.n_sentences == 0 or len(rows) == 0:
            return np.zeros((1, self._width()), dtype=np.float32), None
        n = len(rows)
        limit = int(self.cfg.get("max_wordpieces") or 0)
        if self.cfg["pooling"] == "doc_mean":
            m = min(limit, n) if limit else n
            cols = np.arange(m)
            indptr = np.array([0, m])
            weights = np.full(m, 1.0 / m, dtype=np.float32)
        else:
            k = wp.n_sentences
            if limit:  # the sentences that start within the first ``limit`` wordpieces
                k = max(1, int(np.count_nonzero(wp.sentence_starts[:-1] < limit)))
            if self.cfg["pooling"] == "mean":
                starts, stops = wp.sentence_starts[:k], wp.sentence_starts[1 : k + 1]
                lengths = stops - starts
                cols = np.concatenate([np.arange(a, b) for a, b in zip(starts, stops)])
                weights = np.repeat(1.0 / np.maximum(lengths, 1), lengths).astype(np.float32)
                indptr = np.concatenate([[0], np.cumsum(lengths)])
            else:
                cols = wp.class_token_rows()[:k]
                weights = np.ones(k, dtype=np.float32)
                indptr = np.arange(k + 1)
        plan = sparse.csr_matrix((weights, cols, indptr), shape=(len(indptr) - 1, n))
        return np.asarray(plan @ rows, dtype=np.float32), plan

    def _pooled_features(self, doc: Doc, pooled: PooledOutputs) -> np.ndarray:
        """``_features`` from a doc's per-sentence reductions (``trf_tok2vec`` with
        ``outputs="pooled"``): the same sentences, the same pooling, no rows."""
        wp = _wp(doc)
        if wp is None or wp.n_sentences == 0:
            return np.zeros((1, self._width()), dtype=np.float32)
        limit = int(self.cfg.get("max_wordpieces") or 0)
        if self.cfg["pooling"] == "doc_mean":
            if limit and limit < len(wp.ids):
                raise RowsNotKept(
                    f"{self.name}: pooling='doc_mean' with max_wordpieces={limit} averages "
                    "the first rows of a doc, which trf_tok2vec with outputs='pooled' does not "
                    "keep; load the pipeline with outputs='rows'"
                )
            return pooled.mean()[None, :]
        n = wp.n_sentences
        if limit:
            n = max(1, int(np.count_nonzero(wp.sentence_starts[:-1] < limit)))
        chosen = (
            pooled.sentence_means()[:n] if self.cfg["pooling"] == "mean" else pooled.class_rows[:n]
        )
        return np.ascontiguousarray(chosen, dtype=np.float32)

    def doc_features(self, doc: Doc) -> np.ndarray:
        """The pooled features of a doc the transformer has run on."""
        rows = doc._.trf_last_hidden_state
        outputs = doc._.trf_outputs
        if rows is None and outputs is not None and outputs.pooled is not None:
            return self._pooled_features(doc, outputs.pooled)
        if rows is None:
            raise StreamTrfError(
                f"{self.name} needs the transformer's rows: put it after trf_tok2vec"
            )
        return self._features(doc, np.asarray(rows, dtype=np.float32))[0]

    def head_features(self, texts: Sequence[str], *, desc: str = "rows") -> list[np.ndarray]:
        """Per text, the features of its doc, computed by the pipeline up to this component
        (the transformer as it is now). The docs and their rows are not kept."""
        from tqdm import tqdm

        names = [name for name, _ in self._nlp.pipeline]
        after = names[names.index(self.name) :] if self.name in names else [self.name]
        out = []
        with tqdm(total=len(texts), desc=desc, unit="doc", disable=None) as bar:
            for doc in self._nlp.pipe(texts, disable=after, batch_size=64):
                out.append(self.doc_features(doc))
                bar.update(1)
        return out

    # --- prediction ----------------------------------------------------------------------

    def logits(self, features: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Per doc, the head's logits for each of its feature rows (temperature not applied)."""
        self._require_head()
        if not features:
            return []
        X = np.concatenate(features).astype(np.float32, copy=False)
        Z = np.asarray(self.model.predict(X))
        bounds = np.cumsum([0] + [len(f) for f in features])
        return [Z[a:b] for a, b in itertools.pairwise(bounds)]

    def probabilities(
        self, logits: Sequence[np.ndarray], temperature: float | None = None
    ) -> np.ndarray:
        """Per doc, its label probabilities (n_docs, n_labels): ``doc_probabilities`` at the
        component's temperature (or the one given)."""
        t = self.temperature if temperature is None else float(temperature)
        if not logits:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        return doc_probabilities(logits, t, self.exclusive).astype(np.float32)

    def predict(self, docs: Iterable[Doc]) -> np.ndarray:
        self._require_head()
        return self.probabilities(self.logits([self.doc_features(doc) for doc in docs]))

    def set_annotations(self, docs: Iterable[Doc], scores: np.ndarray) -> None:
        for doc, probs in zip(docs, scores):
            doc.cats = {label: float(p) for label, p in zip(self.labels, probs)}

    def __call__(self, doc: Doc) -> Doc:
        self.set_annotations([doc], self.predict([doc]))
        return doc

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 128) -> Iterator[Doc]:
        for docs in minibatch(stream, size=batch_size):
            self.set_annotations(docs, self.predict(docs))
            yield from docs

    # --- training ------------------------------------------------------------------------

    def _gold(self, eg: Any) -> np.ndarray:
        cats = eg.reference.cats
        return np.array([float(cats.get(label, 0.0)) for label in self.labels], dtype=np.float32)

    def set_class_weights(self, weights: dict[str, float] | None) -> None:
        """Weigh each label's term of the training loss (None or {}: all 1). Training only:
        predictions are unchanged. Saved with the component, so training can resume with
        them."""
        weights = dict(weights or {})
        unknown = set(weights) - set(self.labels)
        if unknown:
            raise ValueError(f"class weights for labels {sorted(unknown)} not in {self.labels}")
        bad = {k: v for k, v in weights.items() if not (float(v) > 0 and math.isfinite(v))}
        if bad:
            raise ValueError(f"class weights must be positive and finite, got {bad}")
        self.cfg["class_weights"] = {k: float(v) for k, v in weights.items()}

    def _class_weights(self) -> np.ndarray | None:
        weights = self.cfg.get("class_weights") or {}
        if not weights:
            return None
        return np.array([float(weights.get(label, 1.0)) for label in self.labels], dtype=np.float32)

    def head_loss(
        self, features: Sequence[np.ndarray], golds: np.ndarray, *, dropout: float = 0.0
    ) -> tuple[float, list[np.ndarray]]:
        """The batch's loss (cross-entropy of the doc probabilities, or binary cross-entropy
        for multi-label; each label's term times its class weight; mean over docs), the head's
        gradients (accumulated, for ``finish_update``), and d loss / d features per doc."""
        lengths = np.array([len(f) for f in features])
        X = np.concatenate(features).astype(np.float32, copy=False)
        mask = None
        if dropout > 0:
            mask = (np.random.random(X.shape) >= dropout).astype(np.float32) / (1.0 - dropout)
            X = X * mask
        Z, backprop = self.model.begin_update(X)
        P = activate(np.asarray(Z), self.exclusive)
        doc_of_row = np.repeat(np.arange(len(features)), lengths)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        P_doc = np.add.reduceat(P, starts, axis=0) / lengths[:, None]
        n = max(len(features), 1)
        eps = 1e-7
        if self.exclusive:
            P_c = np.maximum(P_doc, eps)
            terms = -(golds * np.log(P_c))
            d_doc = -(golds / P_c) * (P_doc > eps)
        else:
            P_c = np.clip(P_doc, eps, 1 - eps)
            terms = -(golds * np.log(P_c) + (1 - golds) * np.log(1 - P_c))
            d_doc = (-(golds / P_c) + (1 - golds) / (1 - P_c)) * ((P_doc > eps) & (P_doc < 1 - eps))
        weights = self._class_weights()
        if weights is not None:
            terms, d_doc = terms * weights, d_doc * weights
        d_P = (d_doc / n)[doc_of_row] / lengths[doc_of_row][:, None]
        if self.exclusive:
            d_Z = P * (d_P - (d_P * P).sum(axis=1, keepdims=True))
        else:
            d_Z = d_P * P * (1 - P)
        d_X = np.asarray(backprop(d_Z.astype(np.float32)))
        if mask is not None:
            d_X = d_X * mask
        bounds = np.concatenate([[0], np.cumsum(lengths)])
        return float(terms.sum()) / n, [d_X[a:b] for a, b in itertools.pairwise(bounds)]

    def update(
        self,
        examples: Iterable[Any],
        *,
        drop: float = 0.0,
        sgd: Any = None,
        losses: dict[str, float] | None = None,
    ) -> dict[str, float]:
        """Loss on the batch; d loss / d rows into each doc's gradient buffer; head gradients."""
        losses = {} if losses is None else losses
        losses.setdefault(self.name, 0.0)
        examples = list(examples)
        self._require_head()
        if not examples:
            return losses
        tok2vec = self._tok2vec()
        missing = [eg.predicted for eg in examples if eg.predicted._.trf_last_hidden_state is None]
        if missing:  # the transformer is frozen and did not run in this update
            tok2vec.prepare(missing)
            tok2vec.set_annotations(missing)
        features, plans = [], []
        for eg in examples:
            rows = np.asarray(eg.predicted._.trf_last_hidden_state, dtype=np.float32)
            feats, plan = self._features(eg.predicted, rows)
            features.append(feats)
            plans.append(plan)
        golds = np.stack([self._gold(eg) for eg in examples])
        loss, d_features = self.head_loss(
            features, golds, dropout=float(self.cfg["dropout"]) if drop else 0.0
        )
        for eg, plan, d in zip(examples, plans, d_features):
            if plan is None:
                continue
            doc = eg.predicted
            grad = np.asarray(plan.T @ d, dtype=np.float32)
            buffer = doc._.trf_d_last_hidden_state
            doc._.trf_d_last_hidden_state = grad if buffer is None else buffer + grad
        losses[self.name] += loss
        tok2vec.receive_gradient(self.name)
        return losses

    def finish_update(self, sgd: Any = None) -> None:
        """Step the head with the optimizer of its own, or the one spaCy passes."""
        optimizer = self.own_optimizer or sgd
        if optimizer is None or optimizer is False or not self.has_head:
            return
        self.model.finish_update(optimizer)
        if self.own_optimizer is not None and optimizer is self.own_optimizer:
            self.own_optimizer.step_schedules()

    def use_params(self, params: dict[Any, Any]) -> Iterator[None]:
        """The averaged weights until resumed (a generator, as spaCy's Language drives it)."""
        with self.model.use_params(params):
            yield

    def fit_head(
        self,
        features: Sequence[np.ndarray],
        golds: np.ndarray,
        *,
        epochs: int,
        learn_rate: float,
        batch_size: int = 32,
        seed: int = 0,
        desc: str = "head",
        after_epoch: Callable[[int, float], None] | None = None,
    ) -> list[float]:
        """Train the head alone on precomputed features (the transformer frozen), with an
        Adam of its own; returns the mean loss of each epoch. ``after_epoch(epoch, loss)`` is
        called after each (1-based)."""
        from tqdm import tqdm

        optimizer = Adam(learn_rate, L2=0.0, grad_clip=1.0, use_averages=False)
        shuffle = random.Random(seed)
        dropout = float(self.cfg["dropout"])
        history = []
        with tqdm(total=epochs, desc=desc, unit="epoch", disable=None) as bar:
            for epoch in range(1, epochs + 1):
                order = list(range(len(features)))
                shuffle.shuffle(order)
                batch_losses = []
                for k in range(0, len(order), batch_size):
                    idx = order[k : k + batch_size]
                    loss, _ = self.head_loss(
                        [features[i] for i in idx], golds[idx], dropout=dropout
                    )
                    self.model.finish_update(optimizer)
                    batch_losses.append(loss)
                history.append(float(np.mean(batch_losses)) if batch_losses else 0.0)
                bar.update(1)
                if after_epoch is not None:
                    after_epoch(epoch, history[-1])
        return history

    def score(self, examples: Iterable[Any], **kwargs: Any) -> dict[str, Any]:
        return Scorer.score_cats(
            examples, "cats", labels=self.labels, multi_label=not self.exclusive, **kwargs
        )

    # --- serialization -------------------------------------------------------------------

    def _head_arrays(self) -> dict[str, np.ndarray]:
        if not self.has_head:
            return {}
        return {
            "weight": np.asarray(self.model.get_param("W")),
            "bias": np.asarray(self.model.get_param("b")),
        }

    def _restore(self, cfg: dict[str, Any], arrays: dict[str, Any]) -> None:
        for key in RETIRED_SETTINGS["trf_textcat"]:  # a head saved by an earlier version
            cfg.pop(key, None)
        self.cfg.update(cfg)
        if "weight" in arrays:
            weight = np.asarray(arrays["weight"], dtype=np.float32)
            bias = np.asarray(arrays["bias"], dtype=np.float32)
            self.model.set_dim("nO", weight.shape[0], force=True)
            self.model.set_dim("nI", weight.shape[1], force=True)
            self.model.set_param("W", cast(Floats2d, weight.copy()))
            self.model.set_param("b", cast(Floats1d, bias.copy()))

    def to_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        srsly.write_json(path / "cfg", self.cfg)
        arrays = self._head_arrays()
        if arrays:
            np.savez(path / "head.npz", weight=arrays["weight"], bias=arrays["bias"])
        else:
            (path / "head.npz").unlink(missing_ok=True)

    def from_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> TransformerTextCat:
        path = Path(path)
        arrays = dict(np.load(path / "head.npz")) if (path / "head.npz").exists() else {}
        self._restore(srsly.read_json(path / "cfg"), arrays)
        return self

    def to_bytes(self, *, exclude: Iterable[str] = ()) -> bytes:
        return srsly.msgpack_dumps({"cfg": self.cfg, **self._head_arrays()})

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = ()) -> TransformerTextCat:
        msg = srsly.msgpack_loads(bytes_data)
        self._restore(dict(msg.pop("cfg")), msg)
        return self


def doc_probabilities(
    logits: Sequence[np.ndarray], temperature: float, exclusive: bool
) -> np.ndarray:
    """Per doc: the mean over its feature rows of softmax (exclusive) or sigmoid (multi-label)
    of their logits, then tempered: softmax(log p / T), or sigmoid(logit(p) / T) per label.

    The temperature acts on the doc's probabilities, not on each row's logits: a doc read as
    several sentences averages their predictions, which blurs them (the shipped head, per
    sentence, was under-confident: mean confidence 0.79 at accuracy 0.89 on dev), and a
    per-row temperature can only blur them further or sharpen each sentence alone. Tempering
    the average is the same as per-row temperature scaling for a one-row doc, keeps every
    doc's ranking of its labels, and is what ``calibrate`` fits."""
    lengths = np.array([len(z) for z in logits])
    P = activate(np.concatenate(logits), exclusive).astype(np.float64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    P = np.add.reduceat(P, starts, axis=0) / lengths[:, None]
    if temperature == 1.0:
        return P
    eps = 1e-12
    if exclusive:
        return activate(np.log(np.maximum(P, eps)) / temperature, True)
    P = np.clip(P, eps, 1 - eps)
    return activate((np.log(P) - np.log1p(-P)) / temperature, False)


def activate(logits: np.ndarray, exclusive: bool) -> np.ndarray:
    """Softmax over each row (exclusive classes) or an independent sigmoid per label."""
    logits = np.asarray(logits)
    if exclusive:
        e = np.exp(logits - logits.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    return expit(logits)
