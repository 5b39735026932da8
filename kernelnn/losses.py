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

    ``d`` takes neuraloperator's convention instead: the norm over the last ``d`` dims only, so each channel of each
    sample has its own (relative) error, and ``reduction`` sums or averages them over samples *and* channels
    (``"none"``: ``(batch, n)`` with ``n`` the other dims flattened). neuraloperator's default is
    ``LpLoss(d=..., reduction="sum")``; kernelnn's default (``d=None``, ``"mean"``) takes one norm over every
    channel of a sample and averages over the batch, so a loss does not grow with the batch size. The two agree
    for one channel up to the reduction.
    """

    def __init__(self, p: float = 2.0, relative: bool = True, reduction: str = "mean", eps: float = 1e-12,
                 d: int | None = None) -> None:
        super().__init__()
        if p <= 0:
            raise ValueError(f"LpLoss: p={p} must be positive")
        if reduction not in _REDUCTIONS:
            raise ValueError(f"LpLoss: reduction={reduction!r} is not one of {_REDUCTIONS}")
        if d is not None and (not isinstance(d, int) or isinstance(d, bool) or d < 1):
            raise ValueError(f"LpLoss: d={d!r} must be a positive int (neuraloperator's number of spatial dims) or "
                             "None (one norm over channels and space per sample)")
        self.p, self.relative, self.reduction, self.eps, self.d = float(p), relative, reduction, eps, d

    def extra_repr(self) -> str:
        extra = "" if self.d is None else f", d={self.d}"
        return f"p={self.p}, relative={self.relative}, reduction={self.reduction!r}{extra}"

    def _norm(self, x: torch.Tensor) -> torch.Tensor:
        # Sum over channels, mean over the grid (the domain has measure 1); fields are (batch, channels, ...).
        grid_points = x[0, 0].numel() if x.dim() > 2 else 1
        power = x.abs().pow(self.p).flatten(1).sum(1) / grid_points
        # s^(1/p) has an infinite slope at 0: at exactly zero error the gradient would be NaN; it is 0 (the minimum).
        # (NaN and inf pass through unchanged.)
        zero = power == 0
        return torch.where(zero, 0.0, torch.where(zero, torch.ones_like(power), power).pow(1.0 / self.p))

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _check_pair("LpLoss", pred, target)
        if self.d is not None:
            return self._per_channel(pred, target)
        err = self._norm(pred - target)
        if self.relative:
            err = err / (self._norm(target) + self.eps)
        return _reduce(err, self.reduction)


    def _per_channel(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """neuraloperator's convention: norms over the last ``d`` dims, one per sample and channel."""
        if pred.dim() < self.d + 1:
            raise ValueError(f"LpLoss: d={self.d} takes the norm over the last {self.d} dims, after a batch dim; got "
                             f"shape {tuple(pred.shape)}")
        lead = pred.shape[: pred.dim() - self.d]
        err = self._norm((pred - target).reshape(-1, 1, *pred.shape[-self.d:]))
        if self.relative:
            err = err / (self._norm(target.reshape(-1, 1, *pred.shape[-self.d:])) + self.eps)
        err = err.reshape(lead[0], -1)
        return err if self.reduction == "none" else _reduce(err, self.reduction)


class SphereLpLoss(nn.Module):
    r"""Per-sample relative :math:`L^p` error of fields on the sphere, integrated with the grid's quadrature.

    .. math:: \|e\|_{L^p(S^2)}^p = \int_{S^2} \sum_c |e_c|^p \, d\Omega
              \approx \sum_{i, j} w_i \frac{2\pi}{n_{lon}} \sum_c |e_c(\theta_i, \phi_j)|^p,

    with torch-harmonics' latitude weights :math:`w_i` for ``grid`` (``"equiangular"``: Clenshaw-Curtis,
    ``"legendre-gauss"``, ``"lobatto"``). A plain grid mean over-counts the poles of an equiangular grid, where the
    rings crowd together. Shapes: ``(batch, channels, nlat, nlon)``, any ``nlat`` (weights are built per grid).

    ``per_channel=True`` takes each channel's (relative) error on its own and averages them: for channels in
    different units (shallow water: geopotential near 1e5, vorticity near 1e-7 in SI units) one joint relative
    error sees only the largest channel, and a model that learns nothing else scores well.
    """

    def __init__(self, grid: str = "equiangular", p: float = 2.0, relative: bool = True, reduction: str = "mean",
                 eps: float = 1e-12, per_channel: bool = False) -> None:
        super().__init__()
        if p <= 0:
            raise ValueError(f"SphereLpLoss: p={p} must be positive")
        if reduction not in _REDUCTIONS:
            raise ValueError(f"SphereLpLoss: reduction={reduction!r} is not one of {_REDUCTIONS}")
        self.grid, self.p, self.relative, self.reduction, self.eps = grid, float(p), relative, reduction, eps
        self.per_channel = per_channel
        self.latitude_weights(4)  # an unknown grid fails here, not in the first step
        self._cache: dict = {}

    def extra_repr(self) -> str:
        extra = ", per_channel=True" if self.per_channel else ""
        return f"grid={self.grid!r}, p={self.p}, relative={self.relative}, reduction={self.reduction!r}{extra}"

    def latitude_weights(self, nlat: int) -> torch.Tensor:
        """The quadrature weight of each latitude ring, ``(nlat,)``, summing to 2 (the integral of sin theta)."""
        from torch_harmonics.quadrature import precompute_latitudes

        try:
            return torch.as_tensor(precompute_latitudes(nlat, self.grid)[1])
        except (ValueError, NotImplementedError) as err:
            raise ValueError(f"SphereLpLoss: grid={self.grid!r} is not a torch-harmonics grid ({err})") from err

    def _norm(self, x: torch.Tensor) -> torch.Tensor:
        key = (x.shape[-2], x.shape[-1], x.device, x.dtype)
        if key not in self._cache:
            self._cache[key] = (self.latitude_weights(x.shape[-2]) * 2 * torch.pi / x.shape[-1]).to(x.device, x.dtype)
        weights = self._cache[key]
        power = (x.abs().pow(self.p) * weights[:, None]).flatten(1).sum(1)
        zero = power == 0  # as LpLoss: the gradient at exactly zero error is 0, not NaN
        return torch.where(zero, 0.0, torch.where(zero, torch.ones_like(power), power).pow(1.0 / self.p))

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _check_pair("SphereLpLoss", pred, target, min_dim=4)
        if self.per_channel:  # each channel as a sample of its own, then the mean over channels
            b, c = pred.shape[:2]
            pred, target = pred.reshape(b * c, 1, *pred.shape[2:]), target.reshape(b * c, 1, *target.shape[2:])
        err = self._norm(pred - target)
        if self.relative:
            err = err / (self._norm(target) + self.eps)
        if self.per_channel:
            err = err.reshape(b, c).mean(1)
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


class SobolevLoss(nn.Module):
    r"""Per-sample :math:`H^s` error on the unit torus, exact through Parseval, for any real ``s``.

    .. math:: \|u\|_{H^s}^2 = \sum_{k \in \mathbb{Z}^d} (1 + |2\pi k|^2)^{s}\, |\hat u_k|^2,
              \qquad \hat u_k = \int_{[0,1]^d} u(x) e^{-2\pi i k\cdot x} dx,

    with :math:`\hat u_k` computed exactly for the grid's trigonometric interpolant by an FFT
    (``norm="forward"``). ``s = 0`` is the :math:`L^2` norm; ``s < 0`` the negative Sobolev norms used as a
    loss by Spectral-Refiner (Cao et al., 2024), which weight low frequencies most. ``2 pi k`` is the
    angular wavenumber: :math:`\sin(2\pi k x)` has :math:`H^{-1}` norm
    :math:`\|\sin\|_{L^2} / \sqrt{1 + 4\pi^2 k^2}`. With ``seminorm=True`` the weight is
    :math:`|2\pi k|^{2s}` and the mean (k = 0) is left out.

    Shapes: ``(batch, channels, *spatial)`` with at least one spatial dim; channels are summed.
    ``relative=True`` divides by the target's norm.
    """

    def __init__(self, s: float, relative: bool = True, seminorm: bool = False, reduction: str = "mean",
                 eps: float = 1e-12) -> None:
        super().__init__()
        if reduction not in _REDUCTIONS:
            raise ValueError(f"{type(self).__name__}: reduction={reduction!r} is not one of {_REDUCTIONS}")
        self.s, self.relative, self.seminorm, self.reduction, self.eps = float(s), relative, seminorm, reduction, eps
        self._weight_cache: dict = {}  # (spatial shape, device) -> weights; derived, never saved

    def extra_repr(self) -> str:
        return f"s={self.s}, relative={self.relative}, seminorm={self.seminorm}, reduction={self.reduction!r}"

    def _weights(self, spatial: tuple[int, ...], device) -> torch.Tensor:
        """Sobolev weight times the rfft multiplicity (2 for the conjugate-paired modes of the last dim)."""
        freqs = [torch.fft.fftfreq(n, 1.0 / n, device=device, dtype=torch.float64) for n in spatial[:-1]]
        last = torch.fft.rfftfreq(spatial[-1], 1.0 / spatial[-1], device=device, dtype=torch.float64)
        grids = torch.meshgrid(*freqs, last, indexing="ij")
        xi2 = sum((2 * torch.pi * g) ** 2 for g in grids)
        if self.seminorm:
            weight = torch.where(xi2 > 0, xi2.clamp_min(1e-300) ** self.s, torch.zeros_like(xi2))
        else:
            weight = (1 + xi2) ** self.s
        n_last = spatial[-1]
        paired = torch.full_like(last, 2.0)
        paired[0] = 1.0
        if n_last % 2 == 0:
            paired[-1] = 1.0  # the Nyquist coefficient has no separate conjugate
        return weight * paired

    def _sq_norm(self, u: torch.Tensor) -> torch.Tensor:
        spatial = tuple(u.shape[2:])
        u_hat = torch.fft.rfftn(u, dim=tuple(range(2, u.dim())), norm="forward")
        key = (spatial, str(u.device))
        if key not in self._weight_cache:  # the loss runs every training step: build each grid's weights once
            self._weight_cache[key] = self._weights(spatial, u.device)
        weights = self._weight_cache[key].to(u.real.dtype)
        return (u_hat.abs().pow(2) * weights).flatten(1).sum(1)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _check_pair(type(self).__name__, pred, target, min_dim=3)
        with torch.autocast(pred.device.type, enabled=False):
            pred, target = (t.float() if t.dtype in (torch.float16, torch.bfloat16) else t for t in (pred, target))
            err = self._sq_norm(pred - target).sqrt()
            if self.relative:
                err = err / (self._sq_norm(target).sqrt() + self.eps)
        return _reduce(err, self.reduction)


class NegativeSobolevLoss(SobolevLoss):
    r"""The :math:`H^{-s}` error (``s > 0``) of Spectral-Refiner: :class:`SobolevLoss` with order ``-s``."""

    def __init__(self, s: float = 1.0, **kwargs) -> None:
        if s <= 0:
            raise ValueError(f"NegativeSobolevLoss: s={s} must be positive (the loss is the H^-s norm)")
        super().__init__(-s, **kwargs)
