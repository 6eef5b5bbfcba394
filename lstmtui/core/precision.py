"""Training precision: float32, or bfloat16 autocast where the hardware runs it natively.

Only the forward and backward products of a training step run in bfloat16; the weights, Adam's
moments, the loss, validation and generation stay float32, so a profile is the same either way.
"""

from __future__ import annotations

import contextlib

import torch

from lstmtui.core.config import PRECISIONS

__all__ = ["PRECISIONS", "autocast", "bf16_native"]


def bf16_native(device: torch.device | str) -> bool:
    """Whether ``device`` runs bfloat16 products natively (AVX512-BF16 or AMX on CPUs, Ampere+ GPUs)."""
    device = torch.device(device)
    try:
        if device.type == "cpu":
            return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
        if device.type == "cuda":
            return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    except (AttributeError, RuntimeError):  # builds without oneDNN or the private probe
        return False
    return False


def autocast(device: torch.device | str, precision: str) -> contextlib.AbstractContextManager:
    """The context a training forward pass runs in for ``precision`` on ``device``."""
    device = torch.device(device)
    if precision == "bf16" and device.type in ("cpu", "cuda"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
