r"""Gaussian RBFNet: a neural field made of one layer of Gaussian RBF neurons reading low-resolution feature grids
(Bouzidi, Laga & Wannous, "Gaussian RBFNet: Gaussian radial basis functions for fast and accurate representation and
reconstruction of neural fields", 2025; the authors' code is ``AbdelazizBouzidi/GNF``, ``RBFDecoder``).

.. math::  h = G(x) \in \mathbb{R}^F, \qquad
           \phi_m(x) = \exp\!\bigl(-\tfrac12 (h - c_m)^\top P_m (h - c_m)\bigr), \qquad
           f(x) = W \phi(x) + b,

with ``G`` the multi-resolution feature grids (:class:`~kernelnn.layers.FeatureGrid`, bilinear reads), ``M``
Gaussian neurons each with its own centre ``c_m`` and shape ``P_m`` in feature space (diagonal, the authors'
choice, or full), and a linear head. The Gaussians replace the hidden layers of an MLP decoder: one layer of RBF
neurons is enough, so the field is cheap to train and to evaluate. As the authors: 64 kernels, six levels of 32 to
128 nodes with 4, 4, 4, 2, 2, 2 features, grid features standard normal, centres ``U(+-1e-4)``, unit precisions.
Unlike their DiF-Grid, a level is one grid over the domain, not tiled periodically across it (the tiling of their
stored code repeats every level once per node), so at equal size this field has coarser grids than theirs.

The quadratic forms go through :class:`~kernelnn.layers.RBFLayer` (distance expansion, no ``(points, kernels,
features)`` tensor). Points are processed in chunks of ``chunk_size``, each under activation checkpointing while
training, so memory grows with ``chunk_size x n_kernels``, not with the number of points.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from kernelnn.layers.feature_grid import FeatureGrid, check_box
from kernelnn.layers.input_checks import check_float_input, check_positive_ints
from kernelnn.layers.rbf import RBFLayer

SHAPES = ("diagonal", "full")


class RBFField(nn.Module):
    """Gaussian RBFNet field ``(..., d)`` coordinates in ``[-1, 1]^d -> (..., out_features)``.

    Parameters
    ----------
    in_features : int
        Coordinate dimension ``d`` (2 for images, 3 for signed distance fields).
    out_features : int
        Values per point (3 for RGB, 1 for a distance).
    n_kernels : int
        Gaussian neurons ``M`` (64 in the authors' image and SDF configs).
    shape : str
        ``"diagonal"`` (one diagonal precision per kernel, the authors') or ``"full"`` (a full ``P_m = L_m L_m^T``).
    grid_resolutions : sequence of int
        Nodes per axis of each feature-grid level (the authors' images: 32 to 128 in six levels).
    grid_channels : int or sequence of int
        Features per level (theirs: 4, 4, 4, 2, 2, 2; ``F`` = 18).
    chunk_size : int
        Points per chunk.

    Example
    -------
    >>> field = RBFField(2, 3)
    >>> field(torch.rand(1024, 2) * 2 - 1).shape
    torch.Size([1024, 3])
    """

    input_bounds = (-1.0, 1.0)  # the domain its coordinates must lie in (tests draw inputs from it)

    def __init__(self, in_features: int, out_features: int, n_kernels: int = 64, shape: str = "diagonal",
                 grid_resolutions: Sequence[int] = (32, 51, 70, 89, 108, 128),
                 grid_channels: int | Sequence[int] = (4, 4, 4, 2, 2, 2), chunk_size: int = 2**16) -> None:
        super().__init__()
        check_positive_ints("RBFField", out_features=out_features, n_kernels=n_kernels, chunk_size=chunk_size)
        if in_features not in (1, 2, 3):
            raise ValueError(f"RBFField: in_features={in_features!r} must be 1, 2 or 3 (coordinates)")
        if shape not in SHAPES:
            raise ValueError(f"RBFField: shape={shape!r} is not one of {list(SHAPES)}")
        self.in_features, self.out_features, self.chunk_size = in_features, out_features, chunk_size
        # Grid features start standard normal, as the authors' DiF-Grid (randn): at a tenth of that, 300 Adam steps
        # on a 64 x 64 crop of china.jpg reached 22 dB against 33 dB.
        self.grid = FeatureGrid(in_features, grid_resolutions, grid_channels, init_std=1.0, owner="RBFField",
                                prefix="grid_")
        # The authors' start: centres near the origin (U(+-1e-4)), unit precision, and no k-means placement (the
        # feature space is what training shapes; data_init would see only the first rows of an image).
        self.rbf = RBFLayer(self.grid.out_features, n_kernels, out_features, precision=shape, shared=False,
                            bias=True, data_init=False)
        with torch.no_grad():
            self.rbf.centers.uniform_(-1e-4, 1e-4)
            self.rbf.reset_precision(1.0)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, chunk_size={self.chunk_size}"

    def _chunk(self, x: torch.Tensor) -> torch.Tensor:
        return self.rbf(self.grid(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_float_input(x, self, "RBFField")
        check_box(x, "RBFField", self.in_features)
        lead = x.shape[:-1]
        points = x.reshape(-1, self.in_features)
        try:
            if len(points) <= self.chunk_size:
                out = self._chunk(points)
            else:
                grad = torch.is_grad_enabled()
                out = torch.cat([checkpoint(self._chunk, part, use_reentrant=False) if grad else self._chunk(part)
                                 for part in points.split(self.chunk_size)])
        except (ValueError, TypeError) as err:  # a part's refusal (e.g. half-precision Gaussians), said by the field
            raise type(err)(f"RBFField: {err}") from None
        return out.reshape(*lead, self.out_features)
