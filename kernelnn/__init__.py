"""kernelnn: generalized neurons and neural operators for PyTorch.

Layers live in :mod:`kernelnn.layers`, models in :mod:`kernelnn.models`, generated PDE data and a file
loader in :mod:`kernelnn.data`, and the one training loop behind ``train.py`` in :mod:`kernelnn.training`.
:func:`export` writes a model as a ``torch.export`` program or ONNX; ``python -m kernelnn.predict`` runs a trained
checkpoint on a file of inputs.

Importing kernelnn loads torch and kernelnn's own layers only: torch-harmonics and torch's compiler stack
(``torch._dynamo``) are imported where they are first used.
"""

from kernelnn.exporting import export
from kernelnn.layers import (
    GauntTensorProduct,
    MgConv,
    SoftGating,
    SpectralConv,
    TensorProduct,
    gaunt_tensor_product,
    spherical_harmonics,
)
from kernelnn.losses import H1Loss, LpLoss, NegativeSobolevLoss, SobolevLoss
from kernelnn.models import FNO, MLP, TFNO, MgNO, Normalized
from kernelnn.o3 import Irreps
from kernelnn.registry import ACTIVATIONS, Registry

__version__ = "0.1.0"

__all__ = [
    "ACTIVATIONS", "FNO", "GauntTensorProduct", "H1Loss", "Irreps", "LpLoss", "MLP", "MgConv", "MgNO",
    "NegativeSobolevLoss",
    "Normalized", "Registry", "SobolevLoss", "SoftGating", "SpectralConv", "TFNO", "TensorProduct", "__version__",
    "export", "gaunt_tensor_product", "spherical_harmonics",
]
