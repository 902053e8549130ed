"""Packed (padding-free) inference for BERT-family encoders.

Padding costs compute: every padded wordpiece goes through every Linear layer. Here the
sub-batch's sequences are concatenated into one ``(total, width)`` matrix, so each Linear and
LayerNorm — nearly all of the model's work — sees real wordpieces only. Attention runs within
each sequence:

* on CUDA through PyTorch's variable-length kernel (``scaled_dot_product_attention`` on a jagged
  nested tensor: flash or memory-efficient attention);
* elsewhere ("dense") by gathering each sequence's queries, keys and values into a padded
  ``(batch, heads, longest, size)`` block with a key mask, and scattering the context back. The
  jagged kernel has no fast CPU implementation, and padding inside attention only wastes little:
  attention is a small share of the work at sentence lengths.

Position ids restart at each sequence, so every row is what the model computes on that sequence
alone, as with right padding and an attention mask.

It reuses the Hugging Face module's own weights (no copy) and is checked against the padded
path in the tests. Other architectures, and requests for attention weights, use the padded path.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

IntArray = npt.NDArray[np.int64]

# Jagged nested tensors are a prototype API; their warning would repeat in every worker's log.
warnings.filterwarnings("ignore", message="The PyTorch API of nested tensors is in prototype")

_PACKABLE_TYPES = ("bert",)


def supports_packing(model: Any) -> bool:
    """Whether ``model`` has the BERT layout this module runs (BertModel and its clones)."""
    config = getattr(model, "config", None)
    if getattr(config, "model_type", None) not in _PACKABLE_TYPES:
        return False
    try:
        layer = model.encoder.layer[0]
        attn = layer.attention.self
        return all(
            hasattr(x, "weight")
            for x in (
                attn.query,
                attn.key,
                attn.value,
                layer.attention.output.dense,
                layer.intermediate.dense,
                layer.output.dense,
            )
        ) and hasattr(model, "embeddings")
    except (AttributeError, IndexError, TypeError):
        return False


class _Layout:
    """Where each sequence sits in the packed rows, in the form each attention kernel wants."""

    def __init__(self, lengths: list[int], device: torch.device, kernel: str) -> None:
        self.kernel = kernel
        self.total = int(sum(lengths))
        self.max_len = max(lengths)
        starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        self.offsets = torch.from_numpy(starts).to(device)
        if kernel == "dense":
            n = np.asarray(lengths, dtype=np.int64)
            position = np.arange(self.max_len, dtype=np.int64)[None, :]
            valid = position < n[:, None]
            # (batch, longest): the packed row of each position; padding points at row 0
            self.gather = torch.from_numpy(np.where(valid, starts[:-1, None] + position, 0)).to(
                device
            )
            self.valid = torch.from_numpy(valid).to(device)
            self.key_mask = self.valid[:, None, None, :]  # (batch, 1, 1, longest)


def _attention(layer: Any, hidden: torch.Tensor, layout: _Layout) -> torch.Tensor:
    """Multi-head self-attention within each sequence of the packed ``hidden``."""
    attn = layer.attention.self
    heads, size = attn.num_attention_heads, attn.attention_head_size
    total = layout.total

    if layout.kernel == "dense":

        def block(x: torch.Tensor) -> torch.Tensor:
            b, n = layout.gather.shape
            return x[layout.gather].view(b, n, heads, size).transpose(1, 2)

        q, k, v = block(attn.query(hidden)), block(attn.key(hidden)), block(attn.value(hidden))
        context = F.scaled_dot_product_attention(q, k, v, attn_mask=layout.key_mask)
        return context.transpose(1, 2)[layout.valid].reshape(total, heads * size)

    def jagged(x: torch.Tensor) -> torch.Tensor:
        nt = torch.nested.nested_tensor_from_jagged(
            x.view(total, heads, size), layout.offsets, max_seqlen=layout.max_len
        )
        return nt.transpose(1, 2)  # (batch, heads, jagged, size)

    q, k, v = jagged(attn.query(hidden)), jagged(attn.key(hidden)), jagged(attn.value(hidden))
    context = F.scaled_dot_product_attention(q, k, v)
    return context.transpose(1, 2).values().reshape(total, heads * size)


def _layer(layer: Any, hidden: torch.Tensor, layout: _Layout) -> torch.Tensor:
    context = _attention(layer, hidden, layout)
    out = layer.attention.output
    hidden = out.LayerNorm(out.dense(context) + hidden)
    inter = layer.intermediate.intermediate_act_fn(layer.intermediate.dense(hidden))
    return layer.output.LayerNorm(layer.output.dense(inter) + hidden)


def attention_kernel(device: torch.device) -> str:
    """ "jagged" (variable-length kernel) on CUDA, "dense" (padded inside attention) elsewhere."""
    return "jagged" if device.type == "cuda" else "dense"


def packed_forward(
    model: Any,
    ids: Sequence[IntArray],
    type_ids: Sequence[IntArray | None],
    device: torch.device,
    *,
    output_hidden_states: bool = False,
    kernel: str | None = None,
) -> tuple[torch.Tensor, list[torch.Tensor] | None, list[int]]:
    """Run ``model`` on the concatenated sequences, in inference mode.

    Returns the packed last hidden state ``(total, width)``, the packed per-layer hidden states
    (embeddings first) when asked, and the sequence lengths.
    """
    lengths = [len(x) for x in ids]
    flat = np.concatenate(ids).astype(np.int64, copy=False)
    types = np.concatenate(
        [t if t is not None else np.zeros(n, dtype=np.int64) for t, n in zip(type_ids, lengths)]
    ).astype(np.int64, copy=False)
    last, states = packed_forward_flat(
        model,
        flat,
        types,
        lengths,
        device,
        output_hidden_states=output_hidden_states,
        kernel=kernel,
    )
    return last, states, lengths


def packed_forward_flat(
    model: Any,
    ids: IntArray,
    type_ids: IntArray,
    lengths: list[int],
    device: torch.device,
    *,
    output_hidden_states: bool = False,
    kernel: str | None = None,
) -> tuple[torch.Tensor, list[torch.Tensor] | None]:
    """:func:`packed_forward` on sequences already end to end: ``ids`` and ``type_ids`` flat,
    ``lengths`` per sequence."""
    total = int(sum(lengths))
    n = np.asarray(lengths, dtype=np.int64)
    positions = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(n) - n, n)
    flat, types = ids, type_ids
    layout = _Layout(lengths, device, kernel or attention_kernel(device))
    hidden = model.embeddings(
        input_ids=torch.from_numpy(flat).to(device)[None],
        token_type_ids=torch.from_numpy(types).to(device)[None],
        position_ids=torch.from_numpy(positions).to(device)[None],
    )[0]
    states = [hidden] if output_hidden_states else None
    for layer in model.encoder.layer:
        hidden = _layer(layer, hidden, layout)
        if states is not None:
            states.append(hidden)
    return hidden, states
