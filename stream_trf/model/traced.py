"""The encoder as a TorchScript trace, for inference: a forward pass that never takes the GIL.

Why: the eager model runs its Python (Hugging Face's modules, masks, the dispatcher) between
every kernel, and needs the GIL for it. Beside a thread that runs Python (spaCy's tokenizer, the
wordpiecer, the alignment, serialization) each lane queues for the GIL dozens of times per
pass. ``python -m bench.experiments.gil_contention`` (2 cores, all-MiniLM-L6-v2, two lanes on
the library's sub-batches, the tokenizer running beside them): eager, 0.69-0.76 of the machine did work (1.68
cores busy, the rest waiting for the GIL); traced, 0.93-0.96 (1.95 cores). A traced module runs
its whole graph in C++ with the GIL released, so the Python beside it and the lanes share the
cores instead of taking turns. Alone it is also a few % faster (no per-operator Python).

A trace records the operators one example ran; anything the model decided in Python from that
example's values is frozen into it. The example therefore has padding (the mask path stays), and
the trace is checked against the eager model on two other shapes before it is used: any
difference, or an error, and the runner keeps the eager model (and says so in the log).

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

log = logging.getLogger(__name__)

TRACE_MODES = ("auto", "on", "off")

# (sequences, length, real lengths) of the example traced and of the shapes it is checked on.
_EXAMPLE = (4, 16, (16, 9, 3, 12))
_CHECKS = ((3, 23, (23, 5, 17)), (7, 9, (9, 9, 9, 1, 8, 2, 9)))
_TOLERANCE = 1e-4


class TracedEncoder:
    """``model(input_ids, attention_mask[, token_type_ids]).last_hidden_state``, traced.

    One trace per input signature: with token type ids, and without them (a model that takes
    them does not always mean zeros by their absence: GPT-2 adds the embedding of token 0)."""

    def __init__(self, modules: dict[bool, torch.jit.ScriptModule]) -> None:
        self.modules = modules

    def __call__(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        types = inputs.get("token_type_ids")
        module = self.modules[types is not None]
        args = [inputs["input_ids"], inputs["attention_mask"]]
        if types is not None:
            args.append(types)
        out: torch.Tensor = module(*args)
        return out


class _LastHiddenState(torch.nn.Module):
    """The model with positional inputs and one tensor out: what a trace can take."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        kwargs: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        out = self.model(**kwargs, return_dict=False)
        last: torch.Tensor = out[0]
        return last


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
    token type ids only when ``with_types``), or None when one cannot be trusted."""
    modules: dict[bool, torch.jit.ScriptModule] = {}
    for types in (False, True) if with_types else (False,):
        module = _trace_checked(model, vocab_size, pad_id, types, device)
        if module is None:
            return None
        modules[types] = module
    return TracedEncoder(modules)


def _trace_checked(
    model: torch.nn.Module, vocab_size: int, pad_id: int, types: bool, device: torch.device
) -> torch.jit.ScriptModule | None:
    wrapper = _LastHiddenState(model).eval()
    example = _inputs(_EXAMPLE, vocab_size, pad_id, types, seed=0)
    args = tuple(t.to(device) for t in example.values())
    try:
        with warnings.catch_warnings(), torch.inference_mode():
            # TracerWarnings name the Python decisions frozen in; the checks below judge them.
            warnings.simplefilter("ignore")
            module = torch.jit.trace(wrapper, args, check_trace=False)
            for k, shape in enumerate(_CHECKS, start=1):
                inputs = [
                    t.to(device) for t in _inputs(shape, vocab_size, pad_id, types, k).values()
                ]
                want = wrapper(*inputs)
                got = module(*inputs)
                real = inputs[1].bool()
                diff = float((want - got)[real].abs().max())
                scale = 1.0 + float(want[real].abs().max())
                if not diff <= _TOLERANCE * scale:
                    log.warning(
                        "trace: the traced model differs from the eager one by %.3g on a "
                        "(%d, %d) batch: running the eager model",
                        diff,
                        shape[0],
                        shape[1],
                    )
                    return None
    except Exception as err:  # any model the tracer cannot take runs eager, as before
        log.warning("trace: %s: %s; running the eager model", type(err).__name__, err)
        return None
    return module


__all__ = ["TRACE_MODES", "TracedEncoder", "trace_encoder"]
