"""Numeric precision of the transformer: fp32, int8 on CPU, fp16/bf16 on GPU.

Lower precision is opt-in and gated by fidelity, not by speed alone: ``stream-trf bench
--precisions`` compares doc vectors (cosine) and classifier labels with fp32 on real text.

int8 is PyTorch's dynamic quantization (weights int8, activations quantized on the fly) of the
encoder's Linear layers, with a configurable scheme: per-channel or per-tensor weight scales, and
name patterns of Linear layers to keep in float. **No scheme tried passes the fidelity gate**
(bench/results/int8-fidelity-cpu.json, 1,000 Debian descriptions): per-tensor is 2.26x faster
but flips 14 % of the classifier's labels; per-channel (the default here) 1.87x and 9 %; even
quantizing only Q/K/V keeps doc vectors within cosine 0.995 yet flips 4.3 %. int8 is therefore
opt-in, and loading it logs that it failed the gate.
"""

from __future__ import annotations

import fnmatch
import logging
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import StreamTrfError

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "int8", "fp16", "bf16")


class UnsupportedPrecision(StreamTrfError):
    """A precision this device cannot run (int8 is CPU-only here; fp16 needs a GPU)."""


@dataclass(frozen=True)
class Int8Scheme:
    """Which Linear layers become int8, and how their weights are scaled."""

    per_channel: bool = True
    keep_float: tuple[str, ...] = ()  # fnmatch patterns of module names left in fp32

    def describe(self) -> str:
        scale = "per-channel" if self.per_channel else "per-tensor"
        kept = ", ".join(self.keep_float) if self.keep_float else "none"
        return f"dynamic int8 ({scale} weights), Linear layers kept in fp32: {kept}"


# The fastest scheme of the study with per-channel scales (1.87x fp32 on a 2-core CPU); it does
# not pass the gate, and neither did any other.
INT8_DEFAULT = Int8Scheme(per_channel=True, keep_float=())


def quantizable_linears(model: torch.nn.Module, scheme: Int8Scheme) -> set[str]:
    names = set()
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and not any(
            fnmatch.fnmatchcase(name, p) for p in scheme.keep_float
        ):
            names.add(name)
    return names


def quantize_int8(model: torch.nn.Module, scheme: Int8Scheme = INT8_DEFAULT) -> torch.nn.Module:
    """A dynamically quantized copy of ``model`` (CPU)."""
    from torch.ao.quantization import (
        default_dynamic_qconfig,
        per_channel_dynamic_qconfig,
        quantize_dynamic,
    )

    qconfig = per_channel_dynamic_qconfig if scheme.per_channel else default_dynamic_qconfig
    spec: dict[str, Any] = {name: qconfig for name in quantizable_linears(model, scheme)}
    return quantize_dynamic(model, qconfig_spec=spec, dtype=torch.qint8, inplace=False)


def apply_precision(
    model: torch.nn.Module,
    precision: str,
    device: torch.device,
    scheme: Int8Scheme = INT8_DEFAULT,
) -> torch.nn.Module:
    """``model`` at ``precision`` on ``device`` (inference only for int8)."""
    if precision not in PRECISIONS:
        raise UnsupportedPrecision(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "fp32":
        return model
    if precision == "int8":
        if device.type != "cpu":
            raise UnsupportedPrecision("int8 (dynamic quantization) runs on the CPU only")
        log.warning(
            "precision int8 (%s) failed this project's fidelity gate on real text: about 9 %% "
            "of classifier labels change; see bench/results/int8-fidelity-cpu.json",
            scheme.describe(),
        )
        return quantize_int8(model, scheme)
    if precision == "fp16" and device.type != "cuda":
        raise UnsupportedPrecision("fp16 needs a GPU; on a CPU use fp32 or int8")
    return model.to(torch.float16 if precision == "fp16" else torch.bfloat16)
