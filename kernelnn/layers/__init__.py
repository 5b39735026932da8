"""Layers: one concept per file."""

from kernelnn.layers.global_tucker import GlobalTucker
from kernelnn.layers.multigrid import MgConv
from kernelnn.layers.skip import SoftGating
from kernelnn.layers.spectral import SpectralConv, spectral_parameter_counts
from kernelnn.layers.spherical import SphericalConv

__all__ = ["GlobalTucker", "MgConv", "SoftGating", "SpectralConv", "SphericalConv", "spectral_parameter_counts"]
