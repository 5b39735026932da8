"""Apply a per-frame module to every frame of a ``(batch, time, ...)`` sequence (Keras' TimeDistributed)."""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn


class TimeDistributed(nn.Module):
    """``module`` on every frame: ``(batch, time, *frame) -> (batch, time, *module(frame))``, frames folded into
    the batch for one call.

    Example
    -------
    >>> conv = TimeDistributed(nn.Conv2d(1, 8, 3, padding=1))
    >>> conv(torch.randn(2, 5, 1, 16, 16)).shape
    torch.Size([2, 5, 8, 16, 16])
    """

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 3:
            raise ValueError(f"TimeDistributed({type(self.module).__name__}): input must be (batch, time, ...), "
                             f"got shape {tuple(x.shape)}")
        out = self.module(rearrange(x, "b t ... -> (b t) ..."))
        return out.reshape(x.shape[0], x.shape[1], *out.shape[1:])  # not einops: it divides by b, 0 when empty
