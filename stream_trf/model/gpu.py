"""Device choice, and cupy living inside PyTorch's memory pool.

The 2019 library ran cupy and PyTorch side by side, each with its own caching allocator, and
the two caches fought over GPU memory until one ran out. Here cupy (when installed) allocates
through PyTorch's caching allocator.
Everything works without cupy and without a GPU.
"""

from __future__ import annotations

from typing import Any

import torch

_prefer_gpu = True  # automatic: use CUDA when present


def cuda_available() -> bool:
    return torch.cuda.is_available()


def prefer_gpu(gpu_id: int = 0) -> bool:
    """Use the GPU when there is one. Returns whether one will be used."""
    global _prefer_gpu
    _prefer_gpu = True
    if not cuda_available():
        return False
    torch.cuda.set_device(gpu_id)
    share_memory_pool_with_cupy()
    return True


def require_cpu() -> None:
    """Keep the transformer on the CPU even when a GPU is present."""
    global _prefer_gpu
    _prefer_gpu = False


def resolve_device(setting: str = "auto") -> torch.device:
    """``auto`` → the current CUDA device when present and preferred, else the CPU."""
    if setting == "auto":
        if _prefer_gpu and cuda_available():
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")
    device = torch.device(setting)
    if device.type == "cuda" and not cuda_available():
        from ..errors import StreamTrfError

        raise StreamTrfError(
            f"device={setting!r} asks for CUDA, but torch sees no GPU "
            f"(torch {torch.__version__}). Use device='auto' or 'cpu', or install a CUDA build of torch."
        )
    return device


def share_memory_pool_with_cupy() -> bool:
    """Route cupy's allocations through PyTorch's caching allocator. False without cupy."""
    try:
        import cupy  # noqa: F401
        from thinc.api import set_gpu_allocator
    except ImportError:
        return False
    set_gpu_allocator("pytorch")
    return True


def to_host(tensor: torch.Tensor) -> Any:
    """A float tensor as a numpy array on the host (float32 for half precisions)."""
    if tensor.dtype in (torch.float16, torch.bfloat16):
        tensor = tensor.float()
    return tensor.detach().cpu().numpy()
