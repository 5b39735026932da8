r"""The equivariant linear map between irreps features (e3nn's ``o3.Linear``): channels mixed within each irrep.

Every output term ``(mul_out, ir)`` is a sum over the input terms of the same irrep ``ir``:
:math:`z_{w} = \sum_{\text{terms}} \frac{1}{\sqrt{\sum \text{mul}_{in}}} \sum_u W_{uw}\, x_u` (e3nn's "element"
normalisation: the square root counts every input channel feeding the output term), plus a bias on scalar
(``0e``) outputs when ``biases=True``. Weights are one flat vector in e3nn's order (term pairs in input-major
order, each ``(mul_in, mul_out)`` row-major), drawn from :math:`\mathcal N(0, 1)`; the same weights give e3nn's
output (tested). Equivariant for any weights: a matrix acting on channels commutes with :math:`D_l`.

Source: Geiger and Smidt, "e3nn: Euclidean Neural Networks" (2022).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from kernelnn.layers.tensor_product import split_irreps
from kernelnn.o3.irreps import Irrep, Irreps


class IrrepsLinear(nn.Module):
    """Equivariant linear layer on irreps features (module docstring).

    Parameters
    ----------
    irreps_in, irreps_out : str or Irreps
    biases : bool
        A learnable bias on every ``0e`` output term (zeros at start).

    Shapes: ``(..., irreps_in.dim) -> (..., irreps_out.dim)``; an output irrep no input term has is zero.

    Example
    -------
    >>> lin = IrrepsLinear("8x0e + 4x1o", "16x0e + 2x1o + 1x2e")
    >>> lin(torch.randn(3, 20)).shape
    torch.Size([3, 27])
    """

    def __init__(self, irreps_in: Any, irreps_out: Any, biases: bool = False) -> None:
        super().__init__()
        self.irreps_in = Irreps(irreps_in, "irreps_in")
        self.irreps_out = Irreps(irreps_out, "irreps_out")
        self.paths = [(i, o) for i, (_, a) in enumerate(self.irreps_in) for o, (_, b) in enumerate(self.irreps_out)
                      if a == b]
        fan_in = [sum(self.irreps_in[i].mul for i, oo in self.paths if oo == o) for o in range(len(self.irreps_out))]
        self._scale = [1 / math.sqrt(fan_in[o]) if fan_in[o] else 0.0 for _, o in self.paths]
        self.weight_numel = sum(self.irreps_in[i].mul * self.irreps_out[o].mul for i, o in self.paths)
        self.weight = nn.Parameter(torch.randn(self.weight_numel))
        scalars = [o for o, (_, ir) in enumerate(self.irreps_out) if ir == Irrep(0, 1)] if biases else []
        self._bias_terms = scalars
        self.bias = nn.Parameter(torch.zeros(sum(self.irreps_out[o].mul for o in scalars))) if scalars else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() < 1 \
                or x.shape[-1] != self.irreps_in.dim:
            raise ValueError(f"IrrepsLinear: input must be a float tensor (..., {self.irreps_in.dim}) for "
                             f"{self.irreps_in}, got {getattr(x, 'dtype', type(x).__name__)} "
                             f"{tuple(getattr(x, 'shape', ()))}")
        lead = x.shape[:-1]
        if x.numel() == 0:
            return x.new_zeros(*lead, self.irreps_out.dim)
        parts = split_irreps(x.reshape(-1, self.irreps_in.dim), self.irreps_in)
        weights = self.weight.to(x.dtype).split([self.irreps_in[i].mul * self.irreps_out[o].mul
                                                 for i, o in self.paths])
        outputs: list[torch.Tensor | None] = [None] * len(self.irreps_out)
        for (i, o), w, scale in zip(self.paths, weights, self._scale, strict=True):
            y = torch.einsum("zui,uw->zwi", parts[i], w.reshape(self.irreps_in[i].mul, self.irreps_out[o].mul))
            y = y * scale
            outputs[o] = y if outputs[o] is None else outputs[o] + y
        z = x.reshape(-1, self.irreps_in.dim).shape[0]
        if self.bias is not None:
            biases = self.bias.to(x.dtype).split([self.irreps_out[o].mul for o in self._bias_terms])
            for o, b in zip(self._bias_terms, biases, strict=True):
                term = outputs[o] if outputs[o] is not None else x.new_zeros(z, self.irreps_out[o].mul, 1)
                outputs[o] = term + b[:, None]
        out = torch.cat([o_.reshape(z, -1) if o_ is not None else x.new_zeros(z, term.dim)
                         for o_, term in zip(outputs, self.irreps_out, strict=True)], dim=-1)
        return out.reshape(*lead, self.irreps_out.dim)

    def extra_repr(self) -> str:
        return f"{self.irreps_in} -> {self.irreps_out}, weight_numel={self.weight_numel}"
