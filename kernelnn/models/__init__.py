"""Models composed from kernelnn layers."""

from kernelnn.models.cnn import CNN
from kernelnn.models.equivariant import EquivariantNet
from kernelnn.models.fno import FNO, TFNO, SpatioTemporalFNO
from kernelnn.models.frame_cnn import FrameCNN
from kernelnn.models.kan import KAN
from kernelnn.models.mgno import MgNO
from kernelnn.models.mlp import MLP
from kernelnn.models.normalized import Normalized
from kernelnn.models.patching import MGPatching
from kernelnn.models.sfno import SphericalFNO

__all__ = ["CNN", "EquivariantNet", "FNO", "FrameCNN", "KAN", "MGPatching", "MLP", "MgNO", "Normalized",
           "SpatioTemporalFNO", "SphericalFNO", "TFNO"]
