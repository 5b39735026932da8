"""Models composed from kernelnn layers."""

from kernelnn.models.fno import FNO
from kernelnn.models.mlp import MLP
from kernelnn.models.normalized import Normalized

__all__ = ["FNO", "MLP", "Normalized"]
