r"""B-spline machinery of KAN layers: extended grids, the basis with a lean backward, and function-keeping refits.

A KAN edge on input ``i`` is a spline ``sum_j c_j B_j(x)`` of order ``k`` on the extended grid
``t_0 < ... < t_{G+2k}`` of that input (``G`` intervals inside the range, ``k`` more on each side), so there
are ``G + k`` basis functions. :func:`bspline_basis` evaluates them by the Cox-de Boor recursion; its custom
backward saves only ``x`` and recomputes the order ``k-1`` basis for the derivative
``B'_{j,k} = k (B_{j,k-1} / (t_{j+k} - t_j) - B_{j+1,k-1} / (t_{j+k+1} - t_{j+1}))``, so none of the ``k``
intermediate levels is kept for backward. Both run as ``torch.compile``-fused loops when a compiler is available.

Grid updates and refinements change the knots; :func:`refit_coefficients` then finds the coefficients on the
new grid that best reproduce (least squares) the old splines on sample points, so the layer's function is kept.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable

import torch
import torch.distributed as dist


def uniform_grid(n_inputs: int, grid_size: int, order: int, low: float, high: float,
                 dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``(n_inputs, grid_size + 2 order + 1)`` knots: ``grid_size`` equal intervals on ``[low, high]``,
    extended by ``order`` intervals of the same width on each side."""
    step = (high - low) / grid_size
    knots = torch.arange(-order, grid_size + order + 1, dtype=torch.float64) * step + low
    return knots.to(dtype).expand(n_inputs, -1).contiguous()


def extend_grid(inner: torch.Tensor, order: int) -> torch.Tensor:
    """Inner knots ``(n, G + 1)`` extended by ``order`` knots on each side, spaced as the end intervals."""
    left_step = inner[:, 1:2] - inner[:, :1]
    right_step = inner[:, -1:] - inner[:, -2:-1]
    steps = torch.arange(1, order + 1, dtype=inner.dtype, device=inner.device)
    left = inner[:, :1] - left_step * steps.flip(0)
    right = inner[:, -1:] + right_step * steps
    return torch.cat([left, inner, right], dim=1)


def _basis(x: torch.Tensor, grid: torch.Tensor, order: int) -> torch.Tensor:
    """Cox-de Boor: ``x (B, n)``, ``grid (n, m)`` -> ``(B, n, m - 1 - order)``."""
    x = x.unsqueeze(-1)
    bases = ((x >= grid[:, :-1]) & (x < grid[:, 1:])).to(x.dtype)
    for k in range(1, order + 1):
        left = (x - grid[:, : -(k + 1)]) / (grid[:, k:-1] - grid[:, : -(k + 1)])
        right = (grid[:, k + 1:] - x) / (grid[:, k + 1:] - grid[:, 1:-k])
        bases = left * bases[..., :-1] + right * bases[..., 1:]
    return bases


def _basis_gradient(x: torch.Tensor, grid: torch.Tensor, order: int, grad: torch.Tensor) -> torch.Tensor:
    """``sum_j grad[..., j] dB_{j,k}/dx`` from the order ``k - 1`` basis:
    ``B'_{j,k} = k (B_{j,k-1} / (t_{j+k} - t_j) - B_{j+1,k-1} / (t_{j+k+1} - t_{j+1}))``."""
    k = order
    lower = _basis(x, grid, k - 1)  # (B, n, G + k + 1)
    left = lower[..., :-1] / (grid[:, k:-1] - grid[:, : -(k + 1)])
    right = lower[..., 1:] / (grid[:, k + 1:] - grid[:, 1:-k])
    return k * (grad * (left - right)).sum(-1)


# The recursion is a dozen element-wise passes over (batch, inputs, G + 2k) tensors; torch.compile fuses them
# into one loop (measured 14x faster on CPU at 1024 x 256), compiled once per dtype and order with dynamic shapes.
# Set KERNELNN_COMPILE_BASIS=0, or lack a C++ compiler, and the eager functions run instead.
_COMPILED: dict[str, Callable | None] = {}


def fused_kernel(name: str, fn: Callable) -> Callable:
    """``fn`` compiled by ``torch.compile`` (dynamic shapes, once per ``name``), or ``fn`` itself inside a user's
    compile, with ``KERNELNN_COMPILE_BASIS=0``, or after compiling failed once (with a warning). Element-wise
    kernels of custom autograd functions use it: the B-spline basis here, ReLU-KAN's bumps."""
    if os.environ.get("KERNELNN_COMPILE_BASIS", "1") == "0" or torch.compiler.is_compiling():
        return fn  # inside a user's torch.compile, dynamo traces the eager function itself
    if name not in _COMPILED:
        _COMPILED[name] = torch.compile(fn, dynamic=True)
    compiled = _COMPILED[name]
    if compiled is None:
        return fn

    def call(*args):
        try:
            return compiled(*args)
        except Exception as err:  # no compiler, unsupported platform: fall back for good, once
            warnings.warn(f"kernelnn: compiling the {name} kernel failed ({type(err).__name__}: {err}); using "
                          "the eager version", RuntimeWarning, stacklevel=3)
            _COMPILED[name] = None
            return fn(*args)

    return call


class _BSplineBasis(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, grid, order):
        ctx.save_for_backward(x, grid)
        ctx.order = order
        return fused_kernel("B-spline basis", _basis)(x, grid, order)

    @staticmethod
    def backward(ctx, grad):
        x, grid = ctx.saved_tensors
        if ctx.order == 0:  # piecewise constant: zero derivative almost everywhere
            return torch.zeros_like(x), None, None
        return fused_kernel("B-spline gradient", _basis_gradient)(x, grid, ctx.order, grad), None, None


def bspline_basis(x: torch.Tensor, grid: torch.Tensor, order: int) -> torch.Tensor:
    """B-spline basis of ``order`` on per-input knots: ``x (..., n)``, ``grid (n, m)`` -> ``(..., n, m-1-order)``.

    Zero outside ``[grid[:, 0], grid[:, -1])``; inside ``[grid[:, order], grid[:, -order-1]]`` the functions sum
    to one. Differentiable in ``x`` (not in the grid), saving only ``x`` for backward.
    """
    lead = x.shape[:-1]
    basis = _BSplineBasis.apply(x.reshape(-1, x.shape[-1]), grid.to(x.dtype).contiguous(), order)
    return basis.reshape(*lead, *basis.shape[-2:])


def gather_samples(x: torch.Tensor) -> torch.Tensor:
    """All ranks' samples ``(N_r, n)`` concatenated in rank order (``x`` itself without torch.distributed), so a
    grid computed from them is the same on every rank."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    x = x.contiguous()
    sizes = [torch.zeros(1, dtype=torch.long, device=x.device) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, torch.tensor([len(x)], device=x.device))
    longest = int(max(s.item() for s in sizes))
    padded = torch.zeros(longest, *x.shape[1:], dtype=x.dtype, device=x.device)
    padded[: len(x)] = x
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded)
    return torch.cat([p[: int(s.item())] for p, s in zip(parts, sizes, strict=True)])


def adaptive_grid(x: torch.Tensor, grid_size: int, order: int, grid_eps: float, margin: float) -> torch.Tensor:
    """KAN's grid update: inner knots at sample quantiles of ``x (N, n)``, mixed with a uniform grid over the
    sample range (plus ``margin``) as ``grid_eps * uniform + (1 - grid_eps) * quantiles``, then extended."""
    ordered = x.sort(dim=0).values
    positions = torch.linspace(0, len(x) - 1, grid_size + 1, device=x.device).round().long()
    quantiles = ordered[positions].T  # (n, G + 1)
    low, high = ordered[0] - margin, ordered[-1] + margin
    fractions = torch.linspace(0, 1, grid_size + 1, dtype=x.dtype, device=x.device)
    uniform = low[:, None] + (high - low)[:, None] * fractions
    inner = grid_eps * uniform + (1 - grid_eps) * quantiles
    inner[:, 0], inner[:, -1] = uniform[:, 0], uniform[:, -1]  # the range always includes every sample
    return extend_grid(inner, order)


def refit_coefficients(samples: torch.Tensor, old_grid: torch.Tensor, coefficients: torch.Tensor,
                       new_grid: torch.Tensor, order: int, ridge: float = 1e-10) -> torch.Tensor:
    """Coefficients on ``new_grid`` reproducing the splines ``coefficients (n, G_old + k, M)`` on ``old_grid``.

    ``samples (N, n)``: where the old functions are matched, per input (``M`` splines per input: one per edge).
    Solved per input by least squares (normal equations in float64 with a tiny ridge, so knot intervals
    without samples stay finite). Returns ``(n, G_new + k, M)`` in the dtype of ``coefficients``.
    """
    x = samples.double()
    old = bspline_basis(x, old_grid.double(), order).transpose(0, 1)  # (n, N, G_old + k)
    targets = old @ coefficients.double()  # (n, N, M)
    new = bspline_basis(x, new_grid.double(), order).transpose(0, 1)  # (n, N, G_new + k)
    gram = new.transpose(1, 2) @ new
    scale = gram.diagonal(dim1=1, dim2=2).mean(-1).clamp_min(1e-30)
    eye = torch.eye(gram.shape[-1], dtype=gram.dtype, device=gram.device)
    gram = gram + ridge * scale[:, None, None] * eye
    solution = torch.linalg.solve(gram, new.transpose(1, 2) @ targets)
    return solution.to(coefficients.dtype)
