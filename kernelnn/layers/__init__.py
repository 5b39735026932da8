"""Layers: one concept per file."""

from kernelnn.layers.multigrid import MgConv
from kernelnn.layers.skip import SoftGating
from kernelnn.layers.spectral import SpectralConv
from kernelnn.layers.spherical import SphericalConv

__all__ = ["MgConv", "SoftGating", "SpectralConv", "SphericalConv"]
