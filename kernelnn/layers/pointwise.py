"""Point-wise (channel) maps of fields: the same dense layer at every grid point, with a swappable neuron type."""

from __future__ import annotations

import torch
from torch import nn

from kernelnn.registry import NEURONS

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}


class ChannelsLast(nn.Module):
    """Apply a dense layer ``(..., C_in) -> (..., C_out)`` to the channels of a field ``(batch, C_in, *spatial)``."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x.movedim(1, -1)).movedim(-1, 1)


def pointwise(in_channels: int, out_channels: int, dim: int, neuron: str = "linear", owner: str = "",
              **neuron_options) -> nn.Module:
    """``(batch, in_channels, *spatial) -> (batch, out_channels, *spatial)``, one ``neuron`` layer per grid point.

    ``neuron`` is a name from :data:`kernelnn.registry.NEURONS` (``linear``, ``quadratic``, ...), built with
    ``neuron_options``; ``linear`` is a 1x1 convolution (the same map without moving the channel axis).
    """
    if neuron == "linear" and not neuron_options:
        return _CONV[dim](in_channels, out_channels, kernel_size=1)
    layer = NEURONS.build(neuron, in_channels, out_channels, owner=owner, argument="neuron", **neuron_options)
    return ChannelsLast(layer)
