r"""The a posteriori error estimator of Spectral-Refiner (Cao et al., 2024): the negative Sobolev norm of the
Navier-Stokes residual of a predicted vorticity trajectory. It reads no ground truth, so it can score, and
refine, a prediction for an initial condition no solver has seen.

On the unit torus, with the forcing and viscosity of :mod:`kernelnn.data.navier_stokes`,

.. math:: R = f - \partial_t w - \mathbf u\cdot\nabla w + \nu\Delta w, \qquad -\Delta\psi = w,\quad
          \mathbf u = (\partial_y\psi, -\partial_x\psi).

Space is discretised exactly as the solver does (spectral derivatives, 2/3-rule dealiasing of the product);
time by the solver's own scheme between consecutive frames ``w_n, w_{n+1}`` a time ``h`` apart: Crank-Nicolson
for diffusion and the trapezoidal rule for advection and forcing (the implicit scheme whose Heun
predictor-corrector the solver runs), evaluated at the interval midpoints,

.. math:: R_{n+1/2} = f - \frac{w_{n+1} - w_n}{h} - \tfrac12\big(N(w_n) + N(w_{n+1})\big)
          + \tfrac{\nu}{2}\Delta(w_n + w_{n+1}).

For the exact solution this is the scheme's local truncation error, :math:`O(h^2)`; for a solver trajectory
recorded every ``h`` it is the solver's time-step error at that spacing. The estimator is
:math:`\big(\frac1{T-1}\sum_{n=0}^{T-2} \|R_{n+1/2}\|_{H^{-s}}^2\big)^{1/2}` over the ``T - 1`` intervals of ``T``
frames, with the :math:`H^{-s}` norm of
:class:`~kernelnn.losses.SobolevLoss` (exact through Parseval, :math:`s = 1` by default).
"""

from __future__ import annotations

import torch
from torch import nn

from kernelnn.data.navier_stokes import TorusSpectral, fno_forcing
from kernelnn.losses import _REDUCTIONS, SobolevLoss, _reduce


class NavierStokesResidual(nn.Module):
    r"""The :math:`H^{-s}` norm of the vorticity-form Navier-Stokes residual of a trajectory on the unit torus.

    Parameters
    ----------
    viscosity : float
        :math:`\nu`, as the data were generated with.
    time_step : float
        Time between consecutive frames of the trajectories it is given.
    forcing : tensor ``(N, N)`` or None
        :math:`f` on the grid ``i / N``; ``None`` (default) uses the FNO paper's forcing of
        :func:`~kernelnn.data.navier_stokes.fno_forcing` at whatever grid the trajectory has.
    sobolev_s : float
        Order of the negative Sobolev norm (``s = 1``: :math:`H^{-1}`, the paper's estimator).
    reduction : str
        ``"mean"``, ``"sum"`` or ``"none"`` (per-trajectory values) over the batch.

    Shapes: ``forward(trajectory)`` takes ``(batch, T, N, N)`` with ``T >= 2`` equally spaced frames (square,
    periodic grid) and returns the estimator per trajectory (reduced over the batch); :meth:`residual` returns
    the residual fields ``(batch, T - 1, N, N)`` at the interval midpoints.

    >>> estimator = NavierStokesResidual(viscosity=1e-3, time_step=0.1)
    >>> estimator(torch.zeros(2, 3, 16, 16)).shape  # a zero field still has the forcing as residual
    torch.Size([])
    """

    def __init__(self, viscosity: float, time_step: float, forcing: torch.Tensor | None = None,
                 sobolev_s: float = 1.0, reduction: str = "mean") -> None:
        super().__init__()
        name = type(self).__name__
        for arg, value in (("viscosity", viscosity), ("time_step", time_step), ("sobolev_s", sobolev_s)):
            if not isinstance(value, int | float) or not value > 0:
                raise ValueError(f"{name}: {arg}={value!r} must be a positive number")
        if reduction not in _REDUCTIONS:
            raise ValueError(f"{name}: reduction={reduction!r} is not one of {_REDUCTIONS}")
        if forcing is not None:
            if not isinstance(forcing, torch.Tensor) or forcing.dim() != 2 or forcing.shape[0] != forcing.shape[1]:
                shape = tuple(forcing.shape) if isinstance(forcing, torch.Tensor) else type(forcing).__name__
                raise ValueError(f"{name}: forcing must be a square (N, N) tensor or None, got {shape}")
            forcing = forcing.detach().clone()
        self.register_buffer("forcing", forcing, persistent=False)
        self.viscosity, self.time_step, self.sobolev_s, self.reduction = (
            float(viscosity), float(time_step), float(sobolev_s), reduction)
        self._norm = SobolevLoss(-self.sobolev_s, relative=False, reduction="none")
        self._operators: dict = {}  # (N, dtype, device) -> TorusSpectral, built once per grid

    def extra_repr(self) -> str:
        return (f"viscosity={self.viscosity}, time_step={self.time_step}, sobolev_s={self.sobolev_s}, "
                f"reduction={self.reduction!r}")

    def _check(self, trajectory: torch.Tensor) -> None:
        name = type(self).__name__
        if not isinstance(trajectory, torch.Tensor):
            raise TypeError(f"{name}: trajectory must be a torch.Tensor, got {type(trajectory).__name__}")
        if trajectory.dim() != 4 or trajectory.shape[1] < 2:
            raise ValueError(f"{name}: trajectory must have shape (batch, T >= 2, N, N) (equally spaced vorticity "
                             f"frames), got {tuple(trajectory.shape)}")
        if trajectory.shape[2] != trajectory.shape[3]:
            raise ValueError(f"{name}: the estimator is defined on a square periodic grid (the unit torus), got a "
                             f"{trajectory.shape[2]} x {trajectory.shape[3]} field")
        if not trajectory.is_floating_point():
            raise TypeError(f"{name}: trajectory dtype must be floating point, got {trajectory.dtype}")
        if self.forcing is not None and self.forcing.shape[0] != trajectory.shape[2]:
            raise ValueError(f"{name}: forcing is given on a {tuple(self.forcing.shape)} grid but the trajectory "
                             f"is {trajectory.shape[2]} x {trajectory.shape[3]}; pass forcing=None to use the FNO "
                             "forcing at any grid")

    def residual_hat(self, trajectory: torch.Tensor) -> torch.Tensor:
        """The residual's rfft2 coefficients ``(batch, T - 1, N, N // 2 + 1)`` (unnormalised transform)."""
        self._check(trajectory)
        w = trajectory.float() if trajectory.dtype in (torch.float16, torch.bfloat16) else trajectory
        n = w.shape[-1]
        key = (n, w.dtype, str(w.device))
        if key not in self._operators:
            self._operators[key] = TorusSpectral(n, dtype=w.dtype, device=w.device)
        ops = self._operators[key]
        forcing = fno_forcing(n, w.dtype).to(w.device) if self.forcing is None else self.forcing.to(w)
        w_hat = torch.fft.rfft2(w)
        advection = ops.advection_hat(w_hat)
        mid = 0.5 * (w_hat[:, 1:] + w_hat[:, :-1])
        return (torch.fft.rfft2(forcing) - (w_hat[:, 1:] - w_hat[:, :-1]) / self.time_step
                - 0.5 * (advection[:, 1:] + advection[:, :-1]) - self.viscosity * ops.lap * mid)

    def residual(self, trajectory: torch.Tensor) -> torch.Tensor:
        """The residual fields ``(batch, T - 1, N, N)`` at the midpoints of the frame intervals."""
        with torch.autocast(trajectory.device.type, enabled=False):
            n = trajectory.shape[-1]
            return torch.fft.irfft2(self.residual_hat(trajectory), s=(n, n))

    def per_trajectory(self, trajectory: torch.Tensor) -> torch.Tensor:
        """The estimator of each trajectory, ``(batch,)``, whatever ``reduction`` is."""
        with torch.autocast(trajectory.device.type, enabled=False):
            r = self.residual(trajectory)
            return (self._norm._sq_norm(r) / r.shape[1]).sqrt()

    def forward(self, trajectory: torch.Tensor) -> torch.Tensor:
        return _reduce(self.per_trajectory(trajectory), self.reduction)

    @classmethod
    def for_bundle(cls, bundle, out_steps: int | None = None, **kwargs) -> NavierStokesResidual:
        """The estimator of a :func:`~kernelnn.data.make_navier_stokes` bundle: its viscosity, and its frame spacing,
        or for a model asked for ``out_steps`` frames over the bundle's output horizon (``output_steps`` frames
        apart by the spacing), the spacing of those frames. Other bundles are refused."""
        info = getattr(bundle, "info", None) or {}
        if not getattr(bundle, "periodic", False) or getattr(bundle, "dim", None) != 2 or "viscosity" not in info:
            raise ValueError(f"{cls.__name__}: the estimator needs periodic 2-D vorticity data from "
                             f"kernelnn.data.make_navier_stokes (viscosity and frame spacing in its info); got data "
                             f"{getattr(bundle, 'name', bundle)!r} (periodic={getattr(bundle, 'periodic', None)}, "
                             f"dim={getattr(bundle, 'dim', None)})")
        time_step = info["frame_dt"] if out_steps is None else info["frame_dt"] * bundle.out_channels / out_steps
        return cls(info["viscosity"], time_step, **kwargs)
