r"""Radial functions of interatomic distances: a Bessel basis and a smooth polynomial cutoff.

``BesselBasis`` (Gasteiger et al., DimeNet, ICLR 2020; NequIP's default):
:math:`e_n(d) = \sqrt{2/r_c}\, \sin(n \pi d / r_c) / d`, ``n = 1..num_basis``.
``PolynomialCutoff`` (DimeNet's envelope): :math:`u(x) = 1 - \frac{(p+1)(p+2)}{2} x^p + p(p+2) x^{p+1}
- \frac{p(p+1)}{2} x^{p+2}` for :math:`x = d / r_c < 1`, else 0; it and its first two derivatives vanish at the
cutoff, so energies built on it are smooth when a neighbour crosses the cutoff (forces continuous).
"""

from __future__ import annotations

import math

import torch
from torch import nn


class BesselBasis(nn.Module):
    """``d (...,) -> (..., num_basis)``; ``trainable=True`` learns the frequencies (NequIP's option).

    Distances must be positive (the basis is divided by ``d``); callers replace self-pairs before calling.
    """

    def __init__(self, num_basis: int, cutoff: float, trainable: bool = False) -> None:
        super().__init__()
        if isinstance(num_basis, bool) or not isinstance(num_basis, int) or num_basis < 1:
            raise ValueError(f"BesselBasis: num_basis={num_basis!r} must be a positive int")
        if not cutoff > 0:
            raise ValueError(f"BesselBasis: cutoff={cutoff!r} must be positive")
        self.cutoff = float(cutoff)
        frequencies = torch.arange(1, num_basis + 1, dtype=torch.get_default_dtype()) * math.pi
        self.frequencies = nn.Parameter(frequencies, requires_grad=trainable)

    def extra_repr(self) -> str:
        return f"num_basis={self.frequencies.numel()}, cutoff={self.cutoff}"

    def forward(self, d: torch.Tensor) -> torch.Tensor:
        d = d.unsqueeze(-1)
        return math.sqrt(2 / self.cutoff) * torch.sin(self.frequencies * d / self.cutoff) / d


class PolynomialCutoff(nn.Module):
    """``d (...,) -> (...,)``: 1 at ``d = 0``, falling smoothly to exactly 0 at and beyond ``cutoff``."""

    def __init__(self, cutoff: float, p: int = 6) -> None:
        super().__init__()
        if not cutoff > 0:
            raise ValueError(f"PolynomialCutoff: cutoff={cutoff!r} must be positive")
        if isinstance(p, bool) or not isinstance(p, int) or p < 1:
            raise ValueError(f"PolynomialCutoff: p={p!r} must be a positive int")
        self.cutoff, self.p = float(cutoff), p

    def extra_repr(self) -> str:
        return f"cutoff={self.cutoff}, p={self.p}"

    def forward(self, d: torch.Tensor) -> torch.Tensor:
        p, x = self.p, d / self.cutoff
        u = 1 - (p + 1) * (p + 2) / 2 * x**p + p * (p + 2) * x ** (p + 1) - p * (p + 1) / 2 * x ** (p + 2)
        return torch.where(x < 1, u, torch.zeros_like(u))
