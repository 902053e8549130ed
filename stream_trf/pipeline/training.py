"""How ``trf_tok2vec`` trains through ``nlp.update``: the gradient-buffer mechanism.

1. ``trf_tok2vec.update`` runs the transformer with autograd on every sentence of the batch and
   keeps, per doc, the rows (n_wordpieces × width) as a torch tensor with its graph; the doc gets
   the same rows as numpy, ``doc.tensor``, and a zeroed ``doc._.trf_d_last_hidden_state``
   (inference leaves it ``None``: no memory for a buffer nothing will fill).
2. Each downstream component that trains on those rows (a *listener*: ``trf_textcat``, or your
   own tagger / NER head with ``listens_to_trf = True``) computes its loss on detached rows,
   **adds** d loss / d rows into ``doc._.trf_d_last_hidden_state``, and calls
   ``tok2vec.receive_gradient(self.name)``.
3. When every listener has reported, the transformer backpropagates the summed buffers (times
   ``grad_factor``) through the kept graph, clips, and steps its own optimizer (AdamW with linear
   warm-up and decay). ``grad_factor = 0`` (``freeze``) computes no transformer gradient at all.

spaCy's ``nlp.update`` calls ``finish_update`` on each component right after its own
``update`` — before the listeners downstream have run — so the transformer steps from
``receive_gradient`` instead, as spaCy's own tok2vec listeners do.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class OptimizerSettings:
    learn_rate: float
    warmup_steps: int = 0
    total_steps: int = 0  # 0: constant after warm-up
    weight_decay: float = 0.01
    grad_clip: float = 1.0


def linear_schedule(warmup: int, total: int) -> Callable[[int], float]:
    """Linear warm-up to the learning rate, then linear decay to 0 at ``total`` (if set)."""

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if total and total > warmup:
            return max(0.0, (total - step) / (total - warmup))
        return 1.0

    return factor


class TorchOptimizer:
    """AdamW + schedule + clipping over one set of parameters."""

    def __init__(self, params: list[torch.nn.Parameter], settings: OptimizerSettings) -> None:
        self.params = [p for p in params if p.requires_grad]
        self.settings = settings
        # The fused kernel (one pass over all parameters; CPU and CUDA) when every parameter
        # is a float tensor on one device: on a 2-core CPU it makes the transformer's step
        # several times faster than the per-tensor loop. Same update rule.
        devices = {p.device for p in self.params}
        fused = (
            len(devices) == 1
            and next(iter(devices)).type in ("cpu", "cuda")
            and all(p.is_floating_point() for p in self.params)
        )
        self.optimizer = torch.optim.AdamW(
            self.params,
            lr=settings.learn_rate,
            weight_decay=settings.weight_decay,
            fused=True if fused else None,
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, linear_schedule(settings.warmup_steps, settings.total_steps)
        )
        self.steps = 0

    def step(self) -> float:
        """Clip, step, advance the schedule, zero the gradients; returns the gradient norm."""
        norm = 0.0
        if self.settings.grad_clip and self.settings.grad_clip > 0:
            norm = float(torch.nn.utils.clip_grad_norm_(self.params, self.settings.grad_clip))
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.steps += 1
        return norm if math.isfinite(norm) else float("nan")

    @property
    def learn_rate(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])


@dataclass
class PendingBackward:
    """One batch's transformer graph, waiting for its listeners' gradients."""

    docs: list[Any]
    rows: list[torch.Tensor]  # per doc, with graph
    waiting_for: set[str]
    received: set[str] = field(default_factory=set)
