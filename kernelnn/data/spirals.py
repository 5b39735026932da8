"""Interleaved spirals: a small generated classification problem in 2-D (one arm per class)."""

from __future__ import annotations

import math

import torch
from torch.utils.data import TensorDataset

from kernelnn.data.bundle import DataBundle


def spiral_points(n: int, n_classes: int, noise: float, turns: float, generator: torch.Generator):
    """``n`` points ``(n, 2)`` in ``[-1, 1]^2`` and labels ``(n,)``: arm ``c`` is rotated by ``2 pi c / C``."""
    labels = torch.randint(n_classes, (n,), generator=generator)
    r = torch.rand(n, generator=generator)
    angle = 2 * math.pi * (turns * r + labels / n_classes)
    points = r[:, None] * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
    return points + noise * torch.randn(n, 2, generator=generator), labels


def make_spirals(
    n_classes: int = 3, n_train: int = 2000, n_val: int = 200, n_test: int = 1000, noise: float = 0.03,
    turns: float = 1.0, seed: int = 0, name: str = "spirals",
) -> DataBundle:
    """Generated spiral classification: inputs ``(n, 2)``, labels ``(n,)`` in ``[0, n_classes)``."""
    if n_classes < 2:
        raise ValueError(f"spirals: data.n_classes={n_classes} must be at least 2")
    gen = torch.Generator().manual_seed(seed)
    sets = [TensorDataset(*spiral_points(k, n_classes, noise, turns, gen)) for k in (n_train, n_val, n_test)]
    return DataBundle(
        name=name, task="classification", train=sets[0], val=sets[1] if n_val else None,
        tests={"test": sets[2]}, in_channels=2, out_channels=n_classes, dim=0,
    )
