"""Numeric precision of the transformer: fp32, int8 on CPU, fp16/bf16 on GPU.

Lower precision is opt-in and gated by fidelity, not by speed alone: ``stream-trf bench
--precisions`` compares doc vectors (cosine) and classifier labels with fp32 on real text.

int8 is PyTorch's dynamic quantization (weights int8, activations quantized on the fly) of the
encoder's Linear layers, with a configurable scheme: per-channel or per-tensor weight scales,
name patterns of Linear layers to keep in float, and optional SmoothQuant smoothing calibrated on
real text. Torch's dynamic Linear quantizes each activation tensor with one 7-bit scale
(reduce_range), so a few outlier channels cost the others their resolution: that is what
smoothing addresses. **No scheme tried passes the fidelity gate**: each changes too many of the
classifier's labels (docs/decisions/int8.md). int8 is therefore opt-in, and loading it logs that
it failed the gate.
"""

from __future__ import annotations

import copy
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
    """Which Linear layers become int8, how their weights are scaled, and whether activation
    outliers are first migrated into the weights (``smooth_alpha``, SmoothQuant; needs
    calibration text)."""

    per_channel: bool = True
    keep_float: tuple[str, ...] = ()  # fnmatch patterns of module names left in fp32
    smooth_alpha: float | None = None  # SmoothQuant migration strength; None = no smoothing

    def describe(self) -> str:
        scale = "per-channel" if self.per_channel else "per-tensor"
        kept = ", ".join(self.keep_float) if self.keep_float else "none"
        smooth = f", SmoothQuant alpha {self.smooth_alpha}" if self.smooth_alpha is not None else ""
        return f"dynamic int8 ({scale} weights{smooth}), Linear layers kept in fp32: {kept}"


# The fastest per-channel scheme that needs no calibration; it does not pass the gate, and
# neither did any other.
INT8_DEFAULT = Int8Scheme(per_channel=True, keep_float=())


def quantizable_linears(model: torch.nn.Module, scheme: Int8Scheme) -> set[str]:
    names = set()
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and not any(
            fnmatch.fnmatchcase(name, p) for p in scheme.keep_float
        ):
            names.add(name)
    return names


class MissingCalibration(StreamTrfError):
    """An int8 scheme with SmoothQuant smoothing was asked for without calibration ranges."""


class SmoothedLinear(torch.nn.Module):
    """``linear`` with its input divided by ``scale`` per channel and its weight columns
    multiplied by it: the same function, with the activations' outlier channels moved into the
    weights, where per-channel int8 scales absorb them (SmoothQuant, Xiao et al. 2023). Dynamic
    int8 quantizes each activation tensor with one scale, so a few outlier channels otherwise
    cost every other channel its resolution."""

    inv_scale: torch.Tensor

    def __init__(self, linear: torch.nn.Linear, scale: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("inv_scale", (1.0 / scale).to(linear.weight.dtype))
        self.linear = torch.nn.Linear(
            linear.in_features, linear.out_features, bias=linear.bias is not None
        )
        with torch.no_grad():
            self.linear.weight.copy_(linear.weight * scale[None, :])
            if linear.bias is not None:
                self.linear.bias.copy_(linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x * self.inv_scale)


class ActivationRanges:
    """Per input channel, the largest |activation| each Linear layer saw while attached: the
    calibration SmoothQuant needs. Use as a context manager around fp32 runs of real text."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        self.ranges: dict[str, torch.Tensor] = {}
        self._hooks: list[Any] = []

    def __enter__(self) -> ActivationRanges:
        for name, module in self.model.named_modules():
            if isinstance(module, torch.nn.Linear):
                self._hooks.append(module.register_forward_pre_hook(self._hook(name)))
        return self

    def _hook(self, name: str) -> Any:
        def record(_module: torch.nn.Module, args: tuple[Any, ...]) -> None:
            x = args[0].detach()
            amax = x.abs().reshape(-1, x.shape[-1]).amax(dim=0).float()
            seen = self.ranges.get(name)
            self.ranges[name] = amax if seen is None else torch.maximum(seen, amax)

        return record

    def __exit__(self, *exc: Any) -> None:
        for h in self._hooks:
            h.remove()
        self._hooks.clear()


def smooth_linears(
    model: torch.nn.Module, ranges: dict[str, torch.Tensor], alpha: float, names: set[str]
) -> dict[str, str]:
    """Replace each Linear in ``names`` by a ``SmoothedLinear`` (in place) with
    s = max|x|^alpha / max|w|^(1 - alpha) per input channel; returns old name → new name of
    the Linear to quantize."""
    renamed = {}
    for name in sorted(names):
        if name not in ranges:
            raise MissingCalibration(f"no calibration range for Linear layer {name!r}")
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        linear = getattr(parent, child)
        wmax = linear.weight.detach().abs().amax(dim=0).float().clamp(min=1e-5)
        amax = ranges[name].to(wmax.device).clamp(min=1e-5)
        scale = (amax.pow(alpha) / wmax.pow(1.0 - alpha)).clamp(min=1e-5)
        setattr(parent, child, SmoothedLinear(linear, scale.to(linear.weight.device)))
        renamed[name] = f"{name}.linear"
    return renamed


def quantize_int8(
    model: torch.nn.Module,
    scheme: Int8Scheme = INT8_DEFAULT,
    ranges: dict[str, torch.Tensor] | None = None,
) -> torch.nn.Module:
    """A dynamically quantized copy of ``model`` (CPU). ``ranges`` (from ``ActivationRanges``
    on fp32 runs of real text) are required when the scheme smooths."""
    from torch.ao.quantization import (
        default_dynamic_qconfig,
        per_channel_dynamic_qconfig,
        quantize_dynamic,
    )

    qconfig = per_channel_dynamic_qconfig if scheme.per_channel else default_dynamic_qconfig
    names = quantizable_linears(model, scheme)
    if scheme.smooth_alpha is not None:
        if ranges is None:
            raise MissingCalibration(
                "SmoothQuant (smooth_alpha) needs activation ranges from calibration text"
            )
        model = copy.deepcopy(model)
        names = set(smooth_linears(model, ranges, scheme.smooth_alpha, names).values())
    spec: dict[str, Any] = {name: qconfig for name in names}
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
            "precision int8 (%s) failed this project's fidelity gate on real text: about 8 %% "
            "of classifier labels change; see bench/results/int8-fidelity-cpu.json",
            scheme.describe(),
        )
        return quantize_int8(model, scheme)
    if precision == "fp16" and device.type != "cuda":
        raise UnsupportedPrecision("fp16 needs a GPU; on a CPU use fp32 or int8")
    return model.to(torch.float16 if precision == "fp16" else torch.bfloat16)
