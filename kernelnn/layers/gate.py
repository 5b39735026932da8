r"""The gated nonlinearity of equivariant networks (Weiler et al. 2018; e3nn's ``Gate``).

Features ``(..., channels, classes, (L+1)^2)``: invariant scalars (class 0, degree 0) go through ``SiLU``;
pseudoscalars (class 1, degree 0, which change sign under inversion) through ``tanh``, an odd function, so
they keep their parity; every other degree block is multiplied by ``sigmoid`` of a gate, one per
(channel, class, degree), computed linearly from the invariant scalars. Each block is scaled as a whole by an
invariant, so the map is O(3)-equivariant.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from kernelnn.layers.spherical_harmonics import degrees_of


class Gate(nn.Module):
    """``(..., channels, classes, (L+1)^2) -> same shape``."""

    def __init__(self, L: int, channels: int, classes: int = 1) -> None:
        super().__init__()
        if isinstance(L, bool) or not isinstance(L, int) or L < 0:
            raise ValueError(f"Gate: L={L!r} must be an int >= 0")
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
            raise ValueError(f"Gate: channels={channels!r} must be a positive int")
        if classes not in (1, 2):
            raise ValueError(f"Gate: classes={classes!r} must be 1 or 2")
        self.L, self.channels, self.classes = L, channels, classes
        self.gates = nn.Linear(channels, channels * classes * L) if L > 0 else None
        # Degree of each coefficient above 0, as an index into the L gates of a (channel, class).
        self.register_buffer("gate_index", degrees_of(L)[1:] - 1, persistent=False)

    def extra_repr(self) -> str:
        return f"L={self.L}, channels={self.channels}, classes={self.classes}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        expected = (self.channels, self.classes, (self.L + 1) ** 2)
        if x.dim() < 3 or tuple(x.shape[-3:]) != expected:
            raise ValueError(f"Gate: input must have shape (..., {', '.join(map(str, expected))}) (channels, "
                             f"classes, (L+1)^2 with L={self.L}), got {tuple(x.shape)}")
        scalars = x[..., 0, 0]  # (..., channels)
        heads = [F.silu(scalars)[..., None]]
        if self.classes == 2:
            heads.append(torch.tanh(x[..., 1, 0])[..., None])
        first = torch.stack(heads, -2)  # (..., channels, classes, 1)
        if self.gates is None:
            return first
        gates = torch.sigmoid(self.gates(scalars)).unflatten(-1, (self.channels, self.classes, self.L))
        return torch.cat([first, x[..., 1:] * gates[..., self.gate_index]], -1)
