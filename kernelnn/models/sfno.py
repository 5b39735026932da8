"""Spherical FNO (Bonev et al., ICML 2023): FNO blocks whose spectral convolution is an SHT on the sphere."""

from __future__ import annotations

import torch
from torch import nn

from kernelnn.layers.input_checks import check_dtype_matches
from kernelnn.layers.pointwise import pointwise
from kernelnn.layers.skip import SKIPS
from kernelnn.layers.spherical import SphericalConv
from kernelnn.registry import ACTIVATIONS


class SphericalFNO(nn.Module):
    """Lifting, ``n_layers`` blocks ``act(SphericalConv(v) + skip(v))`` (none after the last), projection.

    Fields are ``(batch, channels, nlat, nlon)`` on an equiangular or Gauss-Legendre grid. With the default
    ``operator_type="driscoll-healy"`` and point-wise lifting, skips and projection, the model is equivariant
    under rotations of the sphere for band-limited inputs (exactly for longitude shifts on the grid).
    """

    def __init__(self, in_channels: int, out_channels: int, n_modes: int, hidden_channels: int = 32,
                 n_layers: int = 4, projection_channels: int = 64, operator_type: str = "driscoll-healy",
                 grid: str = "equiangular", skip: str = "linear", activation: str = "gelu", dim: int = 2) -> None:
        super().__init__()
        if dim != 2:
            raise ValueError(f"SphericalFNO: dim={dim} must be 2 (latitude, longitude)")
        self.in_channels, self.out_channels, self.n_modes = in_channels, out_channels, n_modes
        self.lifting = pointwise(in_channels, hidden_channels, 2)
        self.spectral = nn.ModuleList(SphericalConv(hidden_channels, hidden_channels, n_modes, operator_type, grid)
                                      for _ in range(n_layers))
        make_skip = SKIPS.get(skip, owner="SphericalFNO", argument="skip")
        self.skips = nn.ModuleList(make_skip(hidden_channels, 2) for _ in range(n_layers))
        self.activation = ACTIVATIONS.build(activation, owner="SphericalFNO", argument="activation")
        self.projection = nn.Sequential(
            pointwise(hidden_channels, projection_channels, 2),
            ACTIVATIONS.build(activation, owner="SphericalFNO", argument="activation"),
            pointwise(projection_channels, out_channels, 2),
        )

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ``TypeError``/``ValueError`` unless ``x`` is a float tensor ``(batch, in_channels, nlat, nlon)``
        on a grid that resolves ``n_modes`` degrees."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"SphericalFNO: input must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"SphericalFNO: input must have shape (batch, {self.in_channels}, nlat, nlon), "
                             f"got {tuple(x.shape)}")
        if not x.is_floating_point():
            raise TypeError(f"SphericalFNO: input dtype must be floating point, got {x.dtype}")
        check_dtype_matches(x, self, "SphericalFNO")
        self.spectral[0].check_grid(x.shape[2], x.shape[3], owner="SphericalFNO")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        x = self.lifting(x)
        for i, (spectral, skip) in enumerate(zip(self.spectral, self.skips, strict=True)):
            x = spectral(x) + skip(x)
            if i < len(self.spectral) - 1:
                x = self.activation(x)
        return self.projection(x)
