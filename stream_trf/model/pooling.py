"""Padded sequences reduced to what pooled outputs keep, on the model's device.

One function for the eager path (``runner._pooled_arrays``) and the traced one
(``traced._PooledRows``, the same operators recorded into the trace).
"""

from __future__ import annotations

import torch


def pool_padded(
    x: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded rows ``x`` (n, length, width) under their padding ``mask`` (n, length):
    each sequence's sum of its real rows (one batched matrix product; padding weighs 0), its
    first row and its last real row. Half precisions are summed in float32 (a sum of hundreds
    of fp16 rows loses digits). Copies (clone, gather): a view would keep the whole padded
    output alive."""
    if x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()
    sums = torch.bmm(mask.to(x.dtype).unsqueeze(1), x).squeeze(1)
    first = x[:, 0].clone()
    final = x[torch.arange(x.shape[0], device=x.device), mask.sum(1) - 1]
    return sums, first, final
