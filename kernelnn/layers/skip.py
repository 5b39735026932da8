"""Skip connections of operator blocks: point-wise linear, identity, or soft gating (per-channel scale)."""

from __future__ import annotations

import torch
from torch import nn

from kernelnn.registry import Registry

SKIPS = Registry("skip connection")
_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}


class SoftGating(nn.Module):
    """``y = w * x (+ b)`` with one learnable weight per channel (initialised to 1) on ``(batch, C, *spatial)``."""

    def __init__(self, channels: int, dim: int, bias: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(1, channels, *([1] * dim)))
        self.bias = nn.Parameter(torch.zeros(1, channels, *([1] * dim))) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.weight * x
        return y if self.bias is None else y + self.bias


SKIPS.register("linear", lambda channels, dim: _CONV[dim](channels, channels, kernel_size=1))
SKIPS.register("identity", lambda channels, dim: nn.Identity())
SKIPS.register("soft-gating", lambda channels, dim: SoftGating(channels, dim))
