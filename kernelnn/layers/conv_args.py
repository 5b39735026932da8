"""The arguments every convolution-like layer shares: per-dimension integers, padding modes, and padding itself."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def int_tuple(value: int | Sequence[int], dim: int, name: str, owner: str, minimum: int) -> tuple[int, ...]:
    """``value`` as ``dim`` integers ``>= minimum`` (one int means the same for every dimension)."""
    values = (value,) * dim if isinstance(value, int) else tuple(value)
    if len(values) != dim or any(isinstance(v, bool) or not isinstance(v, int) or v < minimum for v in values):
        raise ValueError(f"{owner}: {name}={value!r} must be an int >= {minimum} or {dim} of them")
    return values


def check_padding_mode(mode: str, owner: str) -> None:
    if mode not in PADDING_MODES:
        raise ValueError(f"{owner}: padding_mode={mode!r} must be one of {', '.join(PADDING_MODES)}")


def pad(x: torch.Tensor, pads: Sequence[tuple[int, int]], mode: str) -> torch.Tensor:
    """``x (batch, channels, *spatial)`` padded by ``(left, right)`` per spatial dim in ``mode`` (``PADDING_MODES``)."""
    if not any(p for pair in pads for p in pair):
        return x
    flat = [p for pair in reversed(pads) for p in pair]  # F.pad starts from the last dim
    return F.pad(x, flat, mode="constant" if mode == "zeros" else mode)
