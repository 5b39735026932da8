r"""DeepONet (Lu, Jin, Pang, Zhang, Karniadakis, Nature Machine Intelligence 2021): an operator as a sum of
products of a *branch* net, which sees the input function at ``m`` fixed sensors, and a *trunk* net, which sees
the query point ``y``:

.. math::  G(u)(y)_c \approx \sum_{k=1}^{p} b_{c,k}\big(u(x_1), \dots, u(x_m)\big)\, t_k(y) + b_{0,c}.

Variants (the paper's Fig. 1 and Lu et al. 2022, "A comprehensive and fair comparison of two neural operators"):

- ``"unstacked"``: one branch net with ``p * out_channels`` outputs (the paper's recommended form);
- ``"stacked"``: ``p`` independent branch nets, each with ``out_channels`` outputs;
- ``"pod"``: POD-DeepONet: the trunk is replaced by the leading POD modes of the training outputs (and their
  mean replaces the bias), fitted once from data with :meth:`DeepONet.fit_output_basis` (the ``pod_basis``
  training plugin does this before training).

Branch and trunk are :class:`~kernelnn.models.MLP`\ s whose hidden layers may be any neuron of
:data:`kernelnn.registry.NEURONS` (KAN, RBF, quadratic, ...). As in DeepXDE, the trunk's output is activated,
the branch's is not.

Sensors and queries live on ``[0, 1)^d`` with the grid convention of every kernelnn field model: a grid of
``N`` points per axis has the points ``i / N``. For a grid input, the sensors are a grid of ``s`` points per axis
(``n_sensors = s^d``); a finer grid whose size is a multiple of ``s`` is subsampled onto them exactly, any other
grid is linearly interpolated (clamped at the far edge).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from kernelnn.layers.input_checks import check_dtype_matches, check_positive_ints
from kernelnn.models.fno import grid_coordinates
from kernelnn.models.mlp import MLP
from kernelnn.registry import ACTIVATIONS

VARIANTS = ("unstacked", "stacked", "pod")


class DeepONet(nn.Module):
    """Branch net on sensor values times trunk net on query coordinates, summed over ``width`` terms.

    Parameters
    ----------
    n_sensors : int
        Number of sensors ``m`` the branch net sees (per input channel).
    coord_dim : int
        Dimension ``d`` of the query coordinates (and of a grid input).
    in_channels, out_channels : int
        Channels of the input function and of the output.
    width : int
        Hidden width of both nets and the number ``p`` of terms in the sum (POD modes for ``"pod"``).
    branch_depth, trunk_depth : int
        Layers of each net (``depth - 1`` hidden layers of ``width``, then the output layer).
    neuron, branch_neuron, trunk_neuron : str
        Hidden-layer type from :data:`kernelnn.registry.NEURONS`; ``branch_neuron`` / ``trunk_neuron`` override
        ``neuron`` for one net.
    activation : str
        From :data:`kernelnn.registry.ACTIVATIONS` (the paper uses ReLU for its first experiments).
    variant : str
        ``"unstacked"``, ``"stacked"`` or ``"pod"`` (module docstring).
    n_outputs : int, optional
        ``"pod"`` only: points of the output grid the basis is fitted on (default: ``n_sensors``).
    neuron_options : dict, optional
        Keyword arguments of the hidden layers' constructor.

    Shapes
    ------
    ``forward(u, coords)``: ``u`` is ``(batch, in_channels, n_sensors)`` (values at the sensors) or a grid
    ``(batch, in_channels, *spatial)`` with ``d`` spatial dims; ``coords`` is ``(batch or 1, n_queries, d)`` in
    ``[0, 1)^d``; the output is ``(batch, n_queries, out_channels)``. Without ``coords`` a grid input is answered
    on its own grid, ``(batch, out_channels, *spatial)``, so DeepONet trains like any field model and is evaluated
    at any resolution.
    """

    def __init__(
        self,
        n_sensors: int,
        coord_dim: int,
        in_channels: int = 1,
        out_channels: int = 1,
        width: int = 128,
        branch_depth: int = 3,
        trunk_depth: int = 3,
        neuron: str = "linear",
        branch_neuron: str | None = None,
        trunk_neuron: str | None = None,
        activation: str = "relu",
        variant: str = "unstacked",
        n_outputs: int | None = None,
        neuron_options: dict | None = None,
    ) -> None:
        super().__init__()
        check_positive_ints("DeepONet", n_sensors=n_sensors, coord_dim=coord_dim, in_channels=in_channels,
                            out_channels=out_channels, width=width, branch_depth=branch_depth, trunk_depth=trunk_depth)
        if variant not in VARIANTS:
            raise ValueError(f"DeepONet: variant={variant!r}; valid: {', '.join(VARIANTS)}")
        if n_outputs is not None:
            if variant != "pod":
                raise ValueError(f"DeepONet: n_outputs={n_outputs!r} is for variant='pod' only")
            check_positive_ints("DeepONet", n_outputs=n_outputs)
        self.n_sensors, self.coord_dim = n_sensors, coord_dim
        self.in_channels, self.out_channels, self.width, self.variant = in_channels, out_channels, width, variant
        side = round(n_sensors ** (1 / coord_dim))
        self.sensor_shape = (side,) * coord_dim if side**coord_dim == n_sensors else None  # None: no grid input
        options = neuron_options or {}

        def net(n_in: int, n_out: int, depth: int, kind: str | None) -> MLP:
            return MLP(n_in, n_out, hidden=[width] * (depth - 1), activation=activation, neuron=kind or neuron,
                       neuron_options=options)

        features = in_channels * n_sensors
        if variant == "stacked":
            self.branches = nn.ModuleList(net(features, out_channels, branch_depth, branch_neuron)
                                          for _ in range(width))
        else:
            self.branch = net(features, width * out_channels, branch_depth, branch_neuron)
        if variant == "pod":
            points = n_outputs or n_sensors
            side = round(points ** (1 / coord_dim))
            if side**coord_dim != points:
                raise ValueError(f"DeepONet: variant='pod' needs a grid of outputs; n_outputs={points} is not a "
                                 f"{coord_dim}-th power")
            self.output_shape = (side,) * coord_dim
            # modes (out_channels, width, *grid) and mean (out_channels, *grid), set by fit_output_basis
            self.register_buffer("basis", torch.zeros(out_channels, width, *self.output_shape))
            self.register_buffer("mean", torch.zeros(out_channels, *self.output_shape))
        else:
            self.trunk = net(coord_dim, width, trunk_depth, trunk_neuron)
            self.trunk_activation = ACTIVATIONS.build(activation, owner="DeepONet", argument="activation")
            self.bias = nn.Parameter(torch.zeros(out_channels))

    def extra_repr(self) -> str:
        return (f"n_sensors={self.n_sensors}, coord_dim={self.coord_dim}, in_channels={self.in_channels}, "
                f"out_channels={self.out_channels}, width={self.width}, variant={self.variant!r}")

    # ------------------------------------------------------------------------------------------ input checks
    def check_input(self, u: torch.Tensor, coords: torch.Tensor | None = None) -> None:
        """Raise ``TypeError``/``ValueError`` unless ``u`` is sensor values or a grid, and ``coords`` queries."""
        if not isinstance(u, torch.Tensor) or not u.is_floating_point():
            raise TypeError(f"DeepONet: u must be a floating-point torch.Tensor, got "
                            f"{getattr(u, 'dtype', type(u).__name__)}")
        check_dtype_matches(u, self, "DeepONet", "u")
        at_sensors = u.dim() == 3 and u.shape[2] == self.n_sensors
        on_grid = u.dim() == 2 + self.coord_dim and self.sensor_shape is not None
        if u.dim() < 3 or u.shape[1] != self.in_channels or not (at_sensors or on_grid):
            grid = (f" or a grid (batch, {self.in_channels}, {', '.join('n' * self.coord_dim)})"
                    if self.sensor_shape is not None else "")
            raise ValueError(f"DeepONet: u must be (batch, {self.in_channels}, {self.n_sensors}) at the sensors"
                             f"{grid}, got {tuple(u.shape)} (built for n_sensors={self.n_sensors}, coord_dim="
                             f"{self.coord_dim})")
        if coords is None:
            if not on_grid and self.coord_dim != 1:
                raise ValueError("DeepONet: without coords the input must be a grid (the output is given on it)")
            return
        if not isinstance(coords, torch.Tensor) or not coords.is_floating_point():
            raise TypeError(f"DeepONet: coords must be a floating-point torch.Tensor, got "
                            f"{getattr(coords, 'dtype', type(coords).__name__)}")
        if coords.dim() != 3 or coords.shape[2] != self.coord_dim or coords.shape[0] not in (1, u.shape[0]):
            raise ValueError(f"DeepONet: coords must be (batch or 1, n_queries, {self.coord_dim}) for a batch of "
                             f"{u.shape[0]}, got {tuple(coords.shape)} (built for coord_dim={self.coord_dim})")

    # ------------------------------------------------------------------------------------------ forward
    def sensor_values(self, u: torch.Tensor) -> torch.Tensor:
        """``(batch, in_channels * n_sensors)``: the input at the sensors, flattened for the branch net."""
        if u.dim() == 3 and u.shape[2] == self.n_sensors:
            return u.flatten(1)
        return resample(u, self.sensor_shape).flatten(1)

    def coefficients(self, u: torch.Tensor) -> torch.Tensor:
        """The branch outputs ``b``: ``(batch, out_channels, width)``."""
        values = self.sensor_values(u)
        if self.variant == "stacked":
            return torch.stack([branch(values) for branch in self.branches], dim=-1)
        return self.branch(values).unflatten(1, (self.out_channels, self.width))

    def forward(self, u: torch.Tensor, coords: torch.Tensor | None = None) -> torch.Tensor:
        self.check_input(u, coords)
        b = self.coefficients(u)  # (B, C, p)
        if coords is None:
            spatial = u.shape[2:]
            grid = grid_coordinates(spatial, u).flatten(1).T[None]  # (1, Q, d)
            return self._answer(b, grid, spatial).transpose(1, 2).unflatten(2, spatial)
        return self._answer(b, coords, None)

    def _answer(self, b: torch.Tensor, coords: torch.Tensor, grid: Sequence[int] | None) -> torch.Tensor:
        """``(batch, n_queries, out_channels)`` from the coefficients and the queries."""
        if self.variant == "pod":
            basis, mean = self._basis_at(coords, grid)  # (C, p, Q), (C, Q)
            return (torch.einsum("bcp,cpq->bqc", b, basis) + mean.T).to(b.dtype)
        t = self.trunk_activation(self.trunk(coords.to(b.dtype)))  # (B or 1, Q, p)
        return torch.einsum("bcp,bqp->bqc", b, t.expand(b.shape[0], -1, -1)) + self.bias

    # ------------------------------------------------------------------------------------------ POD
    @torch.no_grad()
    def fit_output_basis(self, y: torch.Tensor) -> bool:
        """POD of training outputs ``y`` (``(n, out_channels, *grid)``, as the model is trained on): the mean and
        the leading ``width`` modes of each channel, scaled to unit mean square over the grid. Returns whether it
        fitted (only ``variant="pod"`` has a basis)."""
        if self.variant != "pod":
            return False
        if y.dim() != 2 + self.coord_dim or y.shape[1] != self.out_channels or tuple(y.shape[2:]) != \
                self.output_shape:
            raise ValueError(f"DeepONet: fit_output_basis needs outputs (n, {self.out_channels}, "
                             f"{', '.join(map(str, self.output_shape))}), got {tuple(y.shape)}")
        points = math.prod(self.output_shape)
        values = y.detach().to(torch.float64).flatten(2)  # (n, C, P)
        mean = values.mean(0)
        modes = []
        for c in range(self.out_channels):
            _, _, vh = torch.linalg.svd(values[:, c] - mean[c], full_matrices=False)
            kept = vh[: self.width] * math.sqrt(points)
            modes.append(F.pad(kept, (0, 0, 0, self.width - len(kept))))  # fewer samples than modes: zero modes
        self.basis.copy_(torch.stack(modes).unflatten(2, self.output_shape))
        self.mean.copy_(mean.unflatten(1, self.output_shape))
        return True

    def _basis_at(self, coords: torch.Tensor, grid: Sequence[int] | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Modes ``(C, p, Q)`` and mean ``(C, Q)`` at the queries: read off on the fitted grid, else interpolated."""
        stacked = torch.cat([self.basis, self.mean[:, None]], dim=1)  # (C, p + 1, *grid)
        if grid is not None and tuple(grid) == self.output_shape:
            values = stacked.flatten(2)
        elif coords.shape[0] != 1:
            raise ValueError("DeepONet: variant='pod' answers the same queries for the whole batch; give coords of "
                             "shape (1, n_queries, d)")
        else:
            values = interpolate(stacked, coords[0].to(stacked.dtype))
        return values[:, :-1], values[:, -1]


def resample(u: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """A grid ``(batch, C, *spatial)`` on the grid of ``shape`` (points ``i / N``): subsampled where each size is a
    multiple of the target, linearly interpolated otherwise."""
    spatial = u.shape[2:]
    if all(n % s == 0 for n, s in zip(spatial, shape, strict=True)):
        return u[(..., *(slice(None, None, n // s) for n, s in zip(spatial, shape, strict=True)))]
    coords = grid_coordinates(shape, u).flatten(1).T  # (S, d)
    return interpolate(u, coords).unflatten(2, tuple(shape))


def interpolate(values: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Multilinear interpolation of grids ``(batch, C, *spatial)`` (points ``i / N``) at ``coords (Q, d)`` in
    ``[0, 1)^d``: ``(batch, C, Q)``; beyond the last grid point the value is clamped."""
    d = coords.shape[1]
    spatial = values.shape[2:]
    # grid_sample's align_corners=True puts -1 / +1 on the first / last point; its coordinates run (x, y, z).
    scaled = torch.stack([coords[:, i] * n / max(n - 1, 1) * 2 - 1 for i, n in enumerate(spatial)], dim=-1)
    grid = scaled.flip(-1).to(values.dtype)
    if d == 1:  # as a 2-D grid of height 1: (x, y) = (the coordinate, 0)
        values, grid = values[:, :, None], torch.cat([grid, torch.zeros_like(grid)], -1)
    grid = grid.reshape(1, len(coords), *([1] * (max(d, 2) - 1)), max(d, 2)).expand(values.shape[0], *[-1] *
                                                                                     (max(d, 2) + 1))
    out = F.grid_sample(values, grid, mode="bilinear", padding_mode="border", align_corners=True)
    return out.reshape(values.shape[0], values.shape[1], len(coords))
