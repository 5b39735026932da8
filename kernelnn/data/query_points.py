"""Field data as query points: each sample's input function whole, its output at a random subset of grid points.

Operator learners that answer at arbitrary points (DeepONet) train on a few points per function rather than the
whole output grid, as in the DeepONet paper; :class:`QueryPoints` draws a different subset per sample and epoch
(reproducibly: the subset depends on the seed, the epoch and the sample index only).
"""

from __future__ import annotations

import math

import torch
from torch.utils.data import Dataset, TensorDataset

from kernelnn.models.fno import grid_coordinates


class QueryPoints(Dataset):
    """``((u, coords), values)`` from a field dataset of ``(u, y)`` pairs ``(C_in, *grid)``, ``(C_out, *grid)``.

    ``coords`` is ``(n_queries, d)``: grid points ``i / N`` of ``y``'s grid drawn without replacement;
    ``values`` is ``(n_queries, C_out)``, ``y`` at those points (exact, no interpolation). Set :attr:`epoch` before
    each epoch for fresh points.
    """

    def __init__(self, fields: TensorDataset, n_queries: int, seed: int = 0) -> None:
        u, y = fields.tensors[:2]
        if y.dim() < 3:
            raise ValueError(f"QueryPoints: outputs must be fields (n, channels, *grid), got {tuple(y.shape)}")
        self.u, self.y, self.seed, self.epoch = u, y, seed, 0
        self.points = math.prod(y.shape[2:])
        if not 1 <= n_queries <= self.points:
            raise ValueError(f"QueryPoints: n_queries={n_queries} must be in [1, {self.points}] (the points of the "
                             f"output grid {tuple(y.shape[2:])})")
        self.n_queries = n_queries
        self.coords = grid_coordinates(y.shape[2:], y).flatten(1).T.contiguous()  # (P, d)

    def __len__(self) -> int:
        return len(self.u)

    def __getitem__(self, i: int):
        generator = torch.Generator().manual_seed((self.seed * 1_000_003 + self.epoch) * 1_000_003 + int(i))
        chosen = torch.randperm(self.points, generator=generator)[: self.n_queries]
        return (self.u[i], self.coords[chosen]), self.y[i].flatten(1).T[chosen]
