r"""Linear maps between channels that act on whole degrees: the equivariant "self-interaction".

Features are ``(..., channels, classes, (L+1)^2)`` (classes: the parity classes of
:class:`~kernelnn.layers.GauntTensorProduct` with ``parities="all"``, or one). Each (class, degree) has its own
``channels_in x channels_out`` matrix, shared by the ``2l + 1`` components of the degree, so the map commutes with
every rotation and inversion. Only invariant scalars (class 0, degree 0) get a bias: a bias on any other component
would not transform.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from kernelnn.layers.spherical_harmonics import degrees_of


class DegreeLinear(nn.Module):
    """``(..., in_channels, classes, (L+1)^2) -> (..., out_channels, classes, (L+1)^2)``.

    Weights start as ``randn / sqrt(in_channels)`` (unit-variance outputs for unit-variance inputs).
    """

    def __init__(self, L: int, in_channels: int, out_channels: int, classes: int = 1, bias: bool = True) -> None:
        super().__init__()
        for arg, value, low in (("L", L, 0), ("in_channels", in_channels, 1), ("out_channels", out_channels, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"DegreeLinear: {arg}={value!r} must be an int >= {low}")
        if classes not in (1, 2):
            raise ValueError(f"DegreeLinear: classes={classes!r} must be 1 or 2")
        self.L, self.in_channels, self.out_channels, self.classes = L, in_channels, out_channels, classes
        self.weight = nn.Parameter(torch.randn(classes, L + 1, out_channels, in_channels) / math.sqrt(in_channels))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.register_buffer("degrees", degrees_of(L), persistent=False)
        slot = torch.zeros(classes, (L + 1) ** 2)
        slot[0, 0] = 1.0
        self.register_buffer("scalar_slot", slot, persistent=False)  # where the bias goes

    def extra_repr(self) -> str:
        return (f"L={self.L}, in_channels={self.in_channels}, out_channels={self.out_channels}, "
                f"classes={self.classes}, bias={self.bias is not None}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        expected = (self.in_channels, self.classes, (self.L + 1) ** 2)
        if x.dim() < 3 or tuple(x.shape[-3:]) != expected:
            raise ValueError(f"DegreeLinear: input must have shape (..., {', '.join(map(str, expected))}) "
                             f"(channels, classes, (L+1)^2 with L={self.L}), got {tuple(x.shape)}")
        out = torch.einsum("...ckd,kdoc->...okd", x, self.weight[:, self.degrees])
        return out if self.bias is None else out + self.bias[:, None, None] * self.scalar_slot
