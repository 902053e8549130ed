"""``stream_trf.TransformerListener.v1``: the transformer's rows as a Thinc layer, so that spaCy's
own components (``tagger``, ``ner``, ``textcat``, ``spancat``, ...) and yours train on them
through ``spacy train``, as with spaCy's ``Tok2VecListener`` or spacy-transformers'
``TransformerListener``.

Forward: per doc, one row per spaCy token (``doc.tensor``: each token the weighted sum of its
wordpieces' rows, text/alignment.py). Backprop: d tokens → d wordpieces through the same
weights (``W.T @ dY``), added into ``doc._.trf_d_last_hidden_state``, then
``trf_tok2vec.receive_gradient`` — the gradient-buffer mechanism of pipeline/training.py.
``trf_tok2vec`` finds the layer through spaCy's ``_link_components`` (its ``find_listeners``).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, cast

import numpy as np
from scipy import sparse
from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Model
from thinc.types import Floats2d

from ..errors import StreamTrfError
from .extensions import _wp, align_docs, token_rows

LISTENER_NAME = "stream_trf.transformer_listener"


class TransformerListener(Model):
    """A layer that reads the rows ``trf_tok2vec`` set on the docs and sends gradients back."""

    def __init__(self, upstream_name: str, grad_factor: float) -> None:
        super().__init__(
            LISTENER_NAME,
            _forward,
            init=_init,
            dims={"nO": None},
            attrs={"upstream": upstream_name, "grad_factor": float(grad_factor)},
        )
        self.upstream_name = upstream_name
        self._upstream: weakref.ref[Any] | None = None
        self._component = ""

    def attach(self, upstream: Any, component_name: str) -> None:
        """Called by ``trf_tok2vec.add_listener``: whom to report to, and under which name."""
        self._upstream = weakref.ref(upstream)
        self._component = component_name
        if not self.has_dim("nO") and upstream.model is not None:  # loaded: its width is known
            self.set_dim("nO", upstream.width)

    @property
    def upstream(self) -> Any:
        upstream = self._upstream() if self._upstream is not None else None
        if upstream is None:
            raise StreamTrfError(
                f"the transformer listener of '{self._component or '?'}' is not linked to a "
                f"trf_tok2vec named '{self.upstream_name}': put that component before it in the "
                "pipeline (spaCy links them when the pipeline is built)"
            )
        return upstream


@registry.architectures("stream_trf.TransformerListener.v1")
def transformer_listener(
    upstream: str = "trf_tok2vec", grad_factor: float = 1.0
) -> Model[list[Doc], list[Floats2d]]:
    """The rows of the ``trf_tok2vec`` component named ``upstream`` ("*": any), one per
    token, for a downstream component's model (e.g. the ``tok2vec`` of spaCy's
    ``spacy.Tagger.v2``). ``grad_factor`` scales the gradient this component sends to the
    transformer (0: it trains on the rows without changing them)."""
    return TransformerListener(upstream, grad_factor)


def _init(model: Model, X: Any = None, Y: Any = None) -> None:
    if not model.has_dim("nO") and isinstance(model, TransformerListener):
        model.set_dim("nO", model.upstream.width)


def _forward(
    model: Model, docs: list[Doc], is_train: bool
) -> tuple[list[Floats2d], Callable[[list[Floats2d]], list[Any]]]:
    assert isinstance(model, TransformerListener)
    missing = [doc for doc in docs if doc._.trf_outputs is None]
    if missing:
        # Docs the transformer has not run on: spaCy's initialize samples, or a batch of a
        # component trained while trf_tok2vec is frozen and not annotating.
        model.upstream.prepare(missing)
        model.upstream.set_annotations(missing)
    outputs = [cast(Floats2d, np.asarray(token_rows(doc), dtype=np.float32)) for doc in docs]

    def backprop(d_outputs: list[Floats2d]) -> list[Any]:
        """d tokens → d wordpieces into the buffers; then tell the transformer."""
        factor = float(model.attrs["grad_factor"])
        if factor != 0.0:
            align_docs([wp for wp in map(_wp, docs) if wp is not None])
        for doc, d_tokens in zip(docs, d_outputs):
            buffer = doc._.trf_d_last_hidden_state
            if buffer is None or factor == 0.0:
                continue  # a frozen transformer keeps no buffer
            doc._.trf_d_last_hidden_state = buffer + factor * _to_wordpieces(doc, d_tokens)
        model.upstream.receive_gradient(model._component)
        return []

    return outputs, backprop


def _to_wordpieces(doc: Doc, d_tokens: Floats2d) -> np.ndarray:
    """d rows = W.T @ d tokens, W the doc's rebuild matrix (tokens × wordpieces)."""
    wp = _wp(doc)
    assert wp is not None  # rows exist only where wordpieces do
    w = wp.rebuild
    matrix = sparse.csr_matrix((w.weights, w.indices, w.indptr), shape=w.shape)
    return np.asarray(matrix.T @ np.asarray(d_tokens, dtype=np.float32), dtype=np.float32)
