"""Shallow-water equations on the rotating sphere, solved with torch-harmonics' own spectral solver.

Each sample starts from ``ShallowWaterSolver.random_initial_condition`` (a random balanced flow with Mach
number ``mach``) and is integrated for ``hours`` with the solver's third-order Adams-Bashforth scheme. The
operator task maps the state at t = 0 to the state at t = ``hours``; the three channels are the solver's
geopotential, vorticity and divergence on a ``nlat x nlon`` grid.
"""

from __future__ import annotations

import math

import torch
from torch.utils.data import TensorDataset

from kernelnn.data.bundle import DataBundle, cached


def make_shallow_water(
    nlat: int = 32,
    nlon: int = 64,
    n_train: int = 200,
    n_val: int = 20,
    n_test: int = 50,
    hours: float = 6.0,
    solver_dt: float = 300.0,
    mach: float = 0.1,
    grid: str = "equiangular",
    seed: int = 0,
    cache_dir: str | None = None,
    cache: bool = True,
    name: str = "shallow_water",
) -> DataBundle:
    """Generated shallow-water data: inputs and outputs ``(n, 3, nlat, nlon)``."""
    if nlon != 2 * nlat:
        raise ValueError(f"shallow_water: data.nlon={nlon} must be 2 * data.nlat={nlat} (the solver's grid)")
    if hours <= 0 or solver_dt <= 0:
        raise ValueError(f"shallow_water: data.hours={hours} and data.solver_dt={solver_dt} must be positive")
    steps = max(1, math.ceil(hours * 3600 / solver_dt - 1e-9))
    params = dict(n=n_train + n_val + n_test, nlat=nlat, nlon=nlon, steps=steps, solver_dt=hours * 3600 / steps,
                  mach=mach, grid=grid, seed=seed)

    def build() -> dict[str, torch.Tensor]:
        from torch_harmonics.examples import ShallowWaterSolver

        solver = ShallowWaterSolver(nlat, nlon, params["solver_dt"], grid=grid).to(torch.float64)
        inputs, outputs = [], []
        with torch.random.fork_rng():  # the solver draws from torch's global RNG
            torch.manual_seed(seed)
            for _ in range(params["n"]):
                start = solver.random_initial_condition(mach=mach)
                inputs.append(solver.spec2grid(start))
                outputs.append(solver.spec2grid(solver.timestep(start, steps)))
        return {"x": torch.stack(inputs).float(), "y": torch.stack(outputs).float()}

    data = cached("shallow_water", params, build, cache_dir, cache)
    x, y = data["x"], data["y"]
    n_tv = n_train + n_val
    return DataBundle(
        name=name, task="operator", train=TensorDataset(x[:n_train], y[:n_train]),
        val=TensorDataset(x[n_train:n_tv], y[n_train:n_tv]) if n_val else None,
        tests={"test": TensorDataset(x[n_tv:], y[n_tv:])},
        in_channels=3, out_channels=3, dim=2, periodic=False, info={"grid": grid, "steps": steps}, sphere_grid=grid,
    )
