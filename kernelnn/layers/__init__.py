"""Layers: one concept per file."""

from kernelnn.layers.spectral import SpectralConv

__all__ = ["SpectralConv"]
