r"""Learnable feature grids: features stored at the nodes of dense grids at several resolutions, read at any point
by (bi/tri)linear interpolation. The "low-resolution feature grids" that Gaussian RBFNet's RBF layer reads (Bouzidi,
Laga & Wannous 2025, from Factor Fields' DiF-Grid) and the grid-based half of NeuRBF's hybrid (Chen et al. 2023,
there a hash grid).

Points are ``(..., d)`` coordinates in ``[-1, 1]^d`` (``d`` = 1, 2 or 3), coordinate ``i`` along grid axis ``i``;
``-1`` and ``1`` are the first and last nodes (``align_corners=True``). Level ``l`` has ``resolutions[l]`` nodes
per axis and ``channels[l]`` features; the levels' features are concatenated.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from kernelnn.layers.input_checks import check_float_input, check_positive_ints


def check_box(x: torch.Tensor, owner: str, dim: int, argument: str = "input") -> None:
    """``x`` is ``(..., dim)`` with every coordinate in ``[-1, 1]`` (the value check is skipped while compiling)."""
    if x.dim() < 1 or x.shape[-1] != dim:
        raise ValueError(f"{owner}: {argument} must have shape (..., {dim}), coordinates in [-1, 1], "
                         f"got {tuple(x.shape)}")
    if torch.compiler.is_compiling() or x.numel() == 0:
        return
    bad = ~(x.abs() <= 1)  # NaN is outside too
    if bad.any():
        value = x[bad][0].item()
        raise ValueError(f"{owner}: {argument} coordinate {value:g} is outside the domain [-1, 1]^{dim} the field "
                         f"is built on ({int(bad.any(-1).sum())} of {x[..., 0].numel()} points); rescale the "
                         "coordinates")


class FeatureGrid(nn.Module):
    """Multi-resolution dense feature grids: ``(..., d)`` in ``[-1, 1]^d -> (..., sum(channels))``.

    Parameters
    ----------
    dim : int
        Coordinate dimension ``d`` (1, 2 or 3).
    resolutions : sequence of int
        Nodes per axis of each level (at least 2).
    channels : int or sequence of int
        Features per level (one int: the same for every level).
    init_std : float
        Features start as ``N(0, init_std^2)``.
    owner, prefix : str
        How errors name the layer and its arguments (a field that builds its grid from ``grid_resolutions`` passes
        its own name and ``"grid_"``).
    """

    input_bounds = (-1.0, 1.0)  # the domain its coordinates must lie in (tests draw inputs from it)

    def __init__(self, dim: int, resolutions: Sequence[int] = (32, 64, 128), channels: int | Sequence[int] = 4,
                 init_std: float = 0.1, owner: str = "FeatureGrid", prefix: str = "") -> None:
        super().__init__()
        if dim not in (1, 2, 3):
            raise ValueError(f"{owner}: dim={dim!r} must be 1, 2 or 3")
        resolutions = [resolutions] if isinstance(resolutions, int) else list(resolutions)
        channels = [channels] * len(resolutions) if isinstance(channels, int) else list(channels)
        if not resolutions or len(channels) != len(resolutions):
            raise ValueError(f"{owner}: {prefix}resolutions={resolutions} and {prefix}channels={channels} must be "
                             "non-empty and of equal length")
        check_positive_ints(owner, **{f"{prefix}channels[{i}]": c for i, c in enumerate(channels)},
                            **{f"{prefix}resolutions[{i}]": r for i, r in enumerate(resolutions)})
        if min(resolutions) < 2:
            raise ValueError(f"{owner}: {prefix}resolutions={resolutions}; every level needs at least 2 nodes per "
                             "axis")
        self.dim, self.resolutions, self.channels = dim, resolutions, channels
        self.out_features = sum(channels)
        # grid_sample reads 2-D and 3-D grids; a 1-D grid is a 2-D grid of height 1.
        self.levels = nn.ParameterList(
            nn.Parameter(torch.randn(1, c, *([r] * max(dim, 2) if dim > 1 else [1, r])) * init_std)
            for r, c in zip(resolutions, channels, strict=True))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, resolutions={self.resolutions}, channels={self.channels}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_float_input(x, self, "FeatureGrid")
        check_box(x, "FeatureGrid", self.dim)
        lead = x.shape[:-1]
        points = x.reshape(-1, self.dim)
        # grid_sample's last axis is (x, y[, z]) = (last grid axis, ..., first): coordinate i reads grid axis i.
        grid = points.flip(-1) if self.dim > 1 else torch.cat([points, torch.zeros_like(points)], -1)
        grid = grid.reshape(1, -1, *[1] * (max(self.dim, 2) - 1), max(self.dim, 2))
        features = [F.grid_sample(level, grid.to(level.dtype), mode="bilinear", padding_mode="border",
                                  align_corners=True).reshape(level.shape[1], -1) for level in self.levels]
        return torch.cat(features, 0).T.reshape(*lead, self.out_features)
