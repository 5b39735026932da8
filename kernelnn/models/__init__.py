"""Models composed from kernelnn layers."""

from kernelnn.models.fno import FNO, TFNO
from kernelnn.models.mlp import MLP
from kernelnn.models.normalized import Normalized

__all__ = ["FNO", "MLP", "Normalized", "TFNO"]
