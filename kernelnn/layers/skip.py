"""Skip connections of operator blocks: point-wise linear, identity, or soft gating (per-channel scale)."""

from __future__ import annotations

import torch
from torch import nn

from kernelnn.layers import checked
from kernelnn.layers.input_checks import check_float_tensor
from kernelnn.registry import SKIPS

_CONV = {1: checked.Conv1d, 2: checked.Conv2d, 3: checked.Conv3d}  # torch's, with kernelnn's input check


@SKIPS.register("soft-gating")
class SoftGating(nn.Module):
    """``y = w * x (+ b)`` with one learnable weight per channel (initialised to 1) on ``(batch, C, *spatial)``."""

    def __init__(self, channels: int, dim: int, bias: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(1, channels, *([1] * dim)))
        self.bias = nn.Parameter(torch.zeros(1, channels, *([1] * dim))) if bias else None

    def check_input(self, x: torch.Tensor) -> None:
        check_float_tensor(x, "SoftGating")
        channels, dim = self.weight.shape[1], self.weight.dim() - 2
        if x.dim() != dim + 2 or x.shape[1] != channels:
            raise ValueError(f"SoftGating: input must have shape (batch, {channels}, {', '.join('n' * dim)}), got "
                             f"{tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        y = self.weight * x
        return y if self.bias is None else y + self.bias


@SKIPS.register("linear")
def linear_skip(channels: int, dim: int) -> nn.Module:
    """A point-wise linear map, ``nn.Conv{dim}d`` with a 1x1 kernel."""
    return _CONV[dim](channels, channels, kernel_size=1)


@SKIPS.register("identity")
def identity_skip(channels: int, dim: int) -> nn.Module:
    return checked.Identity()
