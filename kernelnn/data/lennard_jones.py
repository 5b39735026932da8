r"""Energies and forces of small Lennard-Jones clusters, sampled by Metropolis Monte Carlo.

Potential (reduced units, :math:`\varepsilon = \sigma = 1` by default):
:math:`E = \sum_{i<j} 4\varepsilon [(\sigma/r_{ij})^{12} - (\sigma/r_{ij})^6]`, forces :math:`F = -\nabla E`
(analytic, float64). Clusters of ``n_atoms`` start from random compact packings (atoms added one by one at the
pair-potential minimum :math:`2^{1/6}\sigma` from a random earlier atom, never closer than :math:`0.9\sigma` to any)
and are equilibrated by single-atom Metropolis moves at a temperature drawn per cluster from
``[t_min, t_max]``; a soft spherical wall (used only while sampling, not in the labels) stops atoms from
evaporating. Each cluster gives one sample, centred and randomly rotated.
"""

from __future__ import annotations

import torch
from torch.utils.data import TensorDataset

from kernelnn.data.bundle import DataBundle, cached
from kernelnn.data.tetris import random_rotations


def lennard_jones_energy_forces(positions: torch.Tensor, epsilon: float = 1.0,
                                sigma: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Energies ``(..., )`` and forces ``(..., n_atoms, 3)`` of configurations ``(..., n_atoms, 3)``."""
    r = positions[..., None, :, :] - positions[..., :, None, :]  # r_ij = x_j - x_i
    n = positions.shape[-2]
    eye = torch.eye(n, dtype=torch.bool, device=positions.device)
    d2 = torch.where(eye, torch.ones((), dtype=positions.dtype), r.square().sum(-1))
    s6 = (sigma * sigma / d2) ** 3
    pair = torch.where(eye, torch.zeros((), dtype=positions.dtype), 4 * epsilon * (s6 * s6 - s6))
    energy = pair.sum((-1, -2)) / 2
    # dE/dr_ij along r_ij: -24 eps (2 s^12 - s^6) / r^2 * r_ij; the force on i is -dE/dx_i.
    scale = torch.where(eye, torch.zeros((), dtype=positions.dtype), 24 * epsilon * (2 * s6 * s6 - s6) / d2)
    forces = -(scale[..., None] * r).sum(-2)
    return energy, forces


def _random_packings(n: int, n_atoms: int, generator: torch.Generator) -> torch.Tensor:
    """``(n, n_atoms, 3)``: atoms added one at a time at distance 2^(1/6) from a random earlier atom."""
    bond, closest = 2 ** (1 / 6), 0.9
    positions = torch.zeros(n, n_atoms, 3, dtype=torch.float64)
    for k in range(1, n_atoms):
        todo = torch.ones(n, dtype=torch.bool)
        while todo.any():
            anchor = torch.randint(k, (n,), generator=generator)
            direction = torch.randn(n, 3, generator=generator, dtype=torch.float64)
            direction = direction / direction.norm(dim=1, keepdim=True)
            candidate = positions[torch.arange(n), anchor] + bond * direction
            far = (positions[:, :k] - candidate[:, None]).norm(dim=-1).min(1).values >= closest
            accept = todo & far
            positions[accept, k] = candidate[accept]
            todo &= ~accept
    return positions - positions.mean(1, keepdim=True)


def _atom_energy(positions: torch.Tensor, atom: torch.Tensor, trial: torch.Tensor, epsilon: float, sigma: float,
                 wall_radius: float, wall_strength: float) -> torch.Tensor:
    """Energy of ``trial`` position ``(n, 3)`` of atom ``atom (n,)`` with the others, plus the wall term."""
    n, n_atoms = positions.shape[:2]
    d2 = (positions - trial[:, None]).square().sum(-1)  # (n, n_atoms)
    others = torch.arange(n_atoms)[None, :] != atom[:, None]
    s6 = (sigma * sigma / torch.where(others, d2, torch.ones_like(d2))) ** 3
    pair = torch.where(others, 4 * epsilon * (s6 * s6 - s6), torch.zeros_like(s6)).sum(1)
    outside = (trial.norm(dim=1) - wall_radius).clamp_min(0)
    return pair + wall_strength * outside.square()


def sample_clusters(n: int, n_atoms: int, t_min: float, t_max: float, sweeps: int, generator: torch.Generator,
                    step: float = 0.12, epsilon: float = 1.0, sigma: float = 1.0) -> torch.Tensor:
    """``n`` equilibrated clusters ``(n, n_atoms, 3)`` (float64), one Metropolis chain each (module docstring)."""
    positions = _random_packings(n, n_atoms, generator) * sigma
    temperature = t_min + (t_max - t_min) * torch.rand(n, generator=generator, dtype=torch.float64)
    # Room for the packing plus thermal expansion: the radius of a close-packed ball of n_atoms, plus 1 sigma.
    wall_radius = sigma * (0.56 * n_atoms ** (1 / 3) * 2 ** (1 / 6) + 1.0)
    rows = torch.arange(n)
    for _ in range(sweeps * n_atoms):
        atom = torch.randint(n_atoms, (n,), generator=generator)
        old = positions[rows, atom]
        new = old + step * sigma * (2 * torch.rand(n, 3, generator=generator, dtype=torch.float64) - 1)
        delta = (_atom_energy(positions, atom, new, epsilon, sigma, wall_radius, 10.0)
                 - _atom_energy(positions, atom, old, epsilon, sigma, wall_radius, 10.0))
        accept = torch.rand(n, generator=generator, dtype=torch.float64) < torch.exp(-delta / temperature)
        positions[rows, atom] = torch.where(accept[:, None], new, old)
    positions = positions - positions.mean(1, keepdim=True)
    return positions @ random_rotations(n, generator).transpose(1, 2)


def make_lennard_jones(n_atoms: int = 13, n_train: int = 1000, n_val: int = 200, n_test: int = 500,
                  t_min: float = 0.1, t_max: float = 0.35, sweeps: int = 300, epsilon: float = 1.0,
                  sigma: float = 1.0, energy_weight: float = 1.0, force_weight: float = 1.0, seed: int = 0,
                  name: str = "lennard_jones", cache_dir: str | None = None, use_cache: bool = True) -> DataBundle:
    """Clusters: inputs ``(n, n_atoms, 3)``, targets ``(n, 1 + 3 n_atoms)`` = ``[energy, forces.flatten()]``.

    The task ``"energy_forces"`` weighs ``energy_weight * ((E_pred - E) / n_atoms)^2`` and
    ``force_weight * mean((F_pred - F)^2)``. The bundle offers models the mean energy per atom and the RMS force
    component of the training set (``model.energy_shift`` / ``model.energy_scale`` left null take them).
    """
    if isinstance(n_atoms, bool) or not isinstance(n_atoms, int) or n_atoms < 2:
        raise ValueError(f"lennard_jones: data.n_atoms={n_atoms!r} must be an int >= 2")
    for key, value in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test), ("sweeps", sweeps)):
        if isinstance(value, bool) or not isinstance(value, int) or value < (1 if key == "n_train" else 0):
            raise ValueError(f"lennard_jones: data.{key}={value!r} must be an int >= {1 if key == 'n_train' else 0}")
    if not 0 < t_min <= t_max:
        raise ValueError(f"lennard_jones: temperatures must satisfy 0 < data.t_min <= data.t_max, got {t_min}, "
                         f"{t_max}")
    if energy_weight < 0 or force_weight < 0 or energy_weight + force_weight == 0:
        raise ValueError(f"lennard_jones: data.energy_weight={energy_weight} and data.force_weight={force_weight} "
                         "must be >= 0 and not both 0")
    params = dict(n_atoms=n_atoms, n=n_train + n_val + n_test, t_min=t_min, t_max=t_max, sweeps=sweeps,
                  epsilon=epsilon, sigma=sigma, seed=seed)

    def build() -> dict[str, torch.Tensor]:
        gen = torch.Generator().manual_seed(seed)
        positions = sample_clusters(params["n"], n_atoms, t_min, t_max, sweeps, gen, epsilon=epsilon, sigma=sigma)
        energy, forces = lennard_jones_energy_forces(positions, epsilon, sigma)
        return {"positions": positions.float(), "targets": torch.cat([energy[:, None], forces.flatten(1)], 1).float()}

    data = cached("lennard_jones", params, build, cache_dir, use_cache)
    x, y = data["positions"], data["targets"]
    splits = torch.split(torch.arange(len(x)), [n_train, n_val, n_test])
    train, val, test = (TensorDataset(x[i], y[i]) for i in splits)
    energy, forces = y[splits[0], 0].double(), y[splits[0], 1:].double()
    fill = {"output": "energy_forces", "energy_shift": (energy / n_atoms).mean().item(),
            "energy_scale": forces.square().mean().sqrt().item()}
    return DataBundle(name=name, task="energy_forces", train=train, val=val if n_val else None,
                      tests={"test": test} if n_test else {}, in_channels=3, out_channels=1, dim=0,
                      geometric=True, model_fill=fill, loss_weights={"energy": energy_weight, "forces": force_weight},
                      info={"n_atoms": n_atoms})
