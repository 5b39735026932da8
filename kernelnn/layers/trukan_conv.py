"""TruKAN convolutions: a TruKAN layer (:class:`~kernelnn.layers.TruKANLinear`, shared knots) applied to every
patch, as :class:`~kernelnn.layers.KANConv2d` is for B-splines.

Edge ``(o, c, tap)`` is a spline of order ``k`` in the truncated power basis of the pixel of channel ``c`` at that
tap: ``sum_p a x^p + sum_j w (x - t_{cj})_+^k``. The knots ``t_c`` belong to the input channel, shared by all
its taps and outputs (translation invariance), so the basis is computed once per pixel and the layer is one
ordinary convolution of the ``C (k + 1 + n)`` basis channels: exactly a TruKAN on the flattened padded patch.
Fixed knots are uniform inside ``knot_range``; learned ones stay ordered inside it.

Shapes: ``(batch, in_channels, *spatial) -> (batch, out_channels, *spatial_out)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from kernelnn.layers.conv_args import check_padding_mode, int_tuple, pad
from kernelnn.layers.input_checks import check_float_tensor, check_interval
from kernelnn.layers.trukan import ordered_knots, truncated_power_basis
from kernelnn.registry import CONVOLUTIONS

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


class TruKANConv(nn.Module):
    """A TruKAN applied to every patch; use :class:`TruKANConv1d`, ``2d`` or ``3d``. Arguments as
    :class:`torch.nn.Conv2d` (``stride``, ``padding``, ``dilation``, ``groups``, ``padding_mode``) plus
    :class:`~kernelnn.layers.TruKANLinear`'s (``order``, ``n_knots``, ``learn_knots``, ``knot_range``); no bias
    (the polynomial terms carry constants).

    >>> conv = TruKANConv2d(3, 8, 3, padding=1)
    >>> conv(torch.randn(2, 3, 16, 16)).shape
    torch.Size([2, 8, 16, 16])
    """

    dim: int = 2

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | Sequence[int], stride=1,
                 padding=0, dilation=1, groups: int = 1, padding_mode: str = "zeros", order: int = 3,
                 n_knots: int = 6, learn_knots: bool = False, knot_range: Sequence[float] = (-1.0, 1.0)) -> None:
        super().__init__()
        name = type(self).__name__
        for arg, value in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups),
                           ("n_knots", n_knots)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: {arg}={value!r} must be a positive int")
        if isinstance(order, bool) or not isinstance(order, int) or order < 0:
            raise ValueError(f"{name}: order={order!r} must be an int >= 0")
        if learn_knots and order == 0:
            raise ValueError(f"{name}: learn_knots=True needs order >= 1 ((x - t)_+^0 is a step: no gradient "
                             "reaches t)")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{name}: in_channels={in_channels} and out_channels={out_channels} must be divisible "
                             f"by groups={groups}")
        low, high = check_interval(name, "knot_range", knot_range)
        check_padding_mode(padding_mode, name)
        d = self.dim
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = int_tuple(kernel_size, d, "kernel_size", name, minimum=1)
        self.stride = int_tuple(stride, d, "stride", name, minimum=1)
        self.dilation = int_tuple(dilation, d, "dilation", name, minimum=1)
        self.padding = int_tuple(padding, d, "padding", name, minimum=0)
        self.padding_mode = padding_mode
        self.order, self.n_knots, self.learn_knots, self.knot_range = order, n_knots, learn_knots, (low, high)
        raw = torch.zeros(in_channels, n_knots + 1)  # equal gaps: uniform knots
        if learn_knots:
            self.raw_gaps = nn.Parameter(raw)
        else:
            self.register_buffer("raw_gaps", raw)
        n_basis = order + 1 + n_knots
        bound = 1 / math.sqrt(in_channels // groups * n_basis * math.prod(self.kernel_size))  # TruKANLinear's
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, n_basis, *self.kernel_size)
                                   .uniform_(-bound, bound))

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"order={self.order}, n_knots={self.n_knots}, learn_knots={self.learn_knots}")

    def knot_positions(self) -> torch.Tensor:
        """``(in_channels, n_knots)``, ordered inside ``knot_range``."""
        return ordered_knots(self.raw_gaps, *self.knot_range)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        name = type(self).__name__
        check_float_tensor(x, name)
        if x.dim() != self.dim + 2 or x.shape[1] != self.in_channels:
            raise ValueError(f"{name}: input must have shape (batch, {self.in_channels}, "
                             f"{', '.join('n' * self.dim)}), got {tuple(x.shape)}")
        # Pad first, so padded pixels go through the edge functions like any other (a TruKAN on padded patches).
        xp = pad(x, [(p, p) for p in self.padding], self.padding_mode)
        basis = truncated_power_basis(xp.movedim(1, -1), self.knot_positions().to(x.dtype), self.order)
        basis = basis.flatten(-2).movedim(-1, 1)  # (N, C (k + 1 + n), *S): channel-major, as the weight
        weight = self.weight.to(basis.dtype).flatten(1, 2)
        return _CONV[self.dim](basis, weight, None, self.stride, 0, self.dilation, self.groups)


class TruKANConv1d(TruKANConv):
    dim = 1


class TruKANConv2d(TruKANConv):
    dim = 2


class TruKANConv3d(TruKANConv):
    dim = 3


@CONVOLUTIONS.register("trukan")
def trukan_conv(in_channels: int, out_channels: int, kernel_size, dim: int = 2, **args) -> TruKANConv:
    """A TruKAN convolution of ``dim`` spatial dims, for ``model.conv=trukan``."""
    return {1: TruKANConv1d, 2: TruKANConv2d, 3: TruKANConv3d}[dim](in_channels, out_channels, kernel_size, **args)
