r"""Periodic atomic systems from our own molecular dynamics: Lennard-Jones and a two-species Morse liquid.

Potentials (reduced units), pair sums over a neighbour list (:func:`~kernelnn.layers.neighbor_list.neighbor_list`),
truncated and shifted at ``cutoff`` so the energy is continuous:

- ``"lennard_jones"``: one species, :math:`4\varepsilon[(\sigma/r)^{12} - (\sigma/r)^6]`, :math:`\varepsilon = \sigma
  = 1`, density 0.8 (a liquid near its triple point at the temperatures used);
- ``"morse_binary"``: two species (half each), :math:`D_{ab}[e^{-2\alpha(r - r_{ab})} - 2 e^{-\alpha(r - r_{ab})}]`
  with :math:`D = ((1.0, 1.5), (1.5, 0.8))`, :math:`r = ((1.0, 0.95), (0.95, 1.1))`, :math:`\alpha = 3`, density 0.9.

Energies, forces :math:`-\partial E/\partial x` and the stress :math:`\frac1V \partial E/\partial\varepsilon` come
from autograd in float64. Dynamics: Langevin (BAOAB splitting, unit masses, friction 1, time step 0.005) from a
cubic lattice with random species, a temperature per trajectory drawn from ``[t_min, t_max]``; after
``equilibrate`` steps a frame is kept every ``stride`` steps. Several short trajectories give the frames of a set.
"""

from __future__ import annotations

import math

import torch

from kernelnn.data.atomic_systems import AtomicSystems
from kernelnn.data.bundle import DataBundle, cached
from kernelnn.layers.neighbor_list import edge_vectors, neighbor_list

POTENTIALS = {
    "lennard_jones": {"species": 1, "density": 0.8},
    "morse_binary": {"species": 2, "density": 0.9},
}
_MORSE_D = ((1.0, 1.5), (1.5, 0.8))
_MORSE_R = ((1.0, 0.95), (0.95, 1.1))
_MORSE_ALPHA = 3.0


def _pair(kind: str, r: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    if kind == "lennard_jones":
        s6 = r.pow(-6)
        return 4 * (s6 * s6 - s6)
    depth = torch.tensor(_MORSE_D, dtype=r.dtype, device=r.device)[a, b]
    r0 = torch.tensor(_MORSE_R, dtype=r.dtype, device=r.device)[a, b]
    e = torch.exp(-_MORSE_ALPHA * (r - r0))
    return depth * (e * e - 2 * e)


def potential_energy(kind: str, positions: torch.Tensor, species: torch.Tensor, cell: torch.Tensor,
                     cutoff: float, batch: torch.Tensor | None = None) -> torch.Tensor:
    """Energies ``(B,)`` of periodic systems (differentiable in positions and cell); ``kind`` in ``POTENTIALS``."""
    if kind not in POTENTIALS:
        raise ValueError(f"potential_energy: kind={kind!r}; valid: {', '.join(POTENTIALS)}")
    batch = torch.zeros(positions.shape[0], dtype=torch.long) if batch is None else batch
    cells = cell if cell.dim() == 3 else cell[None]
    pairs = neighbor_list(positions, cutoff, batch=batch, cell=cells)
    d = edge_vectors(positions, pairs, batch=batch, cell=cells).norm(dim=-1)
    a, b = species[pairs.i], species[pairs.j]
    shifted = _pair(kind, d, a, b) - _pair(kind, torch.full_like(d, cutoff), a, b)
    return positions.new_zeros(cells.shape[0]).index_add(0, batch[pairs.i], shifted / 2)  # each pair listed twice


def energy_forces_stress(kind: str, positions: torch.Tensor, species: torch.Tensor, cell: torch.Tensor,
                         cutoff: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Energy ``()``, forces ``(N, 3)`` and stress ``(3, 3)`` of one periodic system, float64, by autograd."""
    x = positions.detach().double().requires_grad_()
    strain = torch.zeros(3, 3, dtype=torch.float64, requires_grad=True)
    symmetric = (strain + strain.T) / 2
    cell64 = cell.double()
    energy = potential_energy(kind, x + x @ symmetric, species, cell64 + cell64 @ symmetric, cutoff)[0]
    grad_x, grad_strain = torch.autograd.grad(energy, (x, strain))
    return energy.detach(), -grad_x, grad_strain / torch.linalg.det(cell64).abs()


def langevin_frames(kind: str, n_atoms: int, frames: int, temperature: float, cutoff: float, generator: torch.Generator,
                    equilibrate: int = 400, stride: int = 20, dt: float = 0.005,
                    friction: float = 1.0) -> dict[str, torch.Tensor]:
    """``frames`` configurations of one trajectory: positions ``(F, N, 3)``, species ``(N,)``, cell ``(3, 3)``."""
    spec = POTENTIALS[kind]
    per_side = math.ceil(n_atoms ** (1 / 3))
    side = (n_atoms / spec["density"]) ** (1 / 3)
    if cutoff > side / 2:
        raise ValueError(f"periodic atoms: {n_atoms} atoms at density {spec['density']} make a box of side "
                         f"{side:.3f}; the cutoff {cutoff} must be at most half of it")
    grid = torch.stack(torch.meshgrid(*[torch.arange(per_side, dtype=torch.float64)] * 3, indexing="ij"), -1)
    sites = grid.reshape(-1, 3)[torch.randperm(per_side ** 3, generator=generator)[:n_atoms]]
    x = (sites + 0.5) * (side / per_side)
    species = torch.randint(spec["species"], (n_atoms,), generator=generator)
    if spec["species"] == 2:  # half and half
        species = torch.zeros(n_atoms, dtype=torch.long)
        species[torch.randperm(n_atoms, generator=generator)[: n_atoms // 2]] = 1
    cell = torch.eye(3, dtype=torch.float64) * side
    v = torch.randn(n_atoms, 3, generator=generator, dtype=torch.float64) * math.sqrt(temperature)
    c1 = math.exp(-friction * dt)
    c2 = math.sqrt((1 - c1 * c1) * temperature)

    def forces(p: torch.Tensor) -> torch.Tensor:
        p = p.detach().requires_grad_()
        (g,) = torch.autograd.grad(potential_energy(kind, p, species, cell, cutoff).sum(), p)
        return -g.clamp(-1e3, 1e3)  # a lattice start has no overlaps; the clamp only guards the first steps

    f = forces(x)
    kept = []
    for step in range(equilibrate + frames * stride):
        v = v + 0.5 * dt * f  # B
        x = x + 0.5 * dt * v  # A
        v = c1 * v + c2 * torch.randn(n_atoms, 3, generator=generator, dtype=torch.float64)  # O
        x = x + 0.5 * dt * v  # A
        x = x % side
        f = forces(x)
        v = v + 0.5 * dt * f  # B
        if step >= equilibrate and (step - equilibrate) % stride == stride - 1:
            kept.append(x.clone())
    return {"positions": torch.stack(kept), "species": species, "cell": cell}


def _frames(kind: str, n_atoms: int, n_frames: int, trajectories: int, t_min: float, t_max: float, cutoff: float,
            seed: int, equilibrate: int, stride: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    per = [n_frames // trajectories + (k < n_frames % trajectories) for k in range(trajectories)]
    out: dict[str, list[torch.Tensor]] = {"positions": [], "species": [], "cell": [], "energy": [], "forces": [],
                                          "stress": []}
    for count in per:
        if count == 0:
            continue
        temperature = t_min + (t_max - t_min) * float(torch.rand((), generator=generator, dtype=torch.float64))
        run = langevin_frames(kind, n_atoms, count, temperature, cutoff, generator, equilibrate, stride)
        for x in run["positions"]:
            e, f, s = energy_forces_stress(kind, x, run["species"], run["cell"], cutoff)
            for key, value in (("positions", x), ("species", run["species"]), ("cell", run["cell"]),
                               ("energy", e), ("forces", f), ("stress", s)):
                out[key].append(value)
    return {key: torch.stack(values) for key, values in out.items()}


def make_periodic_atoms(kind: str = "lennard_jones", n_atoms: int = 64, n_train: int = 200, n_val: int = 40,
                        n_test: int = 100, test_atoms: list[int] | None = None, n_test_large: int = 4,
                        trajectories: int = 10, t_min: float = 0.7, t_max: float = 1.2, cutoff: float = 2.0,
                        equilibrate: int = 400, stride: int = 20, energy_weight: float = 1.0,
                        force_weight: float = 1.0, seed: int = 0, name: str | None = None,
                        cache_dir: str | None = None, use_cache: bool = True) -> DataBundle:
    """Frames of ``n_atoms`` for training / validation / test, and ``n_test_large`` frames at each size of
    ``test_atoms`` (e.g. ``[512, 4096]``) as extra test sets ``test_<size>``, each an
    :class:`~kernelnn.data.atomic_systems.AtomicSystems` (inputs positions, species, cell; targets energy and
    forces; batched without padding); the stress of every frame is kept in ``info``.

    The bundle offers models the number of species, a per-species energy shift (least squares of the training
    energies on the species counts) and the RMS force component (``energy_scale``)."""
    if kind not in POTENTIALS:
        raise ValueError(f"periodic_atoms: data.kind={kind!r}; valid: {', '.join(POTENTIALS)}")
    for key, value in (("n_atoms", n_atoms), ("n_train", n_train), ("trajectories", trajectories)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"periodic_atoms: data.{key}={value!r} must be a positive int")
    if not 0 < t_min <= t_max:
        raise ValueError(f"periodic_atoms: temperatures must satisfy 0 < data.t_min <= data.t_max, got {t_min}, "
                         f"{t_max}")
    sizes = [n_atoms] + list(test_atoms or [])
    params = dict(kind=kind, sizes=sizes, n=n_train + n_val + n_test, n_large=n_test_large,
                  trajectories=trajectories, t_min=t_min, t_max=t_max, cutoff=cutoff, seed=seed,
                  equilibrate=equilibrate, stride=stride)

    def build() -> dict[str, torch.Tensor]:
        data = {}
        for k, size in enumerate(sizes):
            count = params["n"] if k == 0 else n_test_large
            runs = trajectories if k == 0 else max(1, min(trajectories, count))
            frames = _frames(kind, size, count, runs, t_min, t_max, cutoff, seed + 1000 * k, equilibrate, stride)
            data.update({f"{key}_{size}": value for key, value in frames.items()})
        return data

    data = cached("periodic_atoms", params, build, cache_dir, use_cache)

    def dataset(size: int, index: torch.Tensor | None = None) -> AtomicSystems:
        take = (lambda t: t) if index is None else (lambda t: t[index])
        return AtomicSystems.from_frames(take(data[f"positions_{size}"]).float(), take(data[f"species_{size}"]),
                                         take(data[f"energy_{size}"]).float(), take(data[f"forces_{size}"]).float(),
                                         take(data[f"cell_{size}"]).float())

    splits = torch.split(torch.arange(params["n"]), [n_train, n_val, n_test])
    train, val, test = (dataset(n_atoms, i) for i in splits)
    tests = {"test": test} if n_test else {}
    tests.update({f"test_{size}": dataset(size) for size in sizes[1:]})
    species_count = POTENTIALS[kind]["species"]
    counts = torch.nn.functional.one_hot(data[f"species_{n_atoms}"][splits[0]], species_count).sum(1).double()
    energies = data[f"energy_{n_atoms}"][splits[0]]
    shift = torch.linalg.lstsq(counts, energies[:, None]).solution[:, 0]
    forces = data[f"forces_{n_atoms}"][splits[0]]
    fill = {"species": species_count, "energy_shift": [float(v) for v in shift],
            "energy_scale": float(forces.square().mean().sqrt()), "cutoff": cutoff}
    return DataBundle(name=name or kind, task="energy_forces", train=train, val=val if n_val else None, tests=tests,
                      in_channels=3, out_channels=1, dim=0, geometric=True, model_fill=fill,
                      loss_weights={"energy": energy_weight, "forces": force_weight},
                      info={"n_atoms": n_atoms, "stress": {size: data[f"stress_{size}"] for size in sizes}})
