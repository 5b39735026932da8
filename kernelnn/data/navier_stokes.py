r"""2-D incompressible Navier-Stokes in vorticity form on the unit torus.

.. math:: \partial_t w + \mathbf{u}\cdot\nabla w = \nu \Delta w + f, \quad \nabla\cdot\mathbf{u} = 0,
          \quad w = \nabla\times\mathbf{u},

with the FNO paper's forcing :math:`f = 0.1(\sin 2\pi(x+y) + \cos 2\pi(x+y))` and initial vorticity
:math:`w_0 \sim N(0, 7^{3/2}(-\Delta + 49 I)^{-2.5})`. Pseudo-spectral in space (stream function from
:math:`-\Delta\psi = w`, 2/3-rule dealiasing), Crank-Nicolson for diffusion and Heun's predictor-corrector
for advection and forcing in time: second order. The result is a sequence of snapshots for
spatio-temporal models; the operator task maps ``input_steps`` frames to the next ``output_steps``.
"""

from __future__ import annotations

import math

import torch

from kernelnn.data.bundle import DataBundle, cached, check_resolutions, resolution_splits
from kernelnn.data.grf import periodic_grf


def fno_forcing(size: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The FNO paper's forcing ``0.1 (sin 2pi(x+y) + cos 2pi(x+y))`` on the grid ``i / size``."""
    x = torch.arange(size, dtype=dtype) / size
    s = x[:, None] + x[None, :]
    return 0.1 * (torch.sin(2 * math.pi * s) + torch.cos(2 * math.pi * s))


class TorusSpectral:
    """Spectral operators on the ``n x n`` grid of the unit torus (rfft2 layout), shared by the solver and by
    :class:`~kernelnn.navier_stokes_residual.NavierStokesResidual` so that both discretise space identically."""

    def __init__(self, n: int, dtype: torch.dtype = torch.float64, device=None) -> None:
        self.n = n
        kx = torch.fft.fftfreq(n, 1.0 / n, dtype=dtype, device=device)[:, None].expand(n, n // 2 + 1)
        ky = torch.fft.rfftfreq(n, 1.0 / n, dtype=dtype, device=device)[None, :].expand(n, n // 2 + 1)
        self.lap = 4 * math.pi**2 * (kx**2 + ky**2)  # the symbol of -Laplacian
        self.inv_lap = torch.where(self.lap > 0, 1.0 / self.lap.clamp_min(1e-30), torch.zeros_like(self.lap))
        self.dealias = ((kx.abs() <= n / 3) & (ky <= n / 3)).to(dtype)  # the 2/3 rule
        self.dx, self.dy = 2j * math.pi * kx, 2j * math.pi * ky

    def advection_hat(self, w_hat: torch.Tensor) -> torch.Tensor:
        """The dealiased transform of ``u . grad w`` with ``u = (d psi/dy, -d psi/dx)`` and ``-lap psi = w``."""
        n = self.n
        psi = w_hat * self.inv_lap
        u = torch.fft.irfft2(self.dy * psi, s=(n, n))
        v = torch.fft.irfft2(-self.dx * psi, s=(n, n))
        w_x = torch.fft.irfft2(self.dx * w_hat, s=(n, n))
        w_y = torch.fft.irfft2(self.dy * w_hat, s=(n, n))
        return self.dealias * torch.fft.rfft2(u * w_x + v * w_y)


def solve_navier_stokes(
    w0: torch.Tensor, forcing: torch.Tensor, viscosity: float, t_final: float, record_steps: int, dt: float
) -> torch.Tensor:
    """Integrate vorticity ``w0`` ``(n, N, N)``; returns ``(n, record_steps + 1, N, N)`` at equal times in [0, T].

    ``dt`` is rounded down so that every recording interval holds an integer number of steps.
    """
    w0 = w0.to(torch.float64)
    n = w0.shape[-1]
    per_record = max(1, math.ceil(t_final / record_steps / dt - 1e-9))
    dt = t_final / record_steps / per_record
    ops = TorusSpectral(n, device=w0.device)
    f_hat = torch.fft.rfft2(forcing.to(torch.float64))

    def rhs(w_hat: torch.Tensor) -> torch.Tensor:
        return f_hat - ops.advection_hat(w_hat)

    implicit = 1.0 + 0.5 * dt * viscosity * ops.lap
    explicit = 1.0 - 0.5 * dt * viscosity * ops.lap
    w_hat = torch.fft.rfft2(w0)
    frames = [w0]
    for _ in range(record_steps):
        for _ in range(per_record):
            r0 = rhs(w_hat)
            predictor = (explicit * w_hat + dt * r0) / implicit
            w_hat = (explicit * w_hat + 0.5 * dt * (r0 + rhs(predictor))) / implicit
        frames.append(torch.fft.irfft2(w_hat, s=(n, n)))
    return torch.stack(frames, dim=1)


def make_navier_stokes(
    resolution: int = 64,
    test_resolutions: list[int] | None = (64,),
    n_train: int = 200,
    n_val: int = 20,
    n_test: int = 50,
    viscosity: float = 1e-3,
    t_final: float = 10.0,
    record_steps: int = 10,
    input_steps: int = 5,
    output_steps: int = 5,
    dt: float = 5e-3,
    solve_resolution: int | None = None,
    seed: int = 0,
    cache_dir: str | None = None,
    cache: bool = True,
    name: str = "navier_stokes",
) -> DataBundle:
    """Generated vorticity sequences; task: frames ``[0, input_steps)`` -> the next ``output_steps`` frames.

    Inputs ``(n, input_steps, R, R)`` and outputs ``(n, output_steps, R, R)`` (time as channels).
    The full sequences ``(n, record_steps + 1, R, R)`` are in ``bundle.info["sequences"]`` for
    spatio-temporal models.
    """
    tests, solve = check_resolutions("navier_stokes", resolution, test_resolutions, solve_resolution)
    if input_steps < 1 or output_steps < 1 or input_steps + output_steps > record_steps + 1:
        raise ValueError(
            f"navier_stokes: data.input_steps={input_steps} + data.output_steps={output_steps} must be positive "
            f"and fit in the record_steps + 1 = {record_steps + 1} recorded frames"
        )
    if viscosity <= 0 or dt <= 0:
        raise ValueError(f"navier_stokes: data.viscosity={viscosity} and data.dt={dt} must be positive")
    params = dict(n=n_train + n_val + n_test, solve_resolution=solve, viscosity=viscosity, t_final=t_final,
                  record_steps=record_steps, dt=dt, seed=seed)

    def build() -> dict[str, torch.Tensor]:
        gen = torch.Generator().manual_seed(seed)
        w0 = periodic_grf(params["n"], solve, 2, alpha=2.5, tau=7.0, sigma=7.0**1.5, generator=gen)
        w = solve_navier_stokes(w0, fno_forcing(solve), viscosity, t_final, record_steps, dt)
        return {"w": w.float()}

    w = cached("navier_stokes", params, build, cache_dir, cache)["w"]

    x, y = w[:, :input_steps], w[:, input_steps: input_steps + output_steps]
    return DataBundle(
        name=name, task="operator", **resolution_splits(x, y, solve, resolution, tests, n_train, n_val, n_test),
        in_channels=input_steps, out_channels=output_steps, dim=2, periodic=True,
        info={"solve_resolution": solve, "sequences": w, "times": torch.linspace(0, t_final, record_steps + 1),
              "viscosity": viscosity, "frame_dt": t_final / record_steps, "dt": dt},
    )
