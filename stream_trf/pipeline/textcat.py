"""``trf_textcat``: text classification on the transformer's class tokens.

Per sentence, the class-token row (wherever the model family puts it: first for BERT and
RoBERTa, last for XLNet) → dropout → linear → softmax (exclusive classes) or sigmoid
(multi-label, independent probabilities) → mean over the doc's sentences → ``doc.cats``.

It trains through ``nlp.update``: its gradient with respect to the transformer's rows goes into
``doc._.trf_d_last_hidden_state`` and ``trf_tok2vec`` backpropagates it (pipeline/training.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import srsly
import torch
from spacy.language import Language
from spacy.pipeline import Pipe
from spacy.scorer import Scorer
from spacy.tokens import Doc
from spacy.util import minibatch

from ..errors import RowsNotKept, StreamTrfError
from .extensions import PooledOutputs, install_extensions
from .training import OptimizerSettings, TorchOptimizer

install_extensions()

DEFAULT_CONFIG: dict[str, Any] = {
    "exclusive_classes": True,
    "dropout": 0.1,
    "learn_rate": 1e-3,
    "weight_decay": 0.0,
    "grad_clip": 1.0,
    "tok2vec": "trf_tok2vec",
    "pooling": "cls",
    "max_wordpieces": 0,
}


POOLINGS = ("cls", "mean", "doc_mean")


class UntrainedClassifier(StreamTrfError):
    """trf_textcat was used before it had labels and weights."""


@Language.factory(
    "trf_textcat",
    default_config=DEFAULT_CONFIG,
    default_score_weights={"cats_score": 1.0, "cats_macro_f": None, "cats_micro_f": None},
)
def make_textcat(
    nlp: Language,
    name: str,
    exclusive_classes: bool,
    dropout: float,
    learn_rate: float,
    weight_decay: float,
    grad_clip: float,
    tok2vec: str,
    pooling: str,
    max_wordpieces: int,
) -> TransformerTextCat:
    """Classify docs from the transformer's class-token rows.

    exclusive_classes: one label per doc (softmax) or independent labels (sigmoid).
    dropout: on the class-token rows while training.
    learn_rate / weight_decay / grad_clip: the head's own AdamW (the transformer has its own).
    tok2vec: the name of the trf_tok2vec component whose rows it reads.
    pooling: per sentence, "cls" (the class-token row, as the model was pretrained) or "mean"
        (the mean of the sentence's wordpiece rows, as sentence-transformers models are), each
        sentence classified and the probabilities averaged; or "doc_mean": the mean of all the
        doc's wordpiece rows (longer sentences weigh more), classified once.
    max_wordpieces: read only the doc's first N wordpieces (the sentences that start within
        them; for doc_mean, the first N rows); 0 = all. ``stream-trf train`` sets it to what it
        trained on, so that serving sees what training saw.
    """
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    return TransformerTextCat(
        nlp,
        name,
        exclusive_classes=exclusive_classes,
        dropout=dropout,
        learn_rate=learn_rate,
        weight_decay=weight_decay,
        grad_clip=grad_clip,
        tok2vec=tok2vec,
        pooling=pooling,
        max_wordpieces=max_wordpieces,
    )


class TransformerTextCat(Pipe):
    listens_to_trf = True

    def __init__(self, nlp: Language, name: str = "trf_textcat", **cfg: Any) -> None:
        self.vocab = nlp.vocab
        self.name = name
        self._nlp = nlp
        self.cfg: dict[str, Any] = {**DEFAULT_CONFIG, **cfg, "labels": []}
        self.head: torch.nn.Linear | None = None
        self._optimizer: TorchOptimizer | None = None

    # --- labels and weights --------------------------------------------------------------

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.cfg["labels"])

    def add_label(self, label: str) -> int:
        if label in self.cfg["labels"]:
            return 0
        if self.head is not None:
            raise StreamTrfError(f"{self.name}: add labels before the head is initialized")
        self.cfg["labels"].append(label)
        return 1

    @property
    def exclusive(self) -> bool:
        return bool(self.cfg["exclusive_classes"])

    def _tok2vec(self) -> Any:
        return self._nlp.get_pipe(self.cfg["tok2vec"])

    def _make_head(self, width: int) -> None:
        torch.manual_seed(0)
        self.head = torch.nn.Linear(width, len(self.labels))
        self._optimizer = None

    def initialize(self, get_examples: Any = None, *, nlp: Any = None, labels: Any = None) -> None:
        if labels:
            for label in labels:
                self.add_label(label)
        elif get_examples is not None and not self.labels:
            for eg in get_examples():
                for label in eg.reference.cats:
                    self.add_label(label)
        if self.labels and self.head is None:
            self._make_head(self._tok2vec().width)

    @property
    def is_trainable(self) -> bool:
        return True

    @property
    def model(self) -> Any:
        return self.head

    # --- prediction ----------------------------------------------------------------------

    def _require_head(self) -> torch.nn.Linear:
        if self.head is None:
            raise UntrainedClassifier(
                f"{self.name} has no labels or weights yet: add labels "
                f"(nlp.get_pipe('{self.name}').add_label(...)) and call nlp.initialize(), "
                "or load a trained pipeline."
            )
        return self.head

    def _probabilities(self, cls_rows: torch.Tensor, drop: float = 0.0) -> torch.Tensor:
        """Per sentence probabilities, (n_sentences, n_labels)."""
        head = self._require_head()
        if drop > 0:
            cls_rows = torch.nn.functional.dropout(cls_rows, p=drop, training=True)
        logits = head(cls_rows)
        return torch.softmax(logits, -1) if self.exclusive else torch.sigmoid(logits)

    def _doc_probabilities(self, doc: Doc, rows: torch.Tensor, drop: float = 0.0) -> torch.Tensor:
        wp = doc._.trf_pieces
        if wp is None or wp.n_sentences == 0:
            # Nothing to read: the head's answer for an all-zero class token.
            zero = torch.zeros((1, self._require_head().in_features), dtype=rows.dtype)
            return self._probabilities(zero).mean(0)
        limit = int(self.cfg.get("max_wordpieces") or 0)
        if self.cfg["pooling"] == "doc_mean":
            head_rows = rows[:limit] if limit else rows
            return self._probabilities(head_rows.mean(0, keepdim=True), drop).mean(0)
        sentences = range(wp.n_sentences)
        if limit:
            # The sentences that start within the first ``limit`` wordpieces (at least one).
            sentences = range(max(1, sum(wp.sentence(i).start < limit for i in sentences)))
        if self.cfg["pooling"] == "mean":
            pooled = torch.stack([rows[wp.sentence(i)].mean(0) for i in sentences])
        else:
            pooled = rows[torch.from_numpy(wp.class_token_rows()[: len(sentences)])]
        return self._probabilities(pooled, drop).mean(0)

    def _pooled_probabilities(self, doc: Doc, pooled: PooledOutputs) -> torch.Tensor:
        """``_doc_probabilities`` from a doc's per-sentence reductions (``trf_tok2vec`` with
        ``outputs="pooled"``): the same sentences, the same pooling, no rows."""
        wp = doc._.trf_pieces
        if wp is None or wp.n_sentences == 0:
            zero = torch.zeros((1, self._require_head().in_features))
            return self._probabilities(zero).mean(0)
        limit = int(self.cfg.get("max_wordpieces") or 0)
        if self.cfg["pooling"] == "doc_mean":
            if limit and limit < len(wp.ids):
                raise RowsNotKept(
                    f"{self.name}: pooling='doc_mean' with max_wordpieces={limit} averages "
                    "the first rows of a doc, which trf_tok2vec with outputs='pooled' does not "
                    "keep; load the pipeline with outputs='rows'"
                )
            return self._probabilities(torch.from_numpy(pooled.mean()[None, :])).mean(0)
        n = wp.n_sentences
        if limit:
            n = max(1, int(np.count_nonzero(wp.sentence_starts[:-1] < limit)))
        if self.cfg["pooling"] == "mean":
            chosen = pooled.sentence_means()[:n]
        else:
            chosen = pooled.class_rows[:n]
        return self._probabilities(torch.from_numpy(np.ascontiguousarray(chosen))).mean(0)

    def predict(self, docs: Iterable[Doc]) -> np.ndarray:
        self._require_head()
        out = []
        with torch.no_grad():
            for doc in docs:
                rows = doc._.trf_last_hidden_state
                outputs = doc._.trf_outputs
                if rows is None and outputs is not None and outputs.pooled is not None:
                    out.append(self._pooled_probabilities(doc, outputs.pooled).numpy())
                    continue
                if rows is None:
                    raise StreamTrfError(
                        f"{self.name} needs the transformer's rows: put it after trf_tok2vec"
                    )
                out.append(self._doc_probabilities(doc, torch.from_numpy(np.asarray(rows))).numpy())
        return np.stack(out) if out else np.zeros((0, len(self.labels)), dtype=np.float32)

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

    def _gold(self, eg: Any) -> torch.Tensor:
        return torch.tensor([float(eg.reference.cats.get(label, 0.0)) for label in self.labels])

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

    def _class_weights(self) -> torch.Tensor | None:
        weights = self.cfg.get("class_weights") or {}
        if not weights:
            return None
        return torch.tensor([float(weights.get(label, 1.0)) for label in self.labels])

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
        head = self._require_head()
        head.train()
        tok2vec = self._tok2vec()
        total = torch.zeros(())
        leaves = []
        weights = self._class_weights()
        for eg in examples:
            doc = eg.predicted
            if doc._.trf_last_hidden_state is None:
                tok2vec.set_annotations([doc])
            rows = torch.from_numpy(np.asarray(doc._.trf_last_hidden_state)).clone()
            rows.requires_grad_(True)
            leaves.append((doc, rows))
            probs = self._doc_probabilities(
                doc, rows, drop=float(self.cfg["dropout"]) if drop else 0.0
            )
            gold = self._gold(eg)
            eps = 1e-7
            if self.exclusive:
                terms = -(gold * torch.log(probs.clamp_min(eps)))
            else:
                p = probs.clamp(eps, 1 - eps)
                terms = -(gold * torch.log(p) + (1 - gold) * torch.log(1 - p))
            loss = (terms if weights is None else terms * weights).sum()
            total = total + loss
        n = max(len(examples), 1)
        (total / n).backward()
        for doc, rows in leaves:
            grad = rows.grad.numpy() if rows.grad is not None else 0.0
            buffer = doc._.trf_d_last_hidden_state
            doc._.trf_d_last_hidden_state = grad if buffer is None else buffer + grad
        losses[self.name] += float(total.detach()) / n
        head.eval()
        tok2vec.receive_gradient(self.name)
        return losses

    def finish_update(self, sgd: Any = None) -> None:
        head = self._require_head()
        if self._optimizer is None:
            self._optimizer = TorchOptimizer(
                list(head.parameters()),
                OptimizerSettings(
                    learn_rate=float(self.cfg["learn_rate"]),
                    weight_decay=float(self.cfg["weight_decay"]),
                    grad_clip=float(self.cfg["grad_clip"]),
                ),
            )
        if any(p.grad is not None for p in head.parameters()):
            self._optimizer.step()

    def score(self, examples: Iterable[Any], **kwargs: Any) -> dict[str, Any]:
        return Scorer.score_cats(
            examples, "cats", labels=self.labels, multi_label=not self.exclusive, **kwargs
        )

    # --- serialization -------------------------------------------------------------------

    def to_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        srsly.write_json(path / "cfg", self.cfg)
        if self.head is not None:
            np.savez(
                path / "head.npz",
                weight=self.head.weight.detach().numpy(),
                bias=self.head.bias.detach().numpy(),
            )
        else:
            (path / "head.npz").unlink(missing_ok=True)

    def from_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> TransformerTextCat:
        path = Path(path)
        self.cfg.update(srsly.read_json(path / "cfg"))
        if (path / "head.npz").exists():
            data = np.load(path / "head.npz")
            width = data["weight"].shape[1]
            self._make_head(width)
            assert self.head is not None
            with torch.no_grad():
                self.head.weight.copy_(torch.from_numpy(data["weight"]))
                self.head.bias.copy_(torch.from_numpy(data["bias"]))
        return self

    def to_bytes(self, *, exclude: Iterable[str] = ()) -> bytes:
        raise NotImplementedError(f"{self.name} serializes to a directory: use nlp.to_disk()")

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = ()) -> TransformerTextCat:
        raise NotImplementedError(f"{self.name} serializes to a directory: use spacy.load(dir)")
