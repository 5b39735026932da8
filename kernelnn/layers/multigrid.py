r"""A linear operator parameterized by a multigrid V-cycle (MgNO).

Source: He, Liu, Xu, "MgNO: Efficient Parameterization of Linear Operators via Multigrid" (2023).

:class:`MgConv` maps ``f`` (``in_channels``) to ``u`` (``out_channels``) by one V-cycle for a learned
"equation" :math:`A u = f`, following the authors' code. Going down, level :math:`\ell` smooths
:math:`\nu_\ell` times with :math:`u \leftarrow u + S(f - A u)`, each step with its own 3x3 convolutions
:math:`A, S` (the first step on the finest level starts from :math:`u = 0`, so it is :math:`u = S f`); then
both are restricted by stride-2 3x3 convolutions, :math:`u_{\ell+1} = \Pi_\ell u_\ell` (the coarse initial
guess) and :math:`f_{\ell+1} = R_\ell(f_\ell - \tilde A_\ell u_\ell)`, the residual taken with a restriction's
own 3x3 convolution :math:`\tilde A_\ell`. Going up, :math:`u_\ell \leftarrow u_\ell + P_\ell u_{\ell+1}`
(stride-2 transposed 4x4 convolution). Boundary conditions enter through the padding: ``"zeros"``
(homogeneous Dirichlet) or ``"circular"`` (periodic).

The official Darcy setting (24 channels, 4 layers, 6 levels) is reported with 572,661 parameters; this
implementation has 489,603 with those settings. The authors' repository holds several V-cycle variants and
the exact one behind that count was not identified; the structure here follows its ``Restrict(Pi, R, A)``
variant without post-smoothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from kernelnn.layers.input_checks import check_dtype_matches

_CONV = {1: nn.Conv1d, 2: nn.Conv2d}
_CONV_T = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d}
PADDING_MODES = ("zeros", "circular")


def check_multigrid_input(x: torch.Tensor, in_channels: int, dim: int, levels: int, name: str) -> None:
    """The input check of :class:`MgConv` and of models built from it: ``x`` must be a float tensor ``(batch,
    in_channels, *spatial)`` with ``dim`` spatial sizes divisible by ``2 ** (levels - 1)``; errors name ``name``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: input must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != dim + 2 or x.shape[1] != in_channels:
        raise ValueError(f"{name}: input must have shape (batch, {in_channels}, {', '.join('n' * dim)}), "
                         f"got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name}: input dtype must be floating point, got {x.dtype}")
    factor = 2 ** (levels - 1)
    if any(n % factor for n in x.shape[2:]):
        raise ValueError(f"{name}: spatial size {tuple(x.shape[2:])} must be divisible by 2**(levels-1) = "
                         f"{factor} for levels={levels}")


class Prolongation(nn.Module):
    """Stride-2 transposed 4-tap convolution doubling each spatial size, with zero or circular boundary."""

    def __init__(self, channels_in: int, channels_out: int, dim: int, padding_mode: str) -> None:
        super().__init__()
        self.circular = padding_mode == "circular"
        self.dim = dim
        # Circular: pad one cell each side by wrap-around, transpose-convolve without padding, crop the middle.
        self.conv = _CONV_T[dim](channels_in, channels_out, kernel_size=4, stride=2, padding=0 if self.circular else 1,
                                 bias=False)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        if not self.circular:
            return self.conv(u)
        sizes = u.shape[2:]
        y = self.conv(F.pad(u, [1, 1] * self.dim, mode="circular"))
        return y[(..., *(slice(3, 3 + 2 * n) for n in sizes))]


class MgConv(nn.Module):
    r"""One V-cycle as a learned linear operator ``(batch, in_channels, *spatial) -> (batch, out_channels, *spatial)``.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of the right-hand side ``f`` and of the solution ``u``.
    levels : int
        Grid levels; every spatial size must be divisible by ``2 ** (levels - 1)``.
    smoothing : int or sequence of int
        Smoothing steps per level, finest first (MgNO's Darcy setting: 1 on each level, 2 at the coarsest).
    dim : int
        1 or 2 spatial dims.
    padding_mode : str
        ``"zeros"`` (Dirichlet) or ``"circular"`` (periodic).

    Example
    -------
    >>> MgConv(3, 8, levels=4)(torch.randn(2, 3, 32, 32)).shape
    torch.Size([2, 8, 32, 32])
    """

    def __init__(self, in_channels: int, out_channels: int, levels: int = 4, smoothing: int | Sequence[int] = 1,
                 dim: int = 2, padding_mode: str = "zeros") -> None:
        super().__init__()
        name = type(self).__name__
        if dim not in _CONV:
            raise ValueError(f"{name}: dim={dim} is not supported; supported: {sorted(_CONV)}")
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"{name}: padding_mode={padding_mode!r} is not one of {PADDING_MODES}")
        if not isinstance(levels, int) or levels < 1:
            raise ValueError(f"{name}: levels={levels!r} must be a positive int")
        steps = [smoothing] * levels if isinstance(smoothing, int) else list(smoothing)
        if len(steps) != levels or any(s < 1 for s in steps):
            raise ValueError(f"{name}: smoothing={smoothing!r} must be a positive int or {levels} positive ints")
        for arg, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: {arg}={value!r} must be a positive int")
        self.in_channels, self.out_channels, self.levels, self.dim = in_channels, out_channels, levels, dim
        self.smoothing, self.padding_mode = tuple(steps), padding_mode

        def conv(cin: int, cout: int, stride: int = 1) -> nn.Module:
            return _CONV[dim](cin, cout, 3, stride=stride, padding=1, padding_mode=padding_mode, bias=False)

        # One (A, S) pair per smoothing step: A maps u to f space, S maps f to u space. The finest level's first
        # step has no A (u starts at 0); a placeholder keeps the indexing simple.
        self.A = nn.ModuleList(
            nn.ModuleList(nn.Identity() if (lvl, i) == (0, 0) else conv(out_channels, in_channels) for i in range(n))
            for lvl, n in enumerate(steps)
        )
        self.S = nn.ModuleList(nn.ModuleList(conv(in_channels, out_channels) for _ in range(n)) for n in steps)
        self.A_res = nn.ModuleList(conv(out_channels, in_channels) for _ in range(levels - 1))
        self.Pi = nn.ModuleList(conv(out_channels, out_channels, stride=2) for _ in range(levels - 1))
        self.R = nn.ModuleList(conv(in_channels, in_channels, stride=2) for _ in range(levels - 1))
        self.P = nn.ModuleList(Prolongation(out_channels, out_channels, dim, padding_mode) for _ in range(levels - 1))

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, levels={self.levels}, smoothing={self.smoothing}, "
                f"padding_mode={self.padding_mode!r}")

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ``TypeError``/``ValueError`` unless ``x`` is a float tensor ``(batch, in_channels, *spatial)``
        whose spatial sizes the V-cycle can halve ``levels - 1`` times."""
        check_multigrid_input(x, self.in_channels, self.dim, self.levels, type(self).__name__)
        check_dtype_matches(x, self, type(self).__name__)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        self.check_input(f)
        solutions = []
        u = None
        for level in range(self.levels):
            for A, S in zip(self.A[level], self.S[level], strict=True):
                u = S(f) if u is None else u + S(f - A(u))
            solutions.append(u)
            if level < self.levels - 1:
                u, f = self.Pi[level](u), self.R[level](f - self.A_res[level](u))
        u = solutions[-1]
        for level in range(self.levels - 2, -1, -1):
            u = solutions[level] + self.P[level](u)
        return u
