r"""B-spline Kolmogorov-Arnold layers: ``KANLinear`` and ``KANConv1d/2d/3d``.

Source: Liu et al., "KAN: Kolmogorov-Arnold Networks" (2024). Every edge from input ``i`` to output ``o``
carries a learnable function

.. math::  \phi_{oi}(x) = w^{base}_{oi}\, b(x) + s_{oi} \sum_j c_{oij} B_j(x)

(``b`` = SiLU by default, ``B_j`` the B-splines of order ``k`` on input ``i``'s grid, ``s`` an optional
per-edge spline scale), and output ``o`` sums its edges. Computed as efficient-kan does, as two matmuls
(``b(x) @ W_base^T`` and ``B(x).flatten @ W_spline^T``), never as a (batch, in, out) tensor; the basis has a
custom backward (:mod:`kernelnn.layers.bspline`) so the matmul's saved basis is the largest thing kept.

Grids follow the data: :meth:`update_grid` moves the knots to sample quantiles (mixed with a uniform grid) and
:meth:`refine` moves to a finer grid, both refitting the coefficients by least squares so the function is kept
(efficient-kan's ``update_grid`` forgets to divide out the spline scale and changes the function by ~100%
whenever that scale is on). Under ``torch.distributed`` the samples are gathered from all ranks first, so every
rank computes the same grid. :meth:`regularization` is the paper's L1 + entropy penalty.

``KANConv`` applies a KAN to every patch; because an edge only sees one pixel, the B-spline basis of each
pixel is computed once and the spline sum becomes an ordinary convolution of the ``(G + k)``-times wider basis
image (no patch tensor, memory ``(G + k)`` times the input instead of ``(G + k) * kernel`` times).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from kernelnn.layers.bspline import (
    adaptive_grid,
    bspline_basis,
    extend_grid,
    gather_samples,
    refit_coefficients,
    uniform_grid,
)
from kernelnn.layers.conv_args import check_padding_mode, int_tuple, pad
from kernelnn.layers.data_init import layer_input
from kernelnn.layers.input_checks import check_float_tensor
from kernelnn.protocols import GridAdaptive, layers_with
from kernelnn.registry import ACTIVATIONS, CONVOLUTIONS, NEURONS

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def _activation(value: str | Callable, owner: str) -> Callable:
    if isinstance(value, str):
        return ACTIVATIONS.build(value, owner=owner, argument="base_activation")
    if isinstance(value, type) and issubclass(value, nn.Module):
        return value()
    if callable(value):
        return value
    raise ValueError(f"{owner}: base_activation={value!r} must be an activation name, an nn.Module class or a "
                     "callable")


class _KANEdges(nn.Module):
    """What every B-spline KAN layer shares: grid, coefficients, grid update, refinement, regularisation.

    Subclasses define the edge layout: :meth:`_edge_coefficients` returns the scaled spline coefficients as
    ``(n_inputs, G + k, edges per input)`` and :meth:`_set_edge_coefficients` stores such a tensor back;
    :meth:`_edge_base` gives ``|w_base|`` as ``(n_inputs, edges per input)``; :meth:`_samples` turns a layer
    input into ``(N, n_inputs)`` values.
    """

    def _init_edges(self, n_inputs: int, grid_size: int, spline_order: int, grid_range: Sequence[float],
                    base_activation, grid_eps: float, regularize_l1: float, regularize_entropy: float) -> None:
        name = type(self).__name__
        if isinstance(grid_size, bool) or not isinstance(grid_size, int) or grid_size < 1:
            raise ValueError(f"{name}: grid_size={grid_size!r} must be an int >= 1")
        if isinstance(spline_order, bool) or not isinstance(spline_order, int) or spline_order < 0:
            raise ValueError(f"{name}: spline_order={spline_order!r} must be an int >= 0")
        low, high = (float(v) for v in grid_range)
        if not high > low:
            raise ValueError(f"{name}: grid_range={tuple(grid_range)} must be (low, high) with low < high")
        if not 0 <= grid_eps <= 1:
            raise ValueError(f"{name}: grid_eps={grid_eps!r} must be in [0, 1]")
        if regularize_l1 < 0 or regularize_entropy < 0:
            raise ValueError(f"{name}: regularize_l1={regularize_l1!r} and regularize_entropy={regularize_entropy!r} "
                             "must be >= 0")
        self.grid_size, self.spline_order, self.grid_eps = grid_size, spline_order, grid_eps
        self.register_buffer("grid", uniform_grid(n_inputs, grid_size, spline_order, low, high))
        self.base_activation = _activation(base_activation, name)
        self.regularize_l1, self.regularize_entropy = regularize_l1, regularize_entropy
        # The trainer adds regularization() to the loss only when a weight is set.
        self.regularization_active = regularize_l1 > 0 or regularize_entropy > 0
        self._basis_mean: torch.Tensor | None = None
        self._base_mean: torch.Tensor | None = None

    @property
    def n_basis(self) -> int:
        return self.grid_size + self.spline_order

    def _init_spline(self, noise: torch.Tensor, scaler_shape: tuple[int, ...], scale_spline: float, fan_in: int,
                     spline_scaler: bool) -> None:
        """Coefficients from ``noise``; the spline scale ``scale_spline / sqrt(fan_in)`` learned per edge
        (``spline_scaler``) or folded into the coefficients."""
        scale = scale_spline / math.sqrt(fan_in)
        if spline_scaler:
            self.spline_weight = nn.Parameter(noise)
            self.spline_scaler = nn.Parameter(torch.full(scaler_shape, scale))
        else:
            self.spline_weight = nn.Parameter(noise * scale)
            self.register_parameter("spline_scaler", None)

    def _store_scaled(self, scaled: torch.Tensor, basis_dim: int) -> None:
        """Store refitted ``s * c`` as ``c = (s * c) / s`` so the product is the refitted spline (the step
        efficient-kan misses); a vanishing scale is reset to 1 rather than divided by."""
        if self.spline_scaler is not None:
            tiny = self.spline_scaler.abs() < 1e-8
            self.spline_scaler.data = torch.where(tiny, torch.ones_like(self.spline_scaler), self.spline_scaler)
            scaled = scaled / self.spline_scaler.unsqueeze(basis_dim)
        self.spline_weight.data = scaled.contiguous()

    def _record_statistics(self, basis: torch.Tensor, base: torch.Tensor) -> None:
        """Keep the batch means that :meth:`regularization` needs (only when it is active, in training)."""
        if self.regularization_active and self.training:
            self._basis_mean = basis.detach().reshape(-1, *basis.shape[-2:]).mean(0)
            self._base_mean = base.detach().abs().reshape(-1, basis.shape[-2]).mean(0)

    # ------------------------------------------------------------------------------------ grid changes
    @torch.no_grad()
    def update_grid(self, x: torch.Tensor, margin: float = 0.01) -> None:
        """Move the knots to the quantiles of the inputs ``x`` (any layer input), keeping the function.

        The new inner knots are ``grid_eps * uniform + (1 - grid_eps) * quantiles`` over the sample range
        widened by ``margin``; the coefficients are refitted by least squares on the samples. Samples are
        gathered across ``torch.distributed`` ranks first, so all ranks agree.
        """
        samples = gather_samples(self._samples(x).detach())
        if len(samples) < 2:
            raise ValueError(f"{type(self).__name__}.update_grid: needs at least 2 samples, got {len(samples)}")
        if not torch.isfinite(samples).all():  # one NaN would move every knot to NaN
            raise ValueError(f"{type(self).__name__}.update_grid: the samples hold "
                             f"{int((~torch.isfinite(samples)).sum())} non-finite value(s); the grid is kept")
        new_grid = adaptive_grid(samples.to(self.grid.dtype), self.grid_size, self.spline_order, self.grid_eps,
                                 margin)
        self._replace_grid(samples, new_grid)

    @torch.no_grad()
    def refine(self, new_grid_size: int, x: torch.Tensor | None = None):
        """Switch to ``new_grid_size`` intervals on the same range, keeping the function; returns ``self``.

        The new inner knots interpolate the old ones (for a multiple of the old size every old knot stays, so
        the old spline is represented exactly on the range); coefficients are refitted on ``x`` (samples of the
        layer input) or on a dense uniform sample of each input's range.
        """
        if isinstance(new_grid_size, bool) or not isinstance(new_grid_size, int) or new_grid_size < 1:
            raise ValueError(f"{type(self).__name__}.refine: new_grid_size={new_grid_size!r} must be an int >= 1")
        k = self.spline_order
        inner = self.grid[:, k: self.grid.shape[1] - k]  # (n, G + 1)
        position = torch.linspace(0, self.grid_size, new_grid_size + 1, dtype=torch.float64,
                                  device=self.grid.device)
        lower = position.floor().long().clamp(max=self.grid_size - 1)
        frac = (position - lower).to(inner.dtype)
        new_inner = inner[:, lower] * (1 - frac) + inner[:, lower + 1] * frac
        new_grid = extend_grid(new_inner, k)
        if x is None:
            count = 8 * (max(new_grid_size, self.grid_size) + k)
            t = torch.linspace(0, 1, count, dtype=inner.dtype, device=inner.device)
            samples = (inner[:, :1] + (inner[:, -1:] - inner[:, :1]) * t).T  # (count, n)
        else:
            samples = gather_samples(self._samples(x).detach())
        self._replace_grid(samples, new_grid, new_grid_size)
        return self

    def _replace_grid(self, samples: torch.Tensor, new_grid: torch.Tensor, new_grid_size: int | None = None) -> None:
        coefficients = refit_coefficients(samples, self.grid, self._edge_coefficients().detach(), new_grid,
                                          self.spline_order)
        self.grid = new_grid.to(self.grid)
        if new_grid_size is not None:
            self.grid_size = new_grid_size
        self._set_edge_coefficients(coefficients)
        self._basis_mean = None

    def _resize(self, grid_size: int) -> None:
        """Give grid and coefficients the shapes of ``grid_size`` (values are overwritten by a state dict)."""
        self.grid = torch.zeros(self.grid.shape[0], grid_size + 2 * self.spline_order + 1, dtype=self.grid.dtype,
                                device=self.grid.device)
        self.grid_size = grid_size
        edges = self._edge_coefficients().detach()
        self._set_edge_coefficients(edges.new_zeros(edges.shape[0], self.n_basis, edges.shape[2]))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # A refined layer saves a larger grid than its constructor builds: adopt that size, then load.
        grid = state_dict.get(prefix + "grid")
        if grid is not None and grid.shape[1] != self.grid.shape[1]:
            self._resize(grid.shape[1] - 2 * self.spline_order - 1)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # ------------------------------------------------------------------------------------ regularisation
    def edge_l1(self) -> torch.Tensor:
        """``|phi_e|_1`` bound per edge, ``(n_inputs, edges per input)``, from the last training batch.

        The paper's L1 of an activation is ``mean_s |phi(x_s)|``, which needs every edge's value on every sample
        (a (batch, in, out) tensor). Since B-splines are non-negative, ``|phi| <= |w_b||b(x)| + sum_j |s c_j|
        B_j(x)``, whose batch mean needs only the mean basis ``(n_inputs, G + k)``: this upper bound, tight when
        an edge's terms share a sign, is what is penalised.
        """
        if self._basis_mean is None:
            raise RuntimeError(f"{type(self).__name__}.edge_l1: run a training forward pass with regularize_l1 or "
                               "regularize_entropy > 0 first")
        spline = (self._edge_coefficients().abs() * self._basis_mean.unsqueeze(-1)).sum(1)
        return spline + self._edge_base() * self._base_mean.unsqueeze(-1)

    def regularization(self) -> torch.Tensor:
        """``regularize_l1 * sum_e |phi_e|_1 + regularize_entropy * S``, ``S = -sum_e p_e log p_e`` with
        ``p_e = |phi_e|_1 / sum |phi|_1`` (the KAN paper's sparsification penalty; see :meth:`edge_l1`)."""
        l1 = self.edge_l1()
        total = l1.sum()
        p = l1 / total.clamp_min(1e-12)
        entropy = -(p * torch.log(p.clamp_min(1e-12))).sum()
        return self.regularize_l1 * total + self.regularize_entropy * entropy


@NEURONS.register("kan")
class KANLinear(_KANEdges):
    r"""B-spline KAN layer: ``(..., in_features) -> (..., out_features)`` (see the module docstring).

    Parameters
    ----------
    in_features, out_features : int
    grid_size : int
        Intervals of each input's grid (``G``).
    spline_order : int
        B-spline order ``k`` (3: cubic).
    grid_range : (float, float)
        Initial range of every grid; inputs outside it get only the base function until :meth:`update_grid`.
    base_activation : str, nn.Module class or callable
        ``b`` (default SiLU).
    scale_noise, scale_base, scale_spline : float
        Initialisation: coefficients ``~ U(-1/2, 1/2) * scale_noise / G``, ``w_base ~ scale_base * U(-1, 1) /
        sqrt(in)``, spline scale ``scale_spline / sqrt(in)``.
    spline_scaler : bool
        Learn a separate per-edge spline scale ``s`` (otherwise it is folded into the coefficients).
    grid_eps : float
        Weight of the uniform grid in :meth:`update_grid` (0: pure quantiles).
    regularize_l1, regularize_entropy : float
        Weights of :meth:`regularization` (0 and 0: off, and the trainer skips it).

    Example
    -------
    >>> layer = KANLinear(2, 5)
    >>> layer(torch.rand(16, 2) * 2 - 1).shape
    torch.Size([16, 5])
    """

    def __init__(self, in_features: int, out_features: int, grid_size: int = 5, spline_order: int = 3,
                 grid_range: Sequence[float] = (-1.0, 1.0), base_activation: str | Callable = "silu",
                 scale_noise: float = 0.1, scale_base: float = 1.0, scale_spline: float = 1.0,
                 spline_scaler: bool = True, grid_eps: float = 0.02, regularize_l1: float = 0.0,
                 regularize_entropy: float = 0.0) -> None:
        super().__init__()
        for arg, value in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"KANLinear: {arg}={value!r} must be a positive int")
        self.in_features, self.out_features = in_features, out_features
        self._init_edges(in_features, grid_size, spline_order, grid_range, base_activation, grid_eps,
                         regularize_l1, regularize_entropy)
        self.base_weight = nn.Parameter(scale_base * (2 * torch.rand(out_features, in_features) - 1)
                                        / math.sqrt(in_features))
        noise = (torch.rand(out_features, in_features, self.n_basis) - 0.5) * scale_noise / grid_size
        self._init_spline(noise, (out_features, in_features), scale_spline, in_features, spline_scaler)
        # (out, in) bool once edges are pruned (kept in the state dict); None costs nothing in forward.
        self.register_buffer("edge_mask", None)

    def extra_repr(self) -> str:
        return (f"{self.in_features}, {self.out_features}, grid_size={self.grid_size}, "
                f"spline_order={self.spline_order}, spline_scaler={self.spline_scaler is not None}")

    def scaled_spline_weight(self) -> torch.Tensor:
        """``s_oi c_oij``: ``(out, in, G + k)``, zero on pruned edges."""
        w = self.spline_weight
        w = w if self.spline_scaler is None else w * self.spline_scaler.unsqueeze(-1)
        return w if self.edge_mask is None else w * self.edge_mask.unsqueeze(-1)

    def masked_base_weight(self) -> torch.Tensor:
        """``w_base``: ``(out, in)``, zero on pruned edges."""
        return self.base_weight if self.edge_mask is None else self.base_weight * self.edge_mask

    def check_input(self, x: torch.Tensor) -> None:
        check_float_tensor(x, "KANLinear")
        if x.dim() < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"KANLinear: input must have shape (..., {self.in_features}), got {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        lead = x.shape[:-1]
        flat = x.reshape(-1, self.in_features)
        base = self.base_activation(flat)
        basis = bspline_basis(flat, self.grid, self.spline_order)  # (N, in, G + k)
        self._record_statistics(basis, base)
        weight = self.scaled_spline_weight().to(basis.dtype)
        out = F.linear(base, self.masked_base_weight().to(base.dtype)) + F.linear(basis.flatten(1), weight.flatten(1))
        return out.reshape(*lead, self.out_features)

    # ------------------------------------------------------------------------------------ single edges
    def edge_values(self, x: torch.Tensor) -> torch.Tensor:
        """Every edge's value ``phi_oi(x_i)``: ``(..., in) -> (N, out, in)`` (``N`` samples, flattened); the
        layer's output is its sum over ``in``. For interpretation (attribution, plots, symbolic fits)."""
        self.check_input(x)
        flat = x.reshape(-1, self.in_features)
        basis = bspline_basis(flat, self.grid.to(flat.dtype), self.spline_order)  # (N, in, G + k)
        spline = torch.einsum("nij,oij->noi", basis, self.scaled_spline_weight().to(flat.dtype))
        return spline + self.base_activation(flat).unsqueeze(1) * self.masked_base_weight().to(flat.dtype)

    @torch.no_grad()
    def remove_edges(self, remove: torch.Tensor) -> None:
        """Prune the edges where ``remove (out, in)`` is true: their functions become 0 and stay 0 in training."""
        if remove.shape != (self.out_features, self.in_features):
            raise ValueError(f"KANLinear.remove_edges: remove must have shape ({self.out_features}, "
                             f"{self.in_features}), got {tuple(remove.shape)}")
        keep = ~remove.to(device=self.base_weight.device, dtype=torch.bool)
        self.edge_mask = keep if self.edge_mask is None else self.edge_mask & keep

    @torch.no_grad()
    def select(self, inputs: torch.Tensor, outputs: torch.Tensor) -> KANLinear:
        """A new layer made of the edges from ``inputs`` to ``outputs`` (index tensors), same functions."""
        layer = KANLinear(len(inputs), len(outputs), self.grid_size, self.spline_order,
                          base_activation=self.base_activation, spline_scaler=self.spline_scaler is not None,
                          grid_eps=self.grid_eps, regularize_l1=self.regularize_l1,
                          regularize_entropy=self.regularize_entropy).to(self.grid)
        layer.grid = self.grid[inputs].clone()
        layer.base_weight.copy_(self.base_weight[outputs][:, inputs])
        layer.spline_weight.copy_(self.spline_weight[outputs][:, inputs])
        if self.spline_scaler is not None:
            layer.spline_scaler.copy_(self.spline_scaler[outputs][:, inputs])
        if self.edge_mask is not None:
            layer.edge_mask = self.edge_mask[outputs][:, inputs].clone()
        return layer

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # A pruned layer saves its edge mask; a fresh layer has none until it is given one.
        if prefix + "edge_mask" in state_dict and self.edge_mask is None:
            self.edge_mask = torch.ones(self.out_features, self.in_features, dtype=torch.bool,
                                        device=self.base_weight.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # edges: input i -> outputs o
    def _samples(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(-1, self.in_features)

    def _edge_coefficients(self) -> torch.Tensor:
        return self.scaled_spline_weight().permute(1, 2, 0)

    def _edge_base(self) -> torch.Tensor:
        return self.masked_base_weight().abs().T

    def _set_edge_coefficients(self, coefficients: torch.Tensor) -> None:
        self._store_scaled(coefficients.permute(2, 0, 1), basis_dim=2)  # (out, in, G + k)


class KANConv(_KANEdges):
    """A B-spline KAN applied to every patch; use :class:`KANConv1d`, ``2d`` or ``3d``.

    Edge ``(o, c, tap)`` is a KAN edge function of the pixel of channel ``c`` at that tap; all edges of one
    input channel share its grid (translation invariance). Output ``o`` at a position sums its edges over the
    patch, exactly a KAN on the flattened (padded) patch. Arguments as :class:`torch.nn.Conv2d` (``stride``,
    ``padding``, ``dilation``, ``groups``, ``padding_mode``) plus :class:`KANLinear`'s; no bias (the splines
    carry constants).

    Shapes: ``(batch, in_channels, *spatial) -> (batch, out_channels, *spatial_out)``.

    >>> conv = KANConv2d(3, 8, 3, padding=1)
    >>> conv(torch.randn(2, 3, 16, 16)).shape
    torch.Size([2, 8, 16, 16])
    """

    dim: int = 2

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | Sequence[int], stride=1,
                 padding=0, dilation=1, groups: int = 1, padding_mode: str = "zeros", grid_size: int = 5,
                 spline_order: int = 3, grid_range: Sequence[float] = (-1.0, 1.0),
                 base_activation: str | Callable = "silu", scale_noise: float = 0.1, scale_base: float = 1.0,
                 scale_spline: float = 1.0, spline_scaler: bool = True, grid_eps: float = 0.02,
                 regularize_l1: float = 0.0, regularize_entropy: float = 0.0) -> None:
        super().__init__()
        name = type(self).__name__
        for arg, value in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: {arg}={value!r} must be a positive int")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{name}: in_channels={in_channels} and out_channels={out_channels} must be divisible "
                             f"by groups={groups}")
        check_padding_mode(padding_mode, name)
        d = self.dim
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = int_tuple(kernel_size, d, "kernel_size", name, minimum=1)
        self.stride = int_tuple(stride, d, "stride", name, minimum=1)
        self.dilation = int_tuple(dilation, d, "dilation", name, minimum=1)
        self.padding = int_tuple(padding, d, "padding", name, minimum=0)
        self.padding_mode = padding_mode
        self._init_edges(in_channels, grid_size, spline_order, grid_range, base_activation, grid_eps,
                         regularize_l1, regularize_entropy)
        c_g = in_channels // groups
        fan_in = c_g * math.prod(self.kernel_size)
        self.base_weight = nn.Parameter(scale_base * (2 * torch.rand(out_channels, c_g, *self.kernel_size) - 1)
                                        / math.sqrt(fan_in))
        noise = (torch.rand(out_channels, c_g, self.n_basis, *self.kernel_size) - 0.5) * scale_noise / grid_size
        self._init_spline(noise, (out_channels, c_g, *self.kernel_size), scale_spline, fan_in, spline_scaler)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"grid_size={self.grid_size}, spline_order={self.spline_order}")

    def scaled_spline_weight(self) -> torch.Tensor:
        """``(out, in / groups, G + k, *kernel)``."""
        w = self.spline_weight
        return w if self.spline_scaler is None else w * self.spline_scaler.unsqueeze(2)

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        return pad(x, [(p, p) for p in self.padding], self.padding_mode)

    def check_input(self, x: torch.Tensor) -> None:
        check_float_tensor(x, type(self).__name__)
        if x.dim() != self.dim + 2 or x.shape[1] != self.in_channels:
            raise ValueError(f"{type(self).__name__}: input must have shape (batch, {self.in_channels}, "
                             f"{', '.join('n' * self.dim)}), got {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        # Pad first so padded pixels go through the edge functions like any other (a KAN on padded patches).
        xp = self._pad(x)
        channels_last = xp.movedim(1, -1)  # (N, *S, C)
        base = self.base_activation(xp)
        basis = bspline_basis(channels_last, self.grid, self.spline_order)  # (N, *S, C, G + k)
        self._record_statistics(basis, base.movedim(1, -1))
        basis = basis.flatten(-2).movedim(-1, 1)  # (N, C (G + k), *S): channel-major, as the weight
        weight = self.scaled_spline_weight().to(basis.dtype).flatten(1, 2)
        conv = _CONV[self.dim]
        return (conv(base, self.base_weight.to(base.dtype), None, self.stride, 0, self.dilation, self.groups)
                + conv(basis, weight, None, self.stride, 0, self.dilation, self.groups))

    # edges of input channel c: (outputs of its group) x taps
    def _samples(self, x: torch.Tensor) -> torch.Tensor:
        return self._pad(x).movedim(1, -1).reshape(-1, self.in_channels)

    def _grouped(self, w: torch.Tensor) -> torch.Tensor:
        """``(O, C_g, *rest)`` -> ``(C, O_g, *rest)``: per input channel, the outputs of its group."""
        g = self.groups
        w = w.unflatten(0, (g, -1)).transpose(1, 2)  # (g, C_g, O_g, *rest)
        return w.flatten(0, 1)

    def _ungrouped(self, w: torch.Tensor) -> torch.Tensor:
        g = self.groups
        return w.unflatten(0, (g, -1)).transpose(1, 2).flatten(0, 1)

    def _edge_coefficients(self) -> torch.Tensor:
        w = self._grouped(self.scaled_spline_weight())  # (C, O_g, G + k, *kernel)
        return w.movedim(2, 1).flatten(2)  # (C, G + k, O_g * taps)

    def _edge_base(self) -> torch.Tensor:
        return self._grouped(self.base_weight.abs()).flatten(1)  # (C, O_g * taps)

    def _set_edge_coefficients(self, coefficients: torch.Tensor) -> None:
        w = coefficients.unflatten(2, (self.out_channels // self.groups, *self.kernel_size)).movedim(1, 2)
        self._store_scaled(self._ungrouped(w), basis_dim=2)  # (O, C_g, G + k, *kernel)


class KANConv1d(KANConv):
    dim = 1


class KANConv2d(KANConv):
    dim = 2


class KANConv3d(KANConv):
    dim = 3


@torch.no_grad()
def update_grids(model: nn.Module, x: torch.Tensor, margin: float = 0.01) -> int:
    """:meth:`~KANLinear.update_grid` of every KAN layer of ``model`` on the inputs it sees in ``model(x)``.

    Layers are updated in order, each on the activations of the layers before it after their update (as
    pykan's ``update_grid_from_samples``). Returns how many layers were updated.
    """
    updated = 0
    for layer in layers_with(model, GridAdaptive).values():
        seen = layer_input(model, layer, x)
        if seen is not None:
            layer.update_grid(seen, margin=margin)
            updated += 1
    return updated


@CONVOLUTIONS.register("kan")
def kan_conv(in_channels: int, out_channels: int, kernel_size, dim: int = 2, **args) -> KANConv:
    """A KAN convolution of ``dim`` spatial dims, for ``model.conv=kan``."""
    return {1: KANConv1d, 2: KANConv2d, 3: KANConv3d}[dim](in_channels, out_channels, kernel_size, **args)
