r"""Viscous Burgers equation :math:`u_t + u u_x = \nu u_{xx}` on the periodic interval ``[0, 1)``.

Initial conditions :math:`u_0 \sim N(0, 625(-\Delta + 25 I)^{-2})` as in the FNO paper; the operator to
learn maps :math:`u_0` to :math:`u(\cdot, T)`. Solved pseudo-spectrally: Fourier collocation in space
(2/3-rule dealiasing of :math:`(u^2/2)_x`) and the fourth-order integrating-factor Runge-Kutta scheme
in time, which treats diffusion exactly.
"""

from __future__ import annotations

import math

import torch

from kernelnn.data.bundle import DataBundle, cached, check_resolutions, resolution_splits
from kernelnn.data.grf import periodic_grf


def solve_burgers(u0: torch.Tensor, nu: float, t_final: float, dt: float | None = None) -> torch.Tensor:
    """Integrate a batch of initial states ``u0`` ``(n, N)`` on ``[0, 1)`` to time ``t_final``.

    ``dt`` is rounded down so that an integer number of steps reaches ``t_final``; by default it is chosen
    from an advective CFL bound (dt * k_max * max|u0| <= 1, k_max the largest resolved wavenumber).
    """
    u0 = u0.to(torch.float64)
    n = u0.shape[-1]
    k = 2 * math.pi * torch.fft.rfftfreq(n, 1.0 / n, dtype=torch.float64)
    dealias = (torch.fft.rfftfreq(n, 1.0 / n) <= n / 3).to(torch.float64)
    if dt is None:
        dt = min(1e-3, 1.0 / (k[-1].item() * max(u0.abs().max().item(), 1e-6)))
    steps = max(1, math.ceil(t_final / dt - 1e-9))
    dt = t_final / steps
    lin = -nu * k**2
    e, e2 = torch.exp(lin * dt), torch.exp(lin * dt / 2)
    ik = 1j * k * dealias

    def nonlinear(v_hat: torch.Tensor) -> torch.Tensor:
        v = torch.fft.irfft(v_hat, n=n)
        return -0.5 * ik * torch.fft.rfft(v * v)

    v = torch.fft.rfft(u0)
    for _ in range(steps):  # Lawson / integrating-factor RK4
        a = nonlinear(v)
        b = nonlinear(e2 * (v + 0.5 * dt * a))
        c = nonlinear(e2 * v + 0.5 * dt * b)
        d = nonlinear(e * v + dt * e2 * c)
        v = e * v + dt / 6 * (e * a + 2 * e2 * (b + c) + d)
    return torch.fft.irfft(v, n=n)


def make_burgers(
    resolution: int = 256,
    test_resolutions: list[int] | None = (256, 512),
    n_train: int = 1000,
    n_val: int = 100,
    n_test: int = 200,
    viscosity: float = 0.1,
    t_final: float = 1.0,
    solve_resolution: int | None = None,
    dt: float | None = None,
    alpha: float = 2.0,
    tau: float = 5.0,
    sigma: float = 25.0,
    seed: int = 0,
    cache_dir: str | None = None,
    cache: bool = True,
    name: str = "burgers",
) -> DataBundle:
    """Generated Burgers data: input ``u0`` and output ``u(T)``, both ``(n, 1, R)``; test sets per resolution."""
    tests, solve = check_resolutions("burgers", resolution, test_resolutions, solve_resolution)
    if viscosity <= 0 or t_final <= 0:
        raise ValueError(f"burgers: data.viscosity={viscosity} and data.t_final={t_final} must be positive")
    params = dict(n=n_train + n_val + n_test, solve_resolution=solve, viscosity=viscosity, t_final=t_final,
                  dt=dt, alpha=alpha, tau=tau, sigma=sigma, seed=seed)

    def build() -> dict[str, torch.Tensor]:
        gen = torch.Generator().manual_seed(seed)
        u0 = periodic_grf(params["n"], solve, 1, alpha, tau, sigma, gen)
        return {"u0": u0.float(), "uT": solve_burgers(u0, viscosity, t_final, dt).float()}

    data = cached("burgers", params, build, cache_dir, cache)
    x, y = data["u0"].unsqueeze(1), data["uT"].unsqueeze(1)

    return DataBundle(
        name=name, task="operator", **resolution_splits(x, y, solve, resolution, tests, n_train, n_val, n_test),
        in_channels=1, out_channels=1, dim=1, periodic=True, info={"solve_resolution": solve},
    )
