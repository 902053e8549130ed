"""How ``trf_tok2vec`` and its listeners train through spaCy: the gradient buffer, and the
optimizer spaCy hands in.

1. ``trf_tok2vec.update`` runs the transformer with autograd on every sentence of the batch and
   keeps, per doc, the rows (n_wordpieces × width) as a torch tensor with its graph; the doc gets
   the same rows as numpy, ``doc.tensor``, and a zeroed ``doc._.trf_d_last_hidden_state``
   (inference leaves it ``None``: no memory for a buffer nothing will fill).
2. Each downstream component that trains on those rows (a *listener*: ``trf_textcat``, a
   component with ``listens_to_trf = True``, or any spaCy component whose model holds the
   ``stream_trf.TransformerListener.v1`` layer, such as spaCy's own ``tagger`` or ``ner``)
   **adds** d loss / d rows into ``doc._.trf_d_last_hidden_state`` and calls
   ``tok2vec.receive_gradient(name)``.
3. When every listener has reported, the transformer backpropagates the summed buffers (times
   ``grad_factor``) into its parameters' gradients. ``grad_factor = 0`` computes none.
4. ``finish_update(sgd)`` clips the gradients' global norm and hands every parameter and its
   gradient to ``sgd``, the Thinc optimizer spaCy passes (``[training.optimizer]`` of the
   config), under a key of its own, as spaCy's Thinc models and spacy-transformers' PyTorch
   shim do. A component configured with an ``optimizer`` of its own uses that instead: that is
   how the head learns at 1e-3 while the transformer learns at 1e-4 on a warm-up schedule.

``spacy train`` calls every component's ``update`` and then every ``finish_update``, so the
gradients are all in when the step comes. ``nlp.update`` calls ``finish_update`` right after
each component's own ``update``, before the listeners downstream have run: the transformer then
keeps the optimizer and steps once the last listener has reported.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from thinc.api import Optimizer
from thinc.model import Model

# Settings of earlier versions, when each component stepped an AdamW of its own. Pipelines saved
# then still load through ``stream_trf.load`` (which drops them with a warning);
# [training.optimizer] or a component's own ``optimizer`` decides now.
RETIRED_SETTINGS = {
    "trf_tok2vec": ("learn_rate", "warmup_steps", "total_steps", "weight_decay"),
    "trf_textcat": ("learn_rate", "weight_decay", "grad_clip"),
}


def drop_retired_settings(config: Any) -> list[str]:
    """Remove the retired settings from a pipeline config's components, in place; what was
    removed, as ``component.setting``."""
    dropped = []
    for name, block in (config.get("components") or {}).items():
        retired = RETIRED_SETTINGS.get(block.get("factory", ""), ())
        for key in retired:
            if key in block:
                del block[key]
                dropped.append(f"{name}.{key}")
    if dropped:
        warnings.warn(
            f"{', '.join(dropped)}: settings of an earlier stream_trf, ignored (the optimizer "
            "of [training.optimizer], or a component's own `optimizer`, decides now). Save the "
            "pipeline again, or delete them from its config.cfg, so that spacy.load reads it too.",
            FutureWarning,
            stacklevel=3,
        )
    return dropped


def new_param_key() -> int:
    """A key id for a component's torch parameters in a Thinc optimizer: drawn from Thinc's own
    counter of model ids, so that no Thinc layer in the same pipeline shares it."""
    with Model.global_id_lock:
        Model.global_id += 1
        return int(Model.global_id)


def _host_array(t: torch.Tensor) -> tuple[Any, bool]:
    """The tensor as an array the optimizer can update in place: a numpy view on the CPU, a cupy
    view on CUDA with cupy installed; otherwise a host copy (``True``: copy it back)."""
    if t.device.type == "cpu":
        return t.detach().numpy(), False
    from thinc.util import has_cupy, torch2xp

    if has_cupy:
        return torch2xp(t.detach()), False
    return t.detach().cpu().numpy(), True


def step_torch_params(
    params: Iterable[tuple[str, torch.nn.Parameter]], sgd: Optimizer, key: int
) -> bool:
    """One optimizer step for every parameter that has a gradient; the gradients are cleared.
    Returns whether anything was stepped."""
    stepped = False
    for name, param in params:
        if param.grad is None:
            continue
        weights, copied = _host_array(param.data)
        grad, _ = _host_array(param.grad)
        new, _ = sgd((key, f"stream_trf:{name}"), weights, grad)
        if copied or not _same_memory(new, weights):
            param.data.copy_(torch.as_tensor(new).reshape(param.shape).to(param.device))
        param.grad = None
        stepped = True
    return stepped


def _same_memory(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return bool(np.shares_memory(a, b))
    return a is b


@contextlib.contextmanager
def swapped_params(
    params: Iterable[tuple[str, torch.nn.Parameter]], averages: dict[Any, Any] | None, key: int
) -> Iterator[None]:
    """Inside the block, parameters whose keys ``averages`` holds (the optimizer's moving
    averages, when it keeps them) take those values; afterwards their own again. spaCy
    evaluates and saves checkpoints this way (``nlp.use_params``)."""
    saved: list[tuple[torch.nn.Parameter, torch.Tensor]] = []
    if averages:
        with torch.no_grad():
            for name, param in params:
                value = averages.get((key, f"stream_trf:{name}"))
                if value is None:
                    continue
                saved.append((param, param.data.clone()))
                param.data.copy_(torch.as_tensor(_to_host(value)).reshape(param.shape))
    try:
        yield
    finally:
        with torch.no_grad():
            for param, value in saved:
                param.data.copy_(value)


def _to_host(value: Any) -> Any:
    return value.get() if hasattr(value, "get") and not isinstance(value, np.ndarray) else value


def clip_grad_norm(params: Iterable[torch.nn.Parameter], max_norm: float) -> float:
    """Clip the gradients' global norm (the optimizer clips each array alone); returns it."""
    with_grad = [p for p in params if p.grad is not None]
    if not with_grad or not max_norm or max_norm <= 0:
        return 0.0
    return float(torch.nn.utils.clip_grad_norm_(with_grad, max_norm))


@dataclass
class PendingBackward:
    """One batch's transformer graph, waiting for its listeners' gradients."""

    docs: list[Any]
    rows: list[torch.Tensor]  # per doc, with graph
    waiting_for: set[str]
    losses: dict[str, float]
    received: set[str] = field(default_factory=set)
