"""kernelnn: generalized neurons and neural operators for PyTorch.

Layers live in :mod:`kernelnn.layers`, models in :mod:`kernelnn.models`, generated PDE data and a file
loader in :mod:`kernelnn.data`, and the one training loop behind ``train.py`` in :mod:`kernelnn.training`.
"""

from kernelnn.layers import (
    GauntTensorProduct,
    MgConv,
    SoftGating,
    SpectralConv,
    gaunt_tensor_product,
    spherical_harmonics,
)
from kernelnn.losses import H1Loss, LpLoss, NegativeSobolevLoss, SobolevLoss
from kernelnn.models import FNO, MLP, TFNO, MgNO, Normalized
from kernelnn.registry import ACTIVATIONS, Registry

__version__ = "0.1.0"

__all__ = [
    "ACTIVATIONS", "FNO", "GauntTensorProduct", "H1Loss", "LpLoss", "MLP", "MgConv", "MgNO", "NegativeSobolevLoss",
    "Normalized", "Registry", "SobolevLoss", "SoftGating", "SpectralConv", "TFNO", "__version__",
    "gaunt_tensor_product", "spherical_harmonics",
]
