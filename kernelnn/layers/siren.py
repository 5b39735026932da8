r"""SIREN: sinusoidal representation networks (Sitzmann, Martel, Bergman, Lindell & Wetzstein, "Implicit neural
representations with periodic activation functions", NeurIPS 2020).

A sine layer is :math:`\sin(\omega_0 (W x + b))`. The initialisation is what makes a deep stack of them train:
the first layer draws :math:`W \sim U(-1/n, 1/n)` (``n`` inputs), so that :math:`\omega_0 W x` spans several
periods over a coordinate range of ``[-1, 1]``; every later layer draws :math:`W \sim U(-\sqrt{6/n}/\omega_0,
\sqrt{6/n}/\omega_0)`, which keeps each pre-activation distributed as the arcsine-distributed outputs of the layer
before it, whatever the depth. Biases keep ``nn.Linear``'s default, as in the authors' code (``vsitzmann/siren``:
``sine_init``, ``first_layer_sine_init``), and :math:`\omega_0 = 30` in every layer.

Rußwurm et al. (2024) use SIREN after spherical-harmonic encodings with :math:`\omega_0 = 30` on the first layer
and 1 on the others (``hidden_omega_0=1``: hidden weights then span :math:`\pm\sqrt{6/n}`, the same
pre-activations, differently scaled gradients). Their code also draws the biases like the weights, where this
keeps ``nn.Linear``'s (as the SIREN authors), so the first layer's phase offsets differ at initialisation.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from kernelnn.layers.input_checks import check_float_input, check_positive_ints


def _check_omega(owner: str, **values: float) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
            raise ValueError(f"{owner}: {name}={value!r} must be a positive number")


class SineLayer(nn.Module):
    r""":math:`\sin(\omega_0 (W x + b))`: ``(..., in_features) -> (..., out_features)``, SIREN's initialisation
    (module docstring); ``first=True`` for the layer that reads the coordinates.

    Parameters
    ----------
    in_features, out_features : int
        Widths.
    omega_0 : float
        The frequency factor (30 in the paper).
    first : bool
        The first layer's initialisation, :math:`U(-1/n, 1/n)`.
    bias : bool
        Learnable bias.
    """

    def __init__(self, in_features: int, out_features: int, omega_0: float = 30.0, first: bool = False,
                 bias: bool = True) -> None:
        super().__init__()
        check_positive_ints("SineLayer", in_features=in_features, out_features=out_features)
        _check_omega("SineLayer", omega_0=omega_0)
        self.in_features, self.out_features, self.omega_0, self.first = in_features, out_features, omega_0, first
        self.linear = nn.Linear(in_features, out_features, bias=bias)
        bound = 1 / in_features if first else math.sqrt(6 / in_features) / omega_0
        with torch.no_grad():
            self.linear.weight.uniform_(-bound, bound)

    def extra_repr(self) -> str:
        return f"omega_0={self.omega_0:g}, first={self.first}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_float_input(x, self, "SineLayer")
        if x.dim() < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"SineLayer: input must have shape (..., {self.in_features}), got {tuple(x.shape)}")
        # omega_0 (W x + b) spans tens of radians: in half precision its rounding would be phase noise, so under
        # autocast the layer computes in its parameters' dtype (float32) and returns that.
        with torch.autocast(x.device.type, enabled=False):
            return torch.sin(self.omega_0 * self.linear(x.to(self.linear.weight.dtype)))


class Siren(nn.Module):
    r"""A SIREN: ``n_layers`` sine layers, then a linear output layer (the authors' ``outermost_linear``):
    ``(..., in_features) -> (..., out_features)``.

    Parameters
    ----------
    in_features, out_features : int
        Coordinate and value dimensions.
    hidden_features : int
        Width of the sine layers (256 in the paper's image fits).
    n_layers : int
        Number of sine layers, the first included (the paper's image fits: 4, i.e. 3 hidden layers after the first).
    first_omega_0, hidden_omega_0 : float
        :math:`\omega_0` of the first and of the later sine layers (30 and 30 in the paper; Rußwurm et al. use 30
        and 1).

    The output layer draws its weights as a later sine layer would, :math:`U(\pm\sqrt{6/n}/\omega_0)`, as in the
    authors' code.

    Example
    -------
    >>> Siren(2, 3, hidden_features=64, n_layers=3)(torch.rand(10, 2) * 2 - 1).shape
    torch.Size([10, 3])
    """

    def __init__(self, in_features: int, out_features: int, hidden_features: int = 256, n_layers: int = 4,
                 first_omega_0: float = 30.0, hidden_omega_0: float = 30.0) -> None:
        super().__init__()
        check_positive_ints("Siren", in_features=in_features, out_features=out_features,
                            hidden_features=hidden_features, n_layers=n_layers)
        _check_omega("Siren", first_omega_0=first_omega_0, hidden_omega_0=hidden_omega_0)
        self.in_features, self.out_features = in_features, out_features
        self.layers = nn.Sequential(
            SineLayer(in_features, hidden_features, first_omega_0, first=True),
            *(SineLayer(hidden_features, hidden_features, hidden_omega_0) for _ in range(n_layers - 1)))
        self.output = nn.Linear(hidden_features, out_features)
        bound = math.sqrt(6 / hidden_features) / hidden_omega_0
        with torch.no_grad():
            self.output.weight.uniform_(-bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_float_input(x, self, "Siren")
        if x.dim() < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"Siren: input must have shape (..., {self.in_features}), got {tuple(x.shape)}")
        return self.output(self.layers(x))
