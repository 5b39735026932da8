r"""Regression functions with a planted active subspace, to check that a model finds the directions it uses.

:math:`f(x) = \sin(a \cdot x) + (b \cdot x)^2` on :math:`x \sim U[-1, 1]^D`: ``f`` varies only in the plane
spanned by ``a`` and ``b``, which involve only the first ``n_relevant`` inputs (the others are distractors).
The bundle's ``info`` holds ``a``, ``b`` and the relevant indices, so a trained model's active subspace
(e.g. :meth:`kernelnn.layers.RBFLayer.active_subspace`) and feature ranking can be compared with the truth.
"""

from __future__ import annotations

import torch
from torch.utils.data import TensorDataset

from kernelnn.data.bundle import DataBundle


def planted_directions(dim: int, n_relevant: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Orthonormal ``a, b`` supported on the first ``n_relevant`` coordinates."""
    basis = torch.zeros(dim, 2, dtype=torch.float64)
    basis[:n_relevant] = torch.randn(n_relevant, 2, generator=generator, dtype=torch.float64)
    q, _ = torch.linalg.qr(basis[:n_relevant])
    a, b = torch.zeros(dim, dtype=torch.float64), torch.zeros(dim, dtype=torch.float64)
    a[:n_relevant], b[:n_relevant] = q[:, 0], q[:, 1]
    return a, b


def make_active_subspace(dim: int = 12, n_relevant: int = 4, n_train: int = 2000, n_val: int = 200,
                               n_test: int = 1000, noise: float = 0.0, seed: int = 0,
                               name: str = "active_subspace") -> DataBundle:
    """``(n, dim)`` inputs, ``(n, 1)`` targets ``sin(a.x) + (b.x)^2 (+ noise)``; see the module docstring."""
    if not 2 <= n_relevant <= dim:
        raise ValueError(f"{name}: data.n_relevant={n_relevant} must be between 2 and data.dim={dim}")
    gen = torch.Generator().manual_seed(seed)
    a, b = planted_directions(dim, n_relevant, gen)

    def sample(n: int) -> TensorDataset:
        x = torch.rand(n, dim, generator=gen, dtype=torch.float64) * 2 - 1
        y = torch.sin(x @ a) + (x @ b) ** 2 + noise * torch.randn(n, generator=gen, dtype=torch.float64)
        return TensorDataset(x.float(), y[:, None].float())

    train, val, test = sample(n_train), sample(n_val), sample(n_test)
    return DataBundle(name=name, task="regression", train=train, val=val if n_val else None, tests={"test": test},
                      in_channels=dim, out_channels=1, dim=0,
                      info={"a": a.float(), "b": b.float(), "relevant": list(range(n_relevant))})
