"""MgNO (He, Liu, Xu, 2023): neural operator layers whose linear maps are multigrid V-cycles."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from kernelnn.layers.input_checks import check_dtype_matches
from kernelnn.layers.multigrid import MgConv, check_multigrid_input
from kernelnn.registry import ACTIVATIONS

_CONV = {1: nn.Conv1d, 2: nn.Conv2d}


class MgNO(nn.Module):
    r"""``n_layers`` of :math:`u \leftarrow \sigma(\mathrm{MgConv}(u) + W u + b)`, no lifting or projection.

    The first layer maps ``in_channels`` to ``hidden_channels``, the last maps to ``out_channels`` without an
    activation; :math:`W` is a point-wise linear map whose bias is MgNO's bias function. The official Darcy
    setting is 24 channels, 4 layers, 6 levels, smoothing ``(1, 1, 1, 1, 1, 2)`` and zero padding.

    Shapes
    ------
    ``(batch, in_channels, *spatial) -> (batch, out_channels, *spatial)``, each spatial size divisible by
    ``2 ** (levels - 1)``; ``dim`` is 1 or 2.
    """

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int = 24, n_layers: int = 4,
                 levels: int = 5, smoothing: int | Sequence[int] | None = None, dim: int = 2,
                 padding_mode: str = "zeros", activation: str = "gelu") -> None:
        super().__init__()
        if not isinstance(n_layers, int) or n_layers < 1:
            raise ValueError(f"MgNO: n_layers={n_layers!r} must be a positive int")
        if smoothing is None:
            smoothing = [1] * (levels - 1) + [2]
        widths = [in_channels] + [hidden_channels] * (n_layers - 1) + [out_channels]
        self.in_channels, self.out_channels, self.dim = in_channels, out_channels, dim
        self.mg = nn.ModuleList(MgConv(a, b, levels, smoothing, dim, padding_mode)
                                for a, b in zip(widths[:-1], widths[1:], strict=True))
        self.linear = nn.ModuleList(_CONV[dim](a, b, 1) for a, b in zip(widths[:-1], widths[1:], strict=True))
        self.activation = ACTIVATIONS.build(activation, owner="MgNO", argument="activation")

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ``TypeError``/``ValueError`` unless ``x`` is a float tensor ``(batch, in_channels, *spatial)``
        with each spatial size divisible by ``2 ** (levels - 1)``."""
        check_multigrid_input(x, self.in_channels, self.dim, self.mg[0].levels, "MgNO")
        check_dtype_matches(x, self, "MgNO")

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        self.check_input(u)
        for i, (mg, linear) in enumerate(zip(self.mg, self.linear, strict=True)):
            u = mg(u) + linear(u)
            if i < len(self.mg) - 1:
                u = self.activation(u)
        return u
