"""Layers: one concept per file."""

from kernelnn.layers import checked  # noqa: F401  (registers torch's activations and nn.Linear, checked)
from kernelnn.layers.adaptive_rbf import AdaptiveRBF
from kernelnn.layers.af_kan import AFKANLinear
from kernelnn.layers.cp_tensor_product import CPTensorProduct
from kernelnn.layers.data_init import data_dependent_init
from kernelnn.layers.degree_linear import DegreeLinear
from kernelnn.layers.delta import DeltaActivation, delta_layers, replace_activations
from kernelnn.layers.delta_accumulate import DeltaConv2d, DeltaLinear
from kernelnn.layers.feature_grid import FeatureGrid
from kernelnn.layers.fourier_karat import FourierKArAt
from kernelnn.layers.fourier_resample import fourier_resample
from kernelnn.layers.function_attention import FunctionAttention
from kernelnn.layers.gate import Gate
from kernelnn.layers.gaunt import gaunt_coefficients, gaunt_tensor_product
from kernelnn.layers.gaunt_layer import GauntTensorProduct
from kernelnn.layers.global_tucker import GlobalTucker
from kernelnn.layers.irreps_linear import IrrepsLinear
from kernelnn.layers.kan import KANConv1d, KANConv2d, KANConv3d, KANLinear
from kernelnn.layers.kernel_conv import DistanceLinear, KernelConv1d, KernelConv2d, KernelConv3d, KernelLinear
from kernelnn.layers.local_integral import LocalIntegralConv1d, LocalIntegralConv2d
from kernelnn.layers.multigrid import MgConv
from kernelnn.layers.neighbor_list import Neighbors, edge_vectors, neighbor_list
from kernelnn.layers.pointwise import ChannelsLast, pointwise
from kernelnn.layers.positional_encoding import (
    DoubleFourierSphere,
    FourierFeatures,
    IdentityEncoding,
    LonLatEncoding,
    SphericalHarmonicsEncoding,
)
from kernelnn.layers.quadratic import (
    QuadraticConv1d,
    QuadraticConv2d,
    QuadraticConv3d,
    QuadraticLinear,
    relinear_param_groups,
)
from kernelnn.layers.radial import BesselBasis, PolynomialCutoff
from kernelnn.layers.rbf import RBFLayer, plot_rbf_interpretation
from kernelnn.layers.rbf_field import RBFField
from kernelnn.layers.relu_kan import ReLUKANLinear
from kernelnn.layers.self_attention import KArAt, SelfAttention, SoftmaxScores
from kernelnn.layers.siren import SineLayer, Siren
from kernelnn.layers.skip import SoftGating
from kernelnn.layers.spectral import SpectralConv, spectral_parameter_counts
from kernelnn.layers.spherical import SphericalConv
from kernelnn.layers.spherical_harmonics import spherical_harmonics
from kernelnn.layers.tensor_product import FullyConnectedTensorProduct, TensorProduct
from kernelnn.layers.time_distributed import TimeDistributed
from kernelnn.layers.trukan import TruKANLinear
from kernelnn.layers.trukan_conv import TruKANConv1d, TruKANConv2d, TruKANConv3d

__all__ = [
    "AFKANLinear", "AdaptiveRBF", "BesselBasis", "CPTensorProduct", "ChannelsLast", "DegreeLinear", "DeltaActivation",
    "DeltaConv2d", "DeltaLinear", "DistanceLinear", "DoubleFourierSphere", "FeatureGrid", "FourierFeatures",
    "FourierKArAt", "FullyConnectedTensorProduct", "FunctionAttention", "Gate", "GauntTensorProduct", "GlobalTucker",
    "IdentityEncoding", "IrrepsLinear", "KANConv1d", "KANConv2d", "KANConv3d", "KANLinear", "KArAt", "KernelConv1d",
    "KernelConv2d", "KernelConv3d", "KernelLinear", "LocalIntegralConv1d", "LocalIntegralConv2d", "LonLatEncoding",
    "MgConv", "Neighbors", "PolynomialCutoff", "QuadraticConv1d", "QuadraticConv2d", "QuadraticConv3d",
    "QuadraticLinear", "RBFField", "RBFLayer", "ReLUKANLinear", "SelfAttention", "SineLayer", "Siren", "SoftGating",
    "SoftmaxScores", "SpectralConv", "SphericalConv", "SphericalHarmonicsEncoding", "TensorProduct", "TimeDistributed",
    "TruKANConv1d", "TruKANConv2d", "TruKANConv3d", "TruKANLinear", "data_dependent_init", "delta_layers",
    "edge_vectors", "fourier_resample", "gaunt_coefficients", "gaunt_tensor_product", "neighbor_list",
    "plot_rbf_interpretation", "pointwise", "relinear_param_groups", "replace_activations",
    "spectral_parameter_counts", "spherical_harmonics",
]
