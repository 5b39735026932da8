r"""Attention as an integral over the domain (Berner, Liu-Schiaffini, Kossaifi et al. 2025, "Principled approaches
for extending neural architectures to function spaces"): for a field :math:`v` on a domain :math:`D`,

.. math::  (\mathcal{A} v)(x) = \frac{\int_D \exp(\langle q(x), k(y)\rangle / \sqrt{d})\, u(y)\, dy}
                                     {\int_D \exp(\langle q(x), k(y)\rangle / \sqrt{d})\, dy},

with point-wise linear queries, keys and values, several heads, and a point-wise output map. Both integrals use
the same quadrature ``w_y``, so the discretised softmax has logits ``q.k / sqrt(d) + log w_y``: on a uniform grid
the weights cancel (it is ordinary attention over the grid points), on a non-uniform one (latitudes on a sphere,
a graded mesh) they do not. Either way the output converges as the grid is refined, rather than depending on the
number of points; tests/layers/test_function_attention.py measures it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from kernelnn.layers.input_checks import check_dtype_matches, check_float_tensor, check_positive_ints
from kernelnn.registry import SKIPS


@SKIPS.register("attention")
class FunctionAttention(nn.Module):
    """Multi-head attention over the points of a field ``(batch, C, *spatial) -> (batch, C, *spatial)``.

    Parameters
    ----------
    channels : int
        Channels ``C`` of the field (in and out).
    dim : int
        Spatial dims.
    heads : int
        Attention heads; ``head_channels`` per head (default ``C // heads``, at least 1).
    head_channels : int, optional
        Channels of each head's queries, keys and values.

    ``forward(v, quadrature=None)``: ``quadrature`` holds the weights ``w_y`` of the grid's points, shape
    ``spatial`` (positive; their scale does not matter); ``None`` is the uniform grid.

    As ``model.skip=attention`` it is the ``W`` of every FNO block, ``v <- act(K v + A v)``: a global, non-local
    path beside the spectral one. Memory grows as ``(points)^2`` per head (no approximation).
    """

    def __init__(self, channels: int, dim: int, heads: int = 4, head_channels: int | None = None) -> None:
        super().__init__()
        check_positive_ints("FunctionAttention", channels=channels, dim=dim, heads=heads)
        head_channels = head_channels or max(1, channels // heads)
        self.channels, self.dim, self.heads, self.head_channels = channels, dim, heads, head_channels
        self.qkv = nn.Linear(channels, 3 * heads * head_channels)
        self.out = nn.Linear(heads * head_channels, channels)

    def extra_repr(self) -> str:
        return f"{self.channels}, dim={self.dim}, heads={self.heads}, head_channels={self.head_channels}"

    def check_input(self, v: torch.Tensor, quadrature: torch.Tensor | None = None) -> None:
        check_float_tensor(v, "FunctionAttention")
        if v.dim() != self.dim + 2 or v.shape[1] != self.channels:
            raise ValueError(f"FunctionAttention: input must have shape (batch, {self.channels}, "
                             f"{', '.join('n' * self.dim)}), got {tuple(v.shape)}")
        check_dtype_matches(v, self, "FunctionAttention")
        if quadrature is not None and (not isinstance(quadrature, torch.Tensor) or quadrature.shape != v.shape[2:]
                                       or not bool((quadrature > 0).all())):
            raise ValueError(f"FunctionAttention: quadrature must be positive weights of shape {tuple(v.shape[2:])}, "
                             f"got {getattr(quadrature, 'shape', quadrature)}")

    def forward(self, v: torch.Tensor, quadrature: torch.Tensor | None = None) -> torch.Tensor:
        self.check_input(v, quadrature)
        spatial = v.shape[2:]
        points = v.flatten(2).transpose(1, 2)  # (B, N, C)
        q, k, u = self.qkv(points).unflatten(-1, (3, self.heads, self.head_channels)).permute(2, 0, 3, 1, 4)
        bias = None
        if quadrature is not None:  # log w_y on the logits: the same quadrature in numerator and denominator
            bias = quadrature.flatten().log().to(q.dtype).expand(q.shape[2], -1)
        out = F.scaled_dot_product_attention(q, k, u, attn_mask=bias, scale=1 / math.sqrt(self.head_channels))
        out = self.out(out.transpose(1, 2).flatten(2))  # (B, N, C)
        return out.transpose(1, 2).unflatten(2, spatial)
