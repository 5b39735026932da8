"""e3nn's "tetris" benchmark: the eight 3-D tetromino shapes of four unit cubes, classified from point positions.

Two of the shapes are mirror images of each other (``chiral_1``, ``chiral_2``), so a model must see parity-odd
features (pseudoscalars) to reach 100%. As in e3nn's example, the model trains on the shapes as given and is
tested on randomly rotated copies: 100% test accuracy is only possible for a rotation-invariant classifier.
Test (and validation) copies are also translated and their points shuffled.
"""

from __future__ import annotations

import torch
from torch.utils.data import TensorDataset

from kernelnn.data.bundle import DataBundle

SHAPES = {
    "chiral_1": [(0, 0, 0), (0, 0, 1), (1, 0, 0), (1, 1, 0)],
    "chiral_2": [(0, 0, 0), (0, 0, 1), (1, 0, 0), (1, -1, 0)],
    "square": [(0, 0, 0), (1, 0, 0), (0, 1, 0), (1, 1, 0)],
    "line": [(0, 0, 0), (0, 0, 1), (0, 0, 2), (0, 0, 3)],
    "corner": [(0, 0, 0), (0, 0, 1), (0, 1, 0), (1, 0, 0)],
    "L": [(0, 0, 0), (0, 0, 1), (0, 0, 2), (0, 1, 0)],
    "T": [(0, 0, 0), (0, 0, 1), (0, 0, 2), (0, 1, 1)],
    "zigzag": [(0, 0, 0), (1, 0, 0), (1, 1, 0), (2, 1, 0)],
}


def tetris_shapes(dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """The eight shapes ``(8, 4, 3)`` and their labels ``(8,)`` (the order of :data:`SHAPES`)."""
    return torch.tensor(list(SHAPES.values()), dtype=dtype), torch.arange(len(SHAPES))


def random_rotations(n: int, generator: torch.Generator | None = None,
                     dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``n`` rotation matrices ``(n, 3, 3)`` drawn uniformly (Haar) from SO(3): unit quaternions from normalised
    Gaussian 4-vectors."""
    q = torch.randn(n, 4, generator=generator, dtype=torch.float64)
    w, x, y, z = (q / q.norm(dim=1, keepdim=True)).unbind(1)
    rows = [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
            2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
            2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]
    return torch.stack(rows, 1).reshape(n, 3, 3).to(dtype)


def _moved_copies(n: int, generator: torch.Generator, shift: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` shapes (cycling through the eight), each rotated, translated and with its points shuffled."""
    shapes, labels = tetris_shapes(torch.float64)
    labels = labels.repeat(n // len(SHAPES) + 1)[:n]
    points = shapes[labels]
    points = points @ random_rotations(n, generator).transpose(1, 2)
    points = points + shift * torch.randn(n, 1, 3, generator=generator, dtype=torch.float64)
    order = torch.argsort(torch.rand(n, 4, generator=generator), dim=1)
    points = torch.gather(points, 1, order[..., None].expand(-1, -1, 3))
    return points.float(), labels


def make_tetris(train_copies: int = 16, n_val: int = 200, n_test: int = 1000, train_rotated: bool = False,
           shift: float = 2.0, seed: int = 0, name: str = "tetris") -> DataBundle:
    """Point clouds ``(n, 4, 3)`` and shape labels ``(n,)`` in ``[0, 8)``.

    Train: the eight shapes as given, ``train_copies`` times each (``train_rotated=True``: randomly rotated,
    translated and shuffled copies instead). Validation / test: ``n_val`` / ``n_test`` rotated, translated
    (Gaussian, std ``shift``) and shuffled copies.
    """
    if isinstance(train_copies, bool) or not isinstance(train_copies, int) or train_copies < 1:
        raise ValueError(f"tetris: data.train_copies={train_copies!r} must be a positive int")
    for key, value in (("n_val", n_val), ("n_test", n_test)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"tetris: data.{key}={value!r} must be an int >= 0")
    gen = torch.Generator().manual_seed(seed)
    n_train = train_copies * len(SHAPES)
    if train_rotated:
        train = TensorDataset(*_moved_copies(n_train, gen, shift))
    else:
        shapes, labels = tetris_shapes()
        train = TensorDataset(shapes.repeat(train_copies, 1, 1), labels.repeat(train_copies))
    val = TensorDataset(*_moved_copies(n_val, gen, shift)) if n_val else None
    tests = {"test": TensorDataset(*_moved_copies(n_test, gen, shift))} if n_test else {}
    return DataBundle(name=name, task="classification", train=train, val=val, tests=tests, in_channels=3,
                      out_channels=len(SHAPES), dim=0,
                      geometric=True, info={"classes": list(SHAPES)})
