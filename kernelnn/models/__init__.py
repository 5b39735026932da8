"""Models composed from kernelnn layers.

Every model is registered in :data:`kernelnn.registry.MODELS` under its config-group name (``configs/model/
<name>.yaml``), with a small example the test suite builds, runs and round-trips. Checkpoints only rebuild
registered models; register your own with ``MODELS.register("mine", example={...})(MyModel)``.
"""

import torch

from kernelnn.layers.adaptive_rbf import AdaptiveRBF
from kernelnn.layers.rbf_field import RBFField
from kernelnn.layers.siren import Siren
from kernelnn.models.bochner_fno import BochnerFNO
from kernelnn.models.cnn import CNN
from kernelnn.models.coordinate_network import CoordinateNetwork
from kernelnn.models.deeponet import DeepONet
from kernelnn.models.equivariant import EquivariantNet
from kernelnn.models.fno import FNO, TFNO, SpatioTemporalFNO
from kernelnn.models.frame_cnn import FrameCNN
from kernelnn.models.interatomic import InteratomicPotential
from kernelnn.models.kan import KAN
from kernelnn.models.mgno import MgNO
from kernelnn.models.mlp import MLP
from kernelnn.models.normalized import Normalized
from kernelnn.models.patching import MGPatching
from kernelnn.models.sfno import SphericalFNO
from kernelnn.models.transform_once import TransformOnce
from kernelnn.models.unet import UNet
from kernelnn.models.vit import ViT
from kernelnn.registry import MODELS

__all__ = ["BochnerFNO", "CNN", "CoordinateNetwork", "DeepONet", "EquivariantNet", "FNO", "FrameCNN",
           "InteratomicPotential", "KAN", "MGPatching", "MLP", "MgNO", "Normalized", "SpatioTemporalFNO",
           "SphericalFNO", "TFNO", "TransformOnce", "UNet", "ViT"]

_SMALL_FNO = {"n_modes": (3, 3), "hidden_channels": 4, "n_layers": 2, "projection_channels": 8}


def _mg_patching_example():
    """A tiny FNO seeing 2 x 2 patches of a 16 x 16 field with one level of context (2 channels in)."""
    return MGPatching(FNO(2, 1, **_SMALL_FNO), levels=1, padding=2), (torch.randn(2, 1, 16, 16),)


def _pod_deeponet_example():
    """A POD-DeepONet whose basis is fitted to random outputs on its 8 x 8 grid."""
    model = DeepONet(64, 2, width=4, branch_depth=2, variant="pod")
    model.fit_output_basis(torch.randn(12, 1, 8, 8))
    return model, (torch.randn(2, 1, 8, 8),)


def _box_points(n: int, d: int) -> torch.Tensor:
    return torch.rand(n, d) * 2 - 1  # a field's coordinates, inside its domain [-1, 1]^d


def _rbf_field_example():
    return RBFField(2, 3, n_kernels=6, grid_resolutions=(3, 5), grid_channels=2), (_box_points(7, 2),)


def _neurbf_example():
    """A NeuRBF with trainable kernels (so every parameter gets a gradient), placed by weighted k-means."""
    model = AdaptiveRBF(2, 3, n_kernels=8, feature_channels=4, grid_resolutions=(3,), hidden_features=8,
                        trainable_kernels=True)
    points = _box_points(64, 2)
    model.init_kernels(points, weights=points.norm(dim=1))
    return model, (_box_points(7, 2),)


def _interatomic_example():
    """Two open systems of 5 atoms of two species, stacked as the training loop batches them (periodic cells are
    tested in tests/models/test_interatomic.py: random positions would fall outside a cell)."""
    model = InteratomicPotential(2, L=1, channels=4, layers=1, cutoff=1.5, num_basis=4, radial_hidden=8,
                                 readout_hidden=8)
    g = torch.Generator().manual_seed(0)
    return model, (torch.rand(2, 5, 3, generator=g) * 2.0, torch.randint(2, (2, 5), generator=g))


def _normalized_example():
    """An MLP wrapped with random (saved) input and output statistics."""
    model = Normalized(MLP(3, 2, hidden=[8]), in_mean=torch.randn(3), in_std=torch.rand(3) + 0.5,
                       out_mean=torch.randn(2), out_std=torch.rand(2) + 0.5, channel_dim=-1)
    return model, (torch.randn(5, 3),)


MODELS.register("fno", example={"in_channels": 1, "out_channels": 1, **_SMALL_FNO, "inputs": [(2, 1, 8, 8)]})(FNO)
MODELS.register("tfno", example={"in_channels": 1, "out_channels": 1, **_SMALL_FNO, "rank": 0.5,
                                 "inputs": [(2, 1, 8, 8)]})(TFNO)
MODELS.register("stfno", example={"in_channels": 2, "out_channels": 4, "n_modes": (3, 3, 2), "hidden_channels": 4,
                                  "n_layers": 2, "projection_channels": 8, "inputs": [(2, 2, 8, 8)]})(SpatioTemporalFNO)
MODELS.register("bochner_fno", example={"in_channels": 2, "out_channels": 4, "n_modes": (3, 3, 2), "hidden_channels": 4,
                                        "n_layers": 2, "inputs": [(2, 2, 8, 8)]})(BochnerFNO)
MODELS.register("sfno", example={"in_channels": 1, "out_channels": 1, "n_modes": 4, "hidden_channels": 4,
                                 "n_layers": 2, "projection_channels": 8, "inputs": [(2, 1, 8, 16)]})(SphericalFNO)
MODELS.register("mgno", example={"in_channels": 1, "out_channels": 1, "hidden_channels": 4, "n_layers": 2,
                                 "levels": 3, "inputs": [(2, 1, 8, 8)]})(MgNO)
MODELS.register("deeponet", example={"n_sensors": 64, "coord_dim": 2, "width": 8, "branch_depth": 2,
                                     "trunk_depth": 2, "inputs": [(2, 1, 8, 8)]})(DeepONet)
MODELS.register("pod_deeponet", example=_pod_deeponet_example)(DeepONet)
MODELS.register("t1", example={"in_channels": 1, "out_channels": 1, "n_modes": 3, "hidden_channels": 4, "n_layers": 2,
                               "head_channels": 8, "resolution": [8, 8], "inputs": [(2, 1, 8, 8)]})(TransformOnce)
MODELS.register("t1_fft", example={"in_channels": 1, "out_channels": 1, "n_modes": 3, "hidden_channels": 4,
                                   "n_layers": 2, "head_channels": 8, "transform": "fft", "resolution": [8, 8],
                                   "inputs": [(2, 1, 8, 8)]})(TransformOnce)
MODELS.register("uno", example={"in_channels": 1, "out_channels": 1, "hidden_channels": 4, "levels": 2,
                                "resolution": [8, 8], "inputs": [(2, 1, 8, 8)]})(UNet)
MODELS.register("unet", example={"in_channels": 1, "out_channels": 1, "hidden_channels": 4, "levels": 2,
                                 "operator": False, "inputs": [(2, 1, 8, 8)]})(UNet)
MODELS.register("siren", example={"in_features": 2, "out_features": 3, "hidden_features": 8, "n_layers": 2,
                                  "inputs": [(5, 2)]})(Siren)
MODELS.register("coordinate_network", example={"in_features": 2, "out_features": 1, "encoding": "spherical_harmonics",
                                               "encoding_options": {"L": 3}, "hidden_features": 8, "n_layers": 2,
                                               "inputs": [(5, 2)]})(CoordinateNetwork)
MODELS.register("rbf_field", example=_rbf_field_example)(RBFField)
MODELS.register("neurbf", example=_neurbf_example)(AdaptiveRBF)
MODELS.register("mlp", example={"in_features": 3, "out_features": 2, "hidden": [8], "inputs": [(5, 3)]})(MLP)
MODELS.register("cnn", example={"in_channels": 1, "out_features": 3, "channels": [4, 8], "pooled_size": 2,
                                "inputs": [(2, 1, 12, 12)]})(CNN)
MODELS.register("kan", example={"widths": [2, 3, 1], "inputs": [(5, 2)]})(KAN)
MODELS.register("vit", example={"in_channels": 1, "out_features": 3, "resolution": [8, 8], "patch_size": 4, "width": 8,
                                "depth": 2, "heads": 2, "attention": "fourier_karat", "sharing": "universal",
                                "inputs": [(2, 1, 8, 8)]})(ViT)
MODELS.register("frame_cnn", example={"in_channels": 1, "out_features": 3, "channels": [4, 8], "pooled_size": 2,
                                      "inputs": [(2, 3, 1, 12, 12)]})(FrameCNN)
MODELS.register("equivariant", example={"out_features": 3, "L": 1, "channels": 4, "layers": 1, "num_basis": 4,
                                        "radial_hidden": 8, "readout_hidden": 8, "inputs": [(2, 5, 3)]})(EquivariantNet)
MODELS.register("interatomic", example=_interatomic_example)(InteratomicPotential)
MODELS.register("mg_patching", example=_mg_patching_example)(MGPatching)
MODELS.register("normalized", example=_normalized_example)(Normalized)
