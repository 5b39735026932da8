r"""ReLU-KAN: a Kolmogorov-Arnold layer whose basis needs only ReLU, products and a matmul.

Source: Qiu, Zhu, Lu, Li, Ma & Yan, "ReLU-KAN: New Kolmogorov-Arnold Networks that Only Need Matrix Addition,
Dot Multiplication, and ReLU" (2024; the authors' code is ``quiqi/relu_kan``). Each input ``x_d`` is expanded in
``n = G + k`` bumps on a grid of ``G`` intervals of width ``h = (high - low) / G``,

.. math::
    R_{di}(x) = \Bigl[\operatorname{relu}(e_{di} - x)\, \operatorname{relu}(x - s_{di})\,
                \frac{4}{(e_i^0 - s_i^0)^2}\Bigr]^2, \qquad s^0_i = low + (i - k) h, \quad e^0_i = s^0_i + (k + 1) h,

each a bump of height 1 at the middle of its support ``[s, e]`` (``16 / (e - s)^4`` in the paper's notation, with
the constant fixed at the initial width as in the authors' code), and the layer is one linear map of the ``D n``
bump values with a bias: ``y = W vec(R(x)) + b`` (the authors' ``Conv2d`` over the whole ``(n, D)`` matrix is
exactly this). The phases ``s, e`` start on the grid and train (the authors' default), one pair of rows per input.
There is no base branch and no normalisation. The authors' grid covers ``[0, 1]`` (``grid_range=(0, 1)``); the
default here is ``[-1, 1]``, as for kernelnn's other KAN layers.

Shapes: ``(..., in_features) -> (..., out_features)``. Parameters: ``out D n + out + 2 D n``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from kernelnn.layers.bspline import fused_kernel
from kernelnn.layers.input_checks import check_float_tensor, check_interval, check_positive_ints
from kernelnn.registry import NEURONS


def bump_phases(grid_size: int, order: int, low: float, high: float, owner: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``G + k`` bumps' ends ``s_i = low + (i - k) h``, ``e_i = s_i + (k + 1) h``, ``h = (high - low) / G``: the
    authors' grid on ``[0, 1]``, moved to ``[low, high]``. Shared with AF-KAN."""
    if isinstance(order, bool) or not isinstance(order, int) or order < 0:
        raise ValueError(f"{owner}: order={order!r} must be an int >= 0")
    step = (high - low) / grid_size
    start = low + (torch.arange(grid_size + order, dtype=torch.float64) - order) * step
    return start.float(), (start + (order + 1) * step).float()


def _bumps(x: torch.Tensor, start: torch.Tensor, end: torch.Tensor, scale: float) -> torch.Tensor:
    x = x.unsqueeze(-1)
    return (F.relu(x - start) * F.relu(end - x) * scale).square()


def _bumps_gradient(x: torch.Tensor, start: torch.Tensor, end: torch.Tensor, scale: float, grad: torch.Tensor):
    x = x.unsqueeze(-1)
    a, b = F.relu(x - start), F.relu(end - x)
    common = 2 * scale * scale * a * b * grad  # d(bump)/d(ab) times the incoming gradient
    from_start = common * b * (x > start)  # d/dx relu(x - s) = 1[x > s], as torch's relu
    from_end = common * a * (x < end)
    return (from_start - from_end).sum(-1), -from_start.sum(0), from_end.sum(0)


class _Bumps(torch.autograd.Function):
    """The bumps ``(N, D, n)`` of ``x (N, D)``, saving only ``x`` and the phases for backward (eager autograd keeps
    four ``(N, D, n)`` tensors); forward and backward each one fused loop when ``torch.compile`` is available."""

    @staticmethod
    def forward(ctx, x, start, end, scale):
        ctx.save_for_backward(x, start, end)
        ctx.scale = scale
        return fused_kernel("ReLU-KAN bumps", _bumps)(x, start, end, scale)

    @staticmethod
    def backward(ctx, grad):
        x, start, end = ctx.saved_tensors
        gradient = fused_kernel("ReLU-KAN bump gradient", _bumps_gradient)
        grad_x, grad_start, grad_end = gradient(x, start, end, ctx.scale, grad)
        return grad_x, grad_start, grad_end, None


@NEURONS.register("relu_kan")
class ReLUKANLinear(nn.Module):
    """ReLU-KAN layer (see the module docstring).

    Parameters
    ----------
    in_features, out_features : int
    grid_size : int
        ``G``, intervals of the grid over ``grid_range``.
    order : int
        ``k``: each bump spans ``k + 1`` intervals; ``G + k`` bumps per input.
    grid_range : (float, float)
        Where the inputs are expected (the bumps cover ``k`` intervals beyond each end).
    train_phases : bool
        Learn the bumps' ends ``s, e`` (the authors' default).

    Example
    -------
    >>> layer = ReLUKANLinear(4, 3, grid_size=5, order=3)
    >>> layer(torch.rand(10, 4)).shape
    torch.Size([10, 3])
    """

    def __init__(self, in_features: int, out_features: int, grid_size: int = 5, order: int = 3,
                 grid_range: Sequence[float] = (-1.0, 1.0), train_phases: bool = True) -> None:
        super().__init__()
        check_positive_ints("ReLUKANLinear", in_features=in_features, out_features=out_features,
                            grid_size=grid_size)
        low, high = check_interval("ReLUKANLinear", "grid_range", grid_range)
        self.in_features, self.out_features = in_features, out_features
        self.grid_size, self.order, self.grid_range = grid_size, order, (low, high)
        start, end = bump_phases(grid_size, order, low, high, "ReLUKANLinear")
        n = grid_size + order
        self.start = nn.Parameter(start.expand(in_features, n).clone(), requires_grad=train_phases)
        self.end = nn.Parameter(end.expand(in_features, n).clone(), requires_grad=train_phases)
        self.scale = 4 / (end[0] - start[0]).item() ** 2  # peak 1: (width / 2)^2 * scale = 1
        self.linear = nn.Linear(in_features * n, out_features)  # torch's init: U(+-1/sqrt(D n)), as the authors'

    @property
    def n_basis(self) -> int:
        return self.grid_size + self.order

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, grid_size={self.grid_size}, "
                f"order={self.order}, grid_range={self.grid_range}, train_phases={self.start.requires_grad}")

    def basis(self, x: torch.Tensor) -> torch.Tensor:
        """``R(x)``: ``(..., D, G + k)`` bump values of ``x (..., D)``."""
        lead = x.shape[:-1]
        bumps = _Bumps.apply(x.reshape(-1, self.in_features), self.start.to(x.dtype), self.end.to(x.dtype),
                             self.scale)
        return bumps.reshape(*lead, *bumps.shape[-2:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_float_tensor(x, "ReLUKANLinear")
        if x.dim() < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"ReLUKANLinear: input must have shape (..., {self.in_features}), got {tuple(x.shape)}")
        basis = self.basis(x).flatten(-2)
        return F.linear(basis, self.linear.weight.to(basis.dtype), self.linear.bias.to(basis.dtype))
