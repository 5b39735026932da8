r"""TruKAN: a Kolmogorov-Arnold layer on the truncated power basis.

Source: "TruKAN: Towards More Efficient Kolmogorov-Arnold Networks Using Truncated Power Functions". Each edge
function is a spline of order ``k`` written in the truncated power basis

.. math::  \phi_{oi}(x) = \sum_{p=0}^{k} a_{oip}\, x^p + \sum_{j=1}^{n} c_{oij}\, (x - t_j)_+^k

(a polynomial term plus one truncated power per knot). Knots are ``shared`` per input (all outputs of input
``i`` use ``t_{i1} < ... < t_{in}``: the basis is computed once per input and the layer is one matmul) or
``individual`` per edge (``t_{oij}``: the truncated powers differ per edge and are summed in chunks of output
channels so memory stays bounded; slower, as the paper reports). Knots are fixed (uniform inside
``knot_range``) or learned; learned knots are ``t_j = low + (high - low) cumsum(softplus(r))_j / sum(softplus(r))``
over ``n + 1`` raw values, so they stay strictly ordered inside the range. Powers grow fast outside the range:
the paper pairs the layer with a LayerNorm before it (``layer_norm=True`` in :class:`kernelnn.models.KAN`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from kernelnn.layers.input_checks import check_float_tensor
from kernelnn.registry import NEURONS

CHUNK_ELEMENTS = 2**22  # elements of one (batch, outputs, inputs, knots) block for individual knots


def ordered_knots(raw_gaps: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Knots ``low + (high - low) cumsum(softplus(r))_j / sum(softplus(r))`` from ``n + 1`` raw gaps per row (last
    dim): strictly ordered inside ``(low, high)`` for any raw values."""
    gaps = F.softplus(raw_gaps)
    return low + (high - low) * gaps.cumsum(-1)[..., :-1] / gaps.sum(-1, keepdim=True)


def truncated_power_basis(x: torch.Tensor, knots: torch.Tensor, order: int) -> torch.Tensor:
    """``(..., in, order + 1 + n)``: ``x^0 .. x^k`` then ``(x - t_j)_+^k`` of ``x (..., in)``, knots ``(in, n)``."""
    x = x.unsqueeze(-1)
    powers = [x**p for p in range(order + 1)]
    shifted = F.relu(x - knots)
    truncated = (x > knots).to(x.dtype) if order == 0 else shifted if order == 1 else shifted**order
    return torch.cat([*powers, truncated], dim=-1)


@NEURONS.register("trukan")
class TruKANLinear(nn.Module):
    """TruKAN layer: ``(..., in_features) -> (..., out_features)`` (see the module docstring).

    Parameters
    ----------
    in_features, out_features : int
    order : int
        Spline order ``k`` (polynomial degree and truncated-power exponent), ``>= 0`` (``>= 1`` to learn knots).
    n_knots : int
        Knots per input (``shared``) or per edge (``individual``).
    knots : str
        ``"shared"`` or ``"individual"``.
    learn_knots : bool
        Learn the knot positions (ordered, inside ``knot_range``).
    knot_range : (float, float)
        Where the knots live; inputs are expected mostly inside it.

    Example
    -------
    >>> layer = TruKANLinear(4, 3, order=3, n_knots=6)
    >>> layer(torch.rand(10, 4)).shape
    torch.Size([10, 3])
    """

    def __init__(self, in_features: int, out_features: int, order: int = 3, n_knots: int = 6,
                 knots: str = "shared", learn_knots: bool = False, knot_range: Sequence[float] = (-1.0, 1.0),
                 chunk_elements: int = CHUNK_ELEMENTS) -> None:
        super().__init__()
        for arg, value in (("in_features", in_features), ("out_features", out_features), ("n_knots", n_knots)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"TruKANLinear: {arg}={value!r} must be a positive int")
        if isinstance(order, bool) or not isinstance(order, int) or order < 0:
            raise ValueError(f"TruKANLinear: order={order!r} must be an int >= 0")
        if knots not in ("shared", "individual"):
            raise ValueError(f"TruKANLinear: knots={knots!r} must be 'shared' or 'individual'")
        if learn_knots and order == 0:
            raise ValueError("TruKANLinear: learn_knots=True needs order >= 1 ((x - t)_+^0 is a step: no gradient "
                             "reaches t)")
        low, high = (float(v) for v in knot_range)
        if not high > low:
            raise ValueError(f"TruKANLinear: knot_range={tuple(knot_range)} must be (low, high) with low < high")
        self.in_features, self.out_features = in_features, out_features
        self.order, self.n_knots, self.knots, self.learn_knots = order, n_knots, knots, learn_knots
        self.knot_range = (low, high)
        self.chunk_elements = chunk_elements
        # Equal raw gaps: knots start uniform, low + (high - low) j / (n + 1).
        shape = (in_features, n_knots + 1) if knots == "shared" else (out_features, in_features, n_knots + 1)
        raw = torch.zeros(shape)
        if learn_knots:
            self.raw_gaps = nn.Parameter(raw)
        else:
            self.register_buffer("raw_gaps", raw)
        fan_in = in_features * (order + 1 + n_knots)
        bound = 1 / math.sqrt(fan_in)
        self.poly_weight = nn.Parameter(torch.empty(out_features, in_features, order + 1).uniform_(-bound, bound))
        self.trunc_weight = nn.Parameter(torch.empty(out_features, in_features, n_knots).uniform_(-bound, bound))

    def extra_repr(self) -> str:
        return (f"{self.in_features}, {self.out_features}, order={self.order}, n_knots={self.n_knots}, "
                f"knots={self.knots!r}, learn_knots={self.learn_knots}")

    def knot_positions(self) -> torch.Tensor:
        """Ordered knots inside ``knot_range``: ``(in, n)`` shared or ``(out, in, n)`` individual."""
        return ordered_knots(self.raw_gaps, *self.knot_range)

    def _truncated(self, x: torch.Tensor, knots: torch.Tensor) -> torch.Tensor:
        shifted = F.relu(x - knots)
        if self.order == 0:
            return (x > knots).to(x.dtype)
        return shifted if self.order == 1 else shifted**self.order

    def check_input(self, x: torch.Tensor) -> None:
        check_float_tensor(x, "TruKANLinear")
        if x.dim() < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"TruKANLinear: input must have shape (..., {self.in_features}), got {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        lead = x.shape[:-1]
        flat = x.reshape(-1, self.in_features)
        knots = self.knot_positions().to(flat.dtype)
        if self.knots == "shared":
            basis = truncated_power_basis(flat, knots, self.order)  # (N, in, k + 1 + n)
            weight = torch.cat([self.poly_weight, self.trunc_weight], dim=-1).to(basis.dtype)
            out = F.linear(basis.flatten(1), weight.flatten(1))
        else:
            powers = torch.stack([flat**p for p in range(self.order + 1)], dim=-1)  # (N, in, k + 1)
            out = F.linear(powers.flatten(1), self.poly_weight.to(powers.dtype).flatten(1))
            out = out + self._individual_truncated(flat, knots)
        return out.reshape(*lead, self.out_features)

    def _individual_truncated(self, flat: torch.Tensor, knots: torch.Tensor) -> torch.Tensor:
        """``sum_ij c_oij (x_i - t_oij)_+^k`` in blocks of outputs (each edge has its own knots); blocks are
        recomputed in backward (activation checkpointing), so memory stays at one block."""
        n, per_output = flat.shape[0], self.in_features * self.n_knots
        step = max(1, self.chunk_elements // max(1, n * per_output))
        weight = self.trunc_weight.to(flat.dtype)

        def block(inputs: torch.Tensor, knots_part: torch.Tensor, weight_part: torch.Tensor) -> torch.Tensor:
            terms = self._truncated(inputs[:, None, :, None], knots_part.unsqueeze(0))  # (N, c, in, n)
            return (terms * weight_part).sum(dim=(2, 3))

        parts = []
        for start in range(0, self.out_features, step):
            part = slice(start, start + step)
            if torch.is_grad_enabled():
                parts.append(checkpoint(block, flat, knots[part], weight[part], use_reentrant=False))
            else:
                parts.append(block(flat, knots[part], weight[part]))
        return torch.cat(parts, dim=1)

