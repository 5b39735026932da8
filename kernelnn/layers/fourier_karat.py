r"""Fourier-KArAt: Kolmogorov-Arnold attention, a learnable operator on attention logits in place of softmax.

Source: Maity, Hitsman, Li, Dutta, "Kolmogorov-Arnold Attention: Is Learnable Attention Better For Vision
Transformers?" (arXiv 2503.10632). Each row ``A_k`` (length ``N``) of a head's logits ``A = Q K^T / sqrt(d_h)``
goes through a KAN layer :math:`\hat\Phi: \mathbb{R}^N \to \mathbb{R}^r` of Fourier units, then a learnable
linear map :math:`W \in \mathbb{R}^{N \times r}` back to ``N`` weights (the paper's low-rank "modular" form, eq. 2
and section 4):

.. math::  \hat A_{kn} = \sum_p W_{np} \sum_q \phi_{pq}(A_{kq}), \qquad
           \phi_{pq}(x) = b(x)\, w_{pq} + \sum_{m=1}^{G} a_{pqm} \cos(m x) + b_{pqm} \sin(m x).

The same :math:`(\hat\Phi, W)` serves every row of a head; heads have their own. Defaults are the paper's:
``G = 3``, ``r = 12``, no base function (``b = 0``), no projection onto the simplex (it cost the authors 35
points of accuracy, their Table 17), so the weights are signed and unnormalised. The paper draws the Fourier
coefficients from ``N(0, 1)``; with ``N`` tokens that makes ``|phi|`` grow as ``sqrt(2 G N)``, so they are drawn
here with standard deviation ``1 / sqrt(2 G N)`` by default (``coefficient_std=1.0`` is the paper's); ``W`` (whose
initialisation the paper does not state) is uniform in ``+-1/sqrt(r)``, as ``nn.Linear``'s.

Parameters depend on ``N``: a Fourier-KArAt attention is built for one number of tokens.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from kernelnn.layers.input_checks import check_float_input, check_positive_ints
from kernelnn.registry import ACTIVATIONS, ATTENTIONS


@ATTENTIONS.register("fourier_karat")
class FourierKArAt(nn.Module):
    """Learnable attention scores, ``(batch, heads, N, N) -> (batch, heads, N, N)`` (see the module docstring).

    Parameters
    ----------
    heads : int
        Heads; each has its own operator.
    n_tokens : int
        ``N``, the length of a row of logits (tokens, including a class token).
    grid_size : int
        ``G``: frequencies ``1..G`` per unit.
    rank : int
        ``r``: width of the low-rank Fourier KAN layer.
    base_activation : str, optional
        ``b``: an activation name (``silu``, ``gelu``, ``identity``, ...) with a learnable weight per unit, or
        ``None`` (the paper's default: none).
    coefficient_std : float, optional
        Standard deviation of the initial Fourier coefficients (default ``1 / sqrt(2 G N)``).

    >>> scores = FourierKArAt(heads=2, n_tokens=5)
    >>> scores(torch.randn(3, 2, 5, 5)).shape
    torch.Size([3, 2, 5, 5])
    """

    def __init__(self, heads: int, n_tokens: int, grid_size: int = 3, rank: int = 12,
                 base_activation: str | None = None, coefficient_std: float | None = None) -> None:
        super().__init__()
        check_positive_ints("FourierKArAt", heads=heads, n_tokens=n_tokens, grid_size=grid_size, rank=rank)
        std = 1 / math.sqrt(2 * grid_size * n_tokens) if coefficient_std is None else coefficient_std
        if not (isinstance(std, (int, float)) and math.isfinite(std) and std > 0):
            raise ValueError(f"FourierKArAt: coefficient_std={coefficient_std!r} must be a positive number")
        self.heads, self.n_tokens, self.grid_size, self.rank = heads, n_tokens, grid_size, rank
        # (heads, N inputs q, 2G features [cos 1..G, sin 1..G], r outputs p)
        self.fourier = nn.Parameter(torch.randn(heads, n_tokens, 2 * grid_size, rank) * std)
        self.base_activation = (None if base_activation is None else
                                ACTIVATIONS.build(base_activation, owner="FourierKArAt", argument="base_activation"))
        self.base_weight = (None if base_activation is None else
                            nn.Parameter(torch.randn(heads, n_tokens, rank) / math.sqrt(n_tokens)))
        bound = 1 / math.sqrt(rank)
        self.mix = nn.Parameter(torch.empty(heads, n_tokens, rank).uniform_(-bound, bound))  # W: (heads, N, r)
        self.register_buffer("frequencies", torch.arange(1, grid_size + 1, dtype=torch.float32), persistent=False)

    def extra_repr(self) -> str:
        return (f"heads={self.heads}, n_tokens={self.n_tokens}, grid_size={self.grid_size}, rank={self.rank}, "
                f"base_activation={'none' if self.base_activation is None else type(self.base_activation).__name__}")

    def check_input(self, logits: torch.Tensor) -> None:
        check_float_input(logits, self, "FourierKArAt", "logits")
        shape = (self.heads, self.n_tokens, self.n_tokens)
        if logits.dim() != 4 or tuple(logits.shape[1:]) != shape:
            raise ValueError(f"FourierKArAt: logits must have shape (batch, {', '.join(map(str, shape))}) (built for "
                             f"heads={self.heads}, n_tokens={self.n_tokens}), got {tuple(logits.shape)}")

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        self.check_input(logits)
        dtype = logits.dtype
        angles = logits.unsqueeze(-1) * self.frequencies.to(dtype)  # (B, h, N, N, G)
        features = torch.cat([angles.cos(), angles.sin()], dim=-1).flatten(-2)  # (B, h, N, N 2G)
        rows = torch.einsum("bhkf,hfp->bhkp", features, self.fourier.to(dtype).flatten(1, 2))  # (B, h, N, r)
        if self.base_activation is not None:
            rows = rows + torch.einsum("bhkq,hqp->bhkp", self.base_activation(logits), self.base_weight.to(dtype))
        return torch.einsum("bhkp,hnp->bhkn", rows, self.mix.to(dtype))
