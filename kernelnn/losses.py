"""Losses for operator learning on fields ``(batch, channels, *spatial)`` over the unit domain ``[0, 1]^d``.

Every loss is per-sample (norms over channels and space), then reduced over the batch with
``reduction="mean" | "sum" | "none"``; ``mean`` makes a loss independent of the batch size, which the
training loop relies on for gradient accumulation and DDP.
"""

from __future__ import annotations

import torch
from torch import nn

_REDUCTIONS = ("mean", "sum", "none")


def _reduce(values: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return values.mean()
    if reduction == "sum":
        return values.sum()
    return values


def _check_pair(name: str, pred: torch.Tensor, target: torch.Tensor, min_dim: int = 2) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"{name}: prediction shape {tuple(pred.shape)} != target shape {tuple(target.shape)}")
    if pred.dim() < min_dim:
        raise ValueError(f"{name}: inputs must be (batch, channels, *spatial), got shape {tuple(pred.shape)}")


class LpLoss(nn.Module):
    r"""Per-sample :math:`L^p` error, relative by default.

    Absolute: :math:`\|e\|_{L^p} = (\int_{[0,1]^d} \sum_c |e_c(x)|^p dx)^{1/p}`, the integral approximated by
    the grid mean (so the value does not depend on the resolution). Relative: :math:`\|e\|_p / \|u\|_p` with
    :math:`u` the target.

    Shapes: ``pred``, ``target`` ``(batch, ...)``; output a scalar, or ``(batch,)`` for ``reduction="none"``.
    """

    def __init__(self, p: float = 2.0, relative: bool = True, reduction: str = "mean", eps: float = 1e-12) -> None:
        super().__init__()
        if p <= 0:
            raise ValueError(f"LpLoss: p={p} must be positive")
        if reduction not in _REDUCTIONS:
            raise ValueError(f"LpLoss: reduction={reduction!r} is not one of {_REDUCTIONS}")
        self.p, self.relative, self.reduction, self.eps = float(p), relative, reduction, eps

    def extra_repr(self) -> str:
        return f"p={self.p}, relative={self.relative}, reduction={self.reduction!r}"

    def _norm(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        channels_spatial = x.shape[1]
        # Grid mean of sum over channels == sum over all entries / number of grid points; the grid size
        # cancels in the relative error, so dividing by the total count is only a constant for abs mode.
        return (x.abs().pow(self.p).sum(1) / channels_spatial).pow(1.0 / self.p)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _check_pair("LpLoss", pred, target)
        err = self._norm(pred - target)
        if self.relative:
            err = err / (self._norm(target) + self.eps)
        return _reduce(err, self.reduction)


def _gradients(u: torch.Tensor, periodic: bool) -> list[torch.Tensor]:
    """Derivatives along each spatial dim of ``(batch, channels, *spatial)``, grid spacing ``1/N``."""
    grads = []
    for axis in range(2, u.dim()):
        n = u.shape[axis]
        if periodic:
            grads.append((u.roll(-1, axis) - u.roll(1, axis)) * (n / 2.0))
        else:
            grads.append(torch.gradient(u, spacing=1.0 / n, dim=axis, edge_order=2)[0])
    return grads


class H1Loss(nn.Module):
    r"""Per-sample :math:`H^1` error :math:`(\|e\|_{L^2}^2 + \|\nabla e\|_{L^2}^2)^{1/2}`, relative by default.

    Derivatives are second-order finite differences on the uniform grid of ``[0, 1]^d`` (spacing ``1/N``):
    central with wrap-around when ``periodic``, otherwise central inside and one-sided second-order at the
    edges. Shapes as :class:`LpLoss`, with at least one spatial dim.
    """

    def __init__(self, relative: bool = True, periodic: bool = False, reduction: str = "mean",
                 eps: float = 1e-12) -> None:
        super().__init__()
        if reduction not in _REDUCTIONS:
            raise ValueError(f"H1Loss: reduction={reduction!r} is not one of {_REDUCTIONS}")
        self.relative, self.periodic, self.reduction, self.eps = relative, periodic, reduction, eps

    def extra_repr(self) -> str:
        return f"relative={self.relative}, periodic={self.periodic}, reduction={self.reduction!r}"

    def _sq_norm(self, u: torch.Tensor) -> torch.Tensor:
        total = u.pow(2).flatten(1).mean(1)
        for g in _gradients(u, self.periodic):
            total = total + g.pow(2).flatten(1).mean(1)
        return total * u.shape[1]  # sum over channels, mean over the grid

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _check_pair("H1Loss", pred, target, min_dim=3)
        err = self._sq_norm(pred - target).sqrt()
        if self.relative:
            err = err / (self._sq_norm(target).sqrt() + self.eps)
        return _reduce(err, self.reduction)
