"""The encoder as a TorchScript trace, for inference: a forward pass that never takes the GIL.

Why: the eager model runs its Python (Hugging Face's modules, masks, the dispatcher) between
every kernel, and needs the GIL for it. Beside a thread that runs Python (spaCy's tokenizer, the
wordpiecer, the alignment, serialization) each lane queues for the GIL dozens of times per
pass, and part of the machine waits. A traced module runs its whole graph in C++ with the GIL
released, so the Python beside it and the lanes share the cores instead of taking turns
(docs/decisions/tracing.md). Alone it is also a little faster (no per-operator Python).

A trace records the operators one example ran; anything the model decided in Python from that
example's values is frozen into it. The example therefore has padding (the mask path stays), and
the trace is checked against the eager model on two other shapes before it is used: any
difference, or an error, and the runner keeps the eager model (and says so in the log).

Two things the eager model recomputes on every pass are settled in the trace where the model
allows it. Where attention runs on PyTorch's fused kernel (``sdpa``), the padding mask goes in
already shaped for it, ``(n, 1, 1, length)``, which that kernel broadcasts: the model's own mask
builder (a dense ``(n, 1, length, length)`` mask, several kernels) is skipped, a sixth of a small
model's pass. Each trace is checked against the model with its ordinary 2-D mask, so a family
whose attention needs more (a causal one) simply keeps the ordinary mask. And for pooled
inference the reduction to row sums, first and last rows (``pooled``) is traced onto the
encoder's trace: one call, no Python between the pass and its pooled arrays.

The trace shares the model's parameters (in-place optimizer steps reach it); it is used for
inference only: training, hidden states, attention weights and the padding-free GPU path run
the eager model.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np
import torch

from .pooling import pool_padded

log = logging.getLogger(__name__)

TRACE_MODES = ("auto", "on", "off")

# (sequences, length, real lengths) of the example traced and of the shapes it is checked on.
_EXAMPLE = (4, 16, (16, 9, 3, 12))
_CHECKS = ((3, 23, (23, 5, 17)), (7, 9, (9, 9, 9, 1, 8, 2, 9)))
_TOLERANCE = 1e-4


class TracedEncoder:
    """``model(input_ids, attention_mask[, token_type_ids]).last_hidden_state``, traced, and
    the same reduced by :meth:`pooled`.

    One trace per input signature: with token type ids, and without them (a model that takes
    them does not always mean zeros by their absence: GPT-2 adds the embedding of token 0)."""

    def __init__(
        self,
        modules: dict[bool, torch.jit.ScriptModule],
        pooled: dict[bool, torch.jit.ScriptModule] | None = None,
        key_mask: dict[bool, bool] | None = None,
    ) -> None:
        self.modules = modules
        self.pooled_modules = pooled or {}
        # per signature: whether the trace takes the fused kernel's (n, 1, 1, length) mask
        self.key_mask = key_mask or dict.fromkeys(modules, False)

    def __call__(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        out: torch.Tensor = self.modules[_with_types(inputs)](*_args(inputs))
        return out

    def pooled(
        self, inputs: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """Each sequence's sum of its real rows, its first row and its last real row (float32),
        or None where the reduction has no trace of its own."""
        module = self.pooled_modules.get(_with_types(inputs))
        if module is None:
            return None
        sums, first, final = module(*_args(inputs))
        return sums, first, final


def _with_types(inputs: dict[str, torch.Tensor]) -> bool:
    return inputs.get("token_type_ids") is not None


def _args(inputs: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    args = [inputs["input_ids"], inputs["attention_mask"]]
    types = inputs.get("token_type_ids")
    if types is not None:
        args.append(types)
    return args


class _LastHiddenState(torch.nn.Module):
    """The model with positional inputs and one tensor out: what a trace can take.
    ``key_mask``: the padding mask handed over as ``(n, 1, 1, length)`` booleans, the shape the
    fused attention kernel broadcasts, instead of the 2-D mask the model expands itself."""

    def __init__(self, model: torch.nn.Module, key_mask: bool = False) -> None:
        super().__init__()
        self.model = model
        self.key_mask = key_mask

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        mask = attention_mask[:, None, None, :].bool() if self.key_mask else attention_mask
        kwargs: dict[str, Any] = {"input_ids": input_ids, "attention_mask": mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        out = self.model(**kwargs, return_dict=False)
        last: torch.Tensor = out[0]
        return last


class _PooledRows(torch.nn.Module):
    """A traced encoder's output reduced by ``pool_padded`` (model/pooling.py), recorded into
    the trace with it."""

    def __init__(self, encoder: torch.nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if token_type_ids is None:
            x = self.encoder(input_ids, attention_mask)
        else:
            x = self.encoder(input_ids, attention_mask, token_type_ids)
        return pool_padded(x, attention_mask)


def _inputs(
    shape: tuple[int, int, tuple[int, ...]], vocab: int, pad_id: int, with_types: bool, seed: int
) -> dict[str, torch.Tensor]:
    n, length, real = shape
    rng = np.random.default_rng(seed)
    # Ordinary ids: past the special tokens at the start of most vocabularies.
    low = min(1000, max(vocab // 2, 1))
    ids = rng.integers(low, max(vocab, low + 1), size=(n, length))
    mask = np.zeros((n, length), dtype=np.int64)
    for i, r in enumerate(real):
        mask[i, :r] = 1
        ids[i, r:] = pad_id
    inputs = {
        "input_ids": torch.from_numpy(ids.astype(np.int64)),
        "attention_mask": torch.from_numpy(mask),
    }
    if with_types:
        inputs["token_type_ids"] = torch.zeros((n, length), dtype=torch.int64)
    return inputs


def trace_encoder(
    model: torch.nn.Module,
    *,
    vocab_size: int,
    pad_id: int,
    with_types: bool,
    device: torch.device,
) -> TracedEncoder | None:
    """A checked trace of ``model`` (in eval mode) for each input signature it takes (with
    token type ids only when ``with_types``), each with its pooled reduction; None when the
    encoder's trace cannot be trusted (a pooled one that cannot is simply left out)."""
    modules: dict[bool, torch.jit.ScriptModule] = {}
    pooled: dict[bool, torch.jit.ScriptModule] = {}
    key_mask: dict[bool, bool] = {}
    fused = getattr(getattr(model, "config", None), "_attn_implementation", None) == "sdpa"
    for types in (False, True) if with_types else (False,):
        checks = _Checks(model, vocab_size, pad_id, types, device)
        module = None
        if fused:  # the kernel's own mask shape where the model takes it; else the ordinary
            module = _trace_checked(_LastHiddenState(model, key_mask=True), checks, quiet=True)
        key_mask[types] = module is not None
        if module is None:
            module = _trace_checked(_LastHiddenState(model), checks)
        if module is None:
            return None
        modules[types] = module
        reduced = _trace_pooled(module, checks)
        if reduced is not None:
            pooled[types] = reduced
    return TracedEncoder(modules, pooled, key_mask)


class _Checks:
    """The example a trace records and the inputs it is checked on, with what the model
    itself (its ordinary 2-D mask, eager) gives for them."""

    def __init__(
        self,
        model: torch.nn.Module,
        vocab_size: int,
        pad_id: int,
        types: bool,
        device: torch.device,
    ) -> None:
        def on_device(shape: tuple[int, int, tuple[int, ...]], seed: int) -> list[torch.Tensor]:
            return [t.to(device) for t in _inputs(shape, vocab_size, pad_id, types, seed).values()]

        self.example = tuple(on_device(_EXAMPLE, 0))
        self.inputs = [on_device(shape, k) for k, shape in enumerate(_CHECKS, start=1)]
        self.wanted: list[torch.Tensor] = []
        self.error: Exception | None = None
        plain = _LastHiddenState(model).eval()
        try:
            with torch.inference_mode():
                self.wanted = [plain(*inputs) for inputs in self.inputs]
        except Exception as err:  # the eager model fails too: nothing to trace
            self.error = err


def _trace_checked(
    wrapper: torch.nn.Module, checks: _Checks, *, quiet: bool = False
) -> torch.jit.ScriptModule | None:
    """``wrapper`` traced, if its trace gives the eager model's rows on the checks; otherwise
    None, said in the log (at debug level when ``quiet``: a first choice with a fallback)."""
    say = log.debug if quiet else log.warning
    if checks.error is not None:
        say("trace: %s: %s; running the eager model", type(checks.error).__name__, checks.error)
        return None
    try:
        with warnings.catch_warnings(), torch.inference_mode():
            # TracerWarnings name the Python decisions frozen in; the checks below judge them.
            warnings.simplefilter("ignore")
            module = torch.jit.trace(wrapper.eval(), checks.example, check_trace=False)
            for inputs, want in zip(checks.inputs, checks.wanted):
                got = module(*inputs)
                real = inputs[1].bool()
                diff = float((want - got)[real].abs().max())
                scale = 1.0 + float(want[real].abs().max())
                if not diff <= _TOLERANCE * scale:
                    say(
                        "trace: the traced model differs from the eager one by %.3g on a "
                        "(%d, %d) batch: running the eager model",
                        diff,
                        inputs[0].shape[0],
                        inputs[0].shape[1],
                    )
                    return None
    except Exception as err:  # any model the tracer cannot take runs eager, as before
        say("trace: %s: %s; running the eager model", type(err).__name__, err)
        return None
    return module


def _trace_pooled(
    encoder: torch.jit.ScriptModule, checks: _Checks
) -> torch.jit.ScriptModule | None:
    """The pooled reduction traced onto ``encoder``'s trace, checked against reducing the
    eager model's rows; None (pooled in Python instead) if it cannot be trusted."""
    try:
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")
            module = torch.jit.trace(_PooledRows(encoder).eval(), checks.example, check_trace=False)
            for inputs, want in zip(checks.inputs, checks.wanted):
                got = module(*inputs)
                for g, w in zip(got, pool_padded(want, inputs[1])):
                    if g.shape != w.shape or not torch.allclose(g, w, rtol=1e-4, atol=1e-4):
                        log.warning("trace: the pooled reduction differs; pooling in Python")
                        return None
    except Exception as err:
        log.warning(
            "trace: the pooled reduction: %s: %s; pooling in Python", type(err).__name__, err
        )
        return None
    return module


__all__ = ["TRACE_MODES", "TracedEncoder", "trace_encoder"]
