"""Atomic systems of any sizes, batched without padding: atoms of a batch concatenated, plus a system index.

A sample is one system: ``((positions (n, 3), species (n,), cell (3, 3)), {"energy": (), "forces": (n, 3)})``
(no cell for open systems). :meth:`AtomicSystems.collate` joins samples of any sizes as PyTorch Geometric does:

- inputs ``(positions (N, 3), species (N,), batch (N,), cells (B, 3, 3))``, the arguments of
  :class:`~kernelnn.models.InteratomicPotential`, ``batch[i]`` the system of atom ``i``;
- targets ``{"energy": (B,), "forces": (N, 3), "atoms": (B,)}``, the ``energy_forces`` task's packed form
  (:class:`~kernelnn.training.tasks.EnergyForcesTask`).

The training loop uses a dataset's ``collate`` when it has one, so nothing in the loop is specific to atoms.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import Dataset


class AtomicSystems(Dataset):
    """Systems stored concatenated (``positions (N, 3)``, ``species (N,)``, ``forces (N, 3)``) with their sizes
    ``atoms (F,)``, energies ``(F,)`` and cells ``(F, 3, 3)`` (``None``: open systems).

    Build it from per-system lists with :meth:`from_frames`. Values are checked here, so a bad one is reported
    with the system it belongs to.
    """

    def __init__(self, positions: torch.Tensor, species: torch.Tensor, atoms: torch.Tensor, energy: torch.Tensor,
                 forces: torch.Tensor, cells: torch.Tensor | None = None) -> None:
        name = "AtomicSystems"
        atoms = torch.as_tensor(atoms)
        if atoms.dim() != 1 or atoms.is_floating_point() or atoms.is_complex() or bool((atoms < 1).any()):
            raise ValueError(f"{name}: atoms must be a 1-D integer tensor of system sizes >= 1, got "
                             f"{atoms.dtype} of shape {tuple(atoms.shape)}: {atoms.flatten()[:8].tolist()}")
        atoms = atoms.long()
        total = int(atoms.sum())
        for what, t, shape in (("positions", positions, (total, 3)), ("species", species, (total,)),
                               ("forces", forces, (total, 3)), ("energy", energy, (len(atoms),))):
            if tuple(t.shape) != shape:
                raise ValueError(f"{name}: {len(atoms)} systems of {total} atoms in all need {what} of shape {shape}, "
                                 f"got {tuple(t.shape)}")
        if cells is not None and tuple(cells.shape) != (len(atoms), 3, 3):
            raise ValueError(f"{name}: cells must have shape ({len(atoms)}, 3, 3), got {tuple(cells.shape)}")
        if species.dtype != torch.long:
            raise TypeError(f"{name}: species must be int64 indices, got {species.dtype}")
        for what, t in (("positions", positions), ("forces", forces), ("energy", energy), ("cells", cells)):
            if t is not None and not t.is_floating_point():
                raise TypeError(f"{name}: {what} must be floating point, got {t.dtype}")
        owner = torch.arange(len(atoms)).repeat_interleave(atoms)
        for what, t, rows in (("positions", positions, owner), ("forces", forces, owner), ("energy", energy, None),
                              ("cells", cells, None)):
            if t is not None and not bool(torch.isfinite(t).all()):
                bad = (~torch.isfinite(t)).flatten(1).any(1) if t.dim() > 1 else ~torch.isfinite(t)
                systems = (rows[bad] if rows is not None else bad.nonzero()[:, 0]).unique()
                raise ValueError(f"{name}: {what} of {len(systems)} system(s) hold NaN or inf, the first is system "
                                 f"{int(systems[0])}")
        self.positions, self.species, self.atoms, self.energy, self.forces, self.cells = (
            positions, species, atoms, energy, forces, cells)
        self.start = torch.cat([atoms.new_zeros(1), atoms.cumsum(0)[:-1]])

    @classmethod
    def from_frames(cls, positions: Sequence[torch.Tensor], species: Sequence[torch.Tensor],
                    energy: Sequence[float] | torch.Tensor, forces: Sequence[torch.Tensor],
                    cells: Sequence[torch.Tensor] | torch.Tensor | None = None) -> AtomicSystems:
        """From one tensor per system (``positions[k] (n_k, 3)``, ...); stacked ``(F, n, 3)`` tensors work too."""
        sizes = [len(p) for p in positions]
        if not len(species) == len(forces) == len(energy) == len(sizes) or (cells is not None and
                                                                            len(cells) != len(sizes)):
            raise ValueError(f"AtomicSystems: {len(sizes)} systems of positions, but {len(species)} of species, "
                             f"{len(forces)} of forces, {len(energy)} energies"
                             + ("" if cells is None else f", {len(cells)} cells"))
        for k, (n, z, f) in enumerate(zip(sizes, species, forces, strict=True)):
            if len(z) != n or len(f) != n:
                raise ValueError(f"AtomicSystems: system {k} has {n} positions but {len(z)} species and {len(f)} "
                                 "forces")
        energy = torch.as_tensor(energy)
        energy = energy if energy.is_floating_point() else energy.to(torch.get_default_dtype())
        if not sizes:
            return cls(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long),
                       energy.reshape(0), torch.zeros(0, 3), None if cells is None else torch.zeros(0, 3, 3))
        return cls(torch.cat(list(positions)), torch.cat(list(species)), torch.tensor(sizes), energy,
                   torch.cat(list(forces)), None if cells is None else torch.stack(list(cells)))

    def __len__(self) -> int:
        return len(self.atoms)

    def __getitem__(self, k: int):
        if not -len(self) <= k < len(self):
            raise IndexError(f"AtomicSystems: system {k} of {len(self)}")
        rows = slice(int(self.start[k]), int(self.start[k] + self.atoms[k]))
        inputs = (self.positions[rows], self.species[rows])
        if self.cells is not None:
            inputs = (*inputs, self.cells[k])
        return inputs, {"energy": self.energy[k], "forces": self.forces[rows]}

    @staticmethod
    def collate(samples: Sequence) -> tuple[tuple[torch.Tensor, ...], dict[str, torch.Tensor]]:
        """Samples of any sizes -> one padding-free batch (module docstring)."""
        inputs, targets = zip(*samples, strict=True)
        atoms = torch.tensor([len(x[0]) for x in inputs], dtype=torch.long)
        batch = torch.arange(len(atoms)).repeat_interleave(atoms)
        joined = (torch.cat([x[0] for x in inputs]), torch.cat([x[1] for x in inputs]), batch)
        if len(inputs[0]) == 3:
            joined = (*joined, torch.stack([x[2] for x in inputs]))
        return joined, {"energy": torch.stack([t["energy"] for t in targets]),
                        "forces": torch.cat([t["forces"] for t in targets]), "atoms": atoms}

    def inputs_and_targets(self) -> tuple[tuple[torch.Tensor, ...], dict[str, torch.Tensor]]:
        """The whole set as one batch."""
        batch = torch.arange(len(self)).repeat_interleave(self.atoms)
        inputs = (self.positions, self.species, batch)
        if self.cells is not None:
            inputs = (*inputs, self.cells)
        return inputs, {"energy": self.energy, "forces": self.forces, "atoms": self.atoms}

    def sizes(self) -> list[int]:
        """The distinct system sizes, ascending."""
        return sorted(set(self.atoms.tolist()))
