r"""AF-KAN: ReLU-KAN's bumps built from any activation function, reduced per input by attention, then normalised.

Source: Ta & Tran, "AF-KAN: Activation Function-Based Kolmogorov-Arnold Networks for Efficient Representation
Learning" (2025; the authors' code is ``hoangthangta/All-KAN``, ``models/af_kan.py``). For each input ``x_d`` and
each of the ``n = G + k`` intervals of ReLU-KAN's grid (:class:`~kernelnn.layers.ReLUKANLinear`; here one shared,
trainable pair of phase vectors ``s, e`` per layer, as the authors; their grid covers ``[0, 1]``,
``grid_range=(0, 1)``, the default here ``[-1, 1]`` as kernelnn's other KAN layers), with ``A = act(x_d - s_i)`` and
``B = act(e_i - x_d)``, the basis value is one of the paper's function combinations:

=============  ============================
``quad1``      ``(A B)^2`` (the default; ReLU-KAN's bump without its constant when ``act = relu``)
``quad2``      ``A B + A^2 + B^2``
``sum``        ``A + B``
``prod``       ``A B``
``sum_prod``   ``A + B + A B``
``cubic1``     ``(A + B)(A^2 + B^2)``
``cubic2``     ``(A B)^3``
=============  ============================

The ``(D, n)`` basis values are reduced to one number per input (parameter reduction, ``attention``):

- ``"global"`` (the default): a score per input from one linear map of its ``n`` values shared by all inputs,
  ``c_d = w . phi_d + b``; weights ``alpha = softmax_d(c / max(tau, 1))`` *across the inputs*, with a learnable
  temperature ``tau`` that starts at ``sqrt(D)``; ``z_d = alpha_d sum_i phi_{d,i}``.
- ``"spatial"``: a depthwise convolution (kernel 3) along the inputs gives each basis function a score per input;
  weights are a softmax over the basis functions (same temperature), ``z_d = sum_i W_{d,i} phi_{d,i}``.
- ``"none"`` (the authors' ``multistep``): ``z_d = w . phi_d + b``.

Then ``y = act(Norm(z)) W^T`` with ``Norm`` a LayerNorm over the inputs (``norm="layer"``, the default), a
BatchNorm or nothing, and ``W (out, D)`` without bias. ``basis_norm="minmax"`` rescales the basis values of the
whole batch to ``[0, 1]`` first (the authors' ``func_norm``: it makes a sample's output depend on its batch; their
training runs leave it off, as the default here). Only the modules the chosen options use are built, so the
parameter count is the one the authors report (they count the parameters that receive a gradient): the 784-64-10
network at ``G = k = 3`` has 52,552.

Shapes: ``(..., in_features) -> (..., out_features)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from kernelnn.layers.bspline import fused_kernel
from kernelnn.layers.input_checks import check_float_tensor, check_interval, check_positive_ints
from kernelnn.layers.relu_kan import bump_phases
from kernelnn.registry import NEURONS

ACTIVATIONS = {"softplus": F.softplus, "sigmoid": torch.sigmoid, "silu": F.silu, "relu": F.relu,
               "leaky_relu": F.leaky_relu, "elu": F.elu, "gelu": F.gelu, "selu": F.selu, "tanh": torch.tanh,
               "identity": lambda x: x}
FUNCTIONS = {
    "quad1": lambda a, b: (a * b).square(),
    "quad2": lambda a, b: a * b + a.square() + b.square(),
    "sum": lambda a, b: a + b,
    "prod": lambda a, b: a * b,
    "sum_prod": lambda a, b: a + b + a * b,
    "cubic1": lambda a, b: (a + b) * (a.square() + b.square()),
    "cubic2": lambda a, b: (a * b) ** 3,
}
ATTENTIONS = ("global", "spatial", "none")
NORMS = ("layer", "batch", "none")
BASIS_NORMS = ("none", "minmax")


# Below this many basis values the eager functions run: a compiled kernel's call overhead would dominate.
FUSE_FROM = 1 << 16
_OPTIONS = ("activation", "function", "attention", "basis_norm")


def _basis(x: torch.Tensor, start: torch.Tensor, end: torch.Tensor, activation: str, function: str,
           basis_norm: str) -> torch.Tensor:
    act = ACTIVATIONS[activation]
    x = x.unsqueeze(-1)
    phi = FUNCTIONS[function](act(x - start), act(end - x))
    if basis_norm == "minmax" and phi.numel():
        low, high = phi.min(), phi.max()
        phi = (phi - low) / (high - low).clamp_min(torch.finfo(phi.dtype).tiny)
    return phi


def _reduce(phi: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, temperature: torch.Tensor | None,
            attention: str) -> torch.Tensor:
    if attention == "none":
        return F.linear(phi, weight, bias).squeeze(-1)
    temperature = temperature.clamp_min(1.0)
    if attention == "global":
        scores = F.linear(phi, weight, bias).squeeze(-1)  # (N, D)
        return torch.softmax(scores / temperature, dim=-1) * phi.sum(-1)
    scores = F.conv1d(phi.transpose(1, 2), weight, bias, padding=1, groups=phi.shape[-1])  # (N, n, D)
    return (torch.softmax(scores / temperature, dim=1).transpose(1, 2) * phi).sum(-1)


def _features(x: torch.Tensor, start: torch.Tensor, end: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
              temperature: torch.Tensor | None, activation: str, function: str, attention: str,
              basis_norm: str) -> torch.Tensor:
    return _reduce(_basis(x, start, end, activation, function, basis_norm), weight, bias, temperature, attention)


def _choice(value: str, allowed, argument: str) -> str:
    if value not in allowed:
        raise ValueError(f"AFKANLinear: {argument}={value!r} is not one of {sorted(allowed)}")
    return value


@NEURONS.register("af_kan")
class AFKANLinear(nn.Module):
    """AF-KAN layer (see the module docstring).

    Parameters
    ----------
    in_features, out_features : int
    grid_size, order : int
        ``G`` intervals over ``grid_range`` and ``k``: ``G + k`` basis functions per input (the authors' image
        runs: 3 and 3).
    activation : str
        ``act``, in the basis and before the output map: one of :data:`ACTIVATIONS` (default ``"silu"``).
    function : str
        The function combination, one of :data:`FUNCTIONS` (default ``"quad1"``).
    attention : str
        ``"global"``, ``"spatial"`` or ``"none"``.
    norm : str
        ``"layer"``, ``"batch"`` or ``"none"``.
    basis_norm : str
        ``"none"`` or ``"minmax"`` (batch-wide, as the authors' ``func_norm``).
    grid_range : (float, float)
        Where the inputs are expected.
    train_phases : bool
        Learn the phases ``s, e`` (the authors' default).

    Example
    -------
    >>> layer = AFKANLinear(4, 3)
    >>> layer(torch.rand(10, 4)).shape
    torch.Size([10, 3])
    """

    def __init__(self, in_features: int, out_features: int, grid_size: int = 3, order: int = 3,
                 activation: str = "silu", function: str = "quad1", attention: str = "global", norm: str = "layer",
                 basis_norm: str = "none", grid_range: Sequence[float] = (-1.0, 1.0),
                 train_phases: bool = True) -> None:
        super().__init__()
        check_positive_ints("AFKANLinear", in_features=in_features, out_features=out_features, grid_size=grid_size)
        low, high = check_interval("AFKANLinear", "grid_range", grid_range)
        self.activation = _choice(activation, ACTIVATIONS, "activation")
        self.function = _choice(function, FUNCTIONS, "function")
        self.attention = _choice(attention, ATTENTIONS, "attention")
        self.norm_kind = _choice(norm, NORMS, "norm")
        self.basis_norm = _choice(basis_norm, BASIS_NORMS, "basis_norm")
        self.in_features, self.out_features = in_features, out_features
        self.grid_size, self.order, self.grid_range = grid_size, order, (low, high)
        n = grid_size + order
        start, end = bump_phases(grid_size, order, low, high, "AFKANLinear")
        self.start = nn.Parameter(start, requires_grad=train_phases)
        self.end = nn.Parameter(end, requires_grad=train_phases)
        if attention != "none":
            self.temperature = nn.Parameter(torch.tensor(math.sqrt(in_features)))
        if attention in ("global", "none"):
            self.score = nn.Linear(n, 1)  # shared by all inputs
        if attention == "spatial":
            self.score = nn.Conv1d(n, n, kernel_size=3, padding=1, groups=n)  # along the inputs, per function
        self.norm = {"layer": nn.LayerNorm(in_features), "batch": nn.BatchNorm1d(in_features),
                     "none": nn.Identity()}[norm]
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # U(+-1/sqrt(D)), as the authors' base weight

    @property
    def n_basis(self) -> int:
        return self.grid_size + self.order

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, grid_size={self.grid_size}, "
                f"order={self.order}, activation={self.activation!r}, function={self.function!r}, "
                f"attention={self.attention!r}, norm={self.norm_kind!r}, basis_norm={self.basis_norm!r}")

    def basis(self, x: torch.Tensor) -> torch.Tensor:
        """``phi``: ``(N, D, G + k)`` basis values of ``x (N, D)``."""
        return _basis(x, self.start.to(x.dtype), self.end.to(x.dtype), self.activation, self.function,
                      self.basis_norm)

    def reduce(self, phi: torch.Tensor) -> torch.Tensor:
        """``z``: ``(N, D)``, one number per input from its basis values."""
        dtype = phi.dtype
        temperature = None if self.attention == "none" else self.temperature.to(dtype)
        return _reduce(phi, self.score.weight.to(dtype), self.score.bias.to(dtype), temperature, self.attention)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``z = reduce(basis(x))``: ``(N, D)``. Large inputs run it as one ``torch.compile``-fused kernel
        (forward and backward): a dozen element-wise passes over ``(N, D, G + k)`` become one or two."""
        dtype = x.dtype
        temperature = None if self.attention == "none" else self.temperature.to(dtype)
        args = (x, self.start.to(dtype), self.end.to(dtype), self.score.weight.to(dtype), self.score.bias.to(dtype),
                temperature)
        if x.numel() * self.n_basis < FUSE_FROM:
            return _features(*args, self.activation, self.function, self.attention, self.basis_norm)
        key = (self.activation, self.function, self.attention, self.basis_norm)
        return fused_kernel("af_kan:" + ":".join(key), partial(_features, **dict(zip(_OPTIONS, key, strict=True))))(
            *args)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_float_tensor(x, "AFKANLinear")
        if x.dim() < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"AFKANLinear: input must have shape (..., {self.in_features}), got {tuple(x.shape)}")
        lead = x.shape[:-1]
        z = self.features(x.reshape(-1, self.in_features))
        if self.norm_kind == "layer":
            z = F.layer_norm(z, (self.in_features,), self.norm.weight.to(z.dtype), self.norm.bias.to(z.dtype),
                             self.norm.eps)
        elif self.norm_kind == "batch":
            if self.training and len(z) == 1:
                raise ValueError("AFKANLinear: norm='batch' needs more than one sample per training batch, got 1 "
                                 "(a last short batch? use norm='layer', or another batch size)")
            # In the dtype of its running statistics, which it updates in place.
            z = self.norm(z.to(self.norm.weight.dtype)).to(z.dtype)
        out = F.linear(ACTIVATIONS[self.activation](z), self.weight.to(z.dtype))
        return out.reshape(*lead, self.out_features)
