r"""The spatio-temporal FNO between Bochner spaces of Spectral-Refiner (Cao et al., "Spectral-Refiner: Accurate
Fine-Tuning of Spatiotemporal Fourier Neural Operator for Turbulent Flows", ICLR 2025).

The operator maps the last frames of a vorticity history to the trajectory that follows, as a function of
continuous time on a horizon ``(0, H]``: a map between Bochner spaces :math:`L^2(0, H; L^2(\mathbb T^2))`.
The number of output frames is a call-time choice (the sampling of that horizon), and the model ends in a
*linear* spectral convolution in :math:`(x, y, t)` added to the last input frame, so the Spectral-Refiner can
fine-tune that convolution alone, without mode truncation: the prediction is linear in its weights (the
estimator, through the advection term, is not).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import nn

from kernelnn.layers.pointwise import pointwise
from kernelnn.layers.skip import SKIPS
from kernelnn.layers.spectral import SpectralConv, check_modes_fit, max_modes
from kernelnn.models.fno import check_frames_input, grid_coordinates
from kernelnn.registry import ACTIVATIONS


class BochnerFNO(nn.Module):
    r"""Frames ``(batch, in_steps, X, Y)`` -> the trajectory that follows, ``(batch, out_steps, X, Y)``.

    Time runs on a latent grid :math:`s_j = j / T` (``T = out_steps``, in units of the horizon), ``j = 0..T``:
    :math:`s_0` is the last input frame's time, :math:`s_1..s_T` the output frames' times. The grid is zero-padded
    to the period ``1 + time_padding`` (time is not periodic), so the same weights act identically at every
    ``out_steps`` (resolution invariance in time as in space).

    1. Lifting: at every :math:`(x, y, s)` a point-wise linear map of the history frames and the coordinates
       :math:`(x, y, s)` to ``hidden_channels``.
    2. ``n_layers`` blocks :math:`v \leftarrow \sigma(K v + W v)`, :math:`K` a space-time :class:`SpectralConv`
       keeping ``n_modes = (m_x, m_y, m_t)``, :math:`W` the ``skip``.
    3. Output: a linear space-time :class:`SpectralConv` ``K_out`` to one channel, and no activation:
       :math:`w(s_j) = w_{\mathrm{last}} + (K_{\mathrm{out}} v)(s_j) - (K_{\mathrm{out}} v)(s_0)`. Subtracting the
       value at :math:`s_0` makes the trajectory start at the last input frame (the residual connection).

    Parameters
    ----------
    in_channels : int
        Input frames ``in_steps``.
    out_channels : int
        Default number of output frames; ``forward(x, out_steps=...)`` asks for any other sampling of the horizon.
    n_modes : sequence of 3 int
        Kept modes in ``x``, ``y`` and time, for the hidden and the output convolutions.
    hidden_channels, n_layers : int
        Width and number of the Fourier blocks.
    time_padding : float
        Zero padding of the time axis as a fraction of the horizon; ``time_padding * out_steps`` must be an integer
        for every ``out_steps`` used (the default 1.0 always is).
    activation, skip : str
        Names from :data:`kernelnn.registry.ACTIVATIONS` and :data:`kernelnn.registry.SKIPS`.

    Shapes: input ``(batch, in_steps, X, Y)`` on a periodic grid; output ``(batch, out_steps, X, Y)``.

    >>> model = BochnerFNO(4, 6, n_modes=(6, 6, 3), hidden_channels=8, n_layers=2)
    >>> model(torch.randn(2, 4, 16, 16)).shape, model(torch.randn(2, 4, 16, 16), out_steps=12).shape
    (torch.Size([2, 6, 16, 16]), torch.Size([2, 12, 16, 16]))
    """

    def __init__(self, in_channels: int, out_channels: int, n_modes: Sequence[int] = (12, 12, 4),
                 hidden_channels: int = 20, n_layers: int = 4, time_padding: float = 1.0, activation: str = "gelu",
                 skip: str = "linear") -> None:
        super().__init__()
        name = type(self).__name__
        for arg, value in (("in_channels", in_channels), ("out_channels", out_channels),
                           ("hidden_channels", hidden_channels), ("n_layers", n_layers)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name}: {arg}={value!r} must be a positive int")
        n_modes = tuple(n_modes)
        if len(n_modes) != 3 or not all(isinstance(m, int) and m >= 1 for m in n_modes):
            raise ValueError(f"{name}: n_modes={list(n_modes)} needs 3 positive ints (x, y, t)")
        if not isinstance(time_padding, int | float) or isinstance(time_padding, bool) or not 0 < time_padding <= 4:
            raise ValueError(f"{name}: time_padding={time_padding!r} must be a fraction of the horizon in (0, 4]")
        self.in_steps, self.out_steps = in_channels, out_channels
        self.n_modes, self.time_padding = n_modes, float(time_padding)
        self.lifting = pointwise(in_channels + 3, hidden_channels, 3)
        self.spectral = nn.ModuleList(SpectralConv(hidden_channels, hidden_channels, n_modes)
                                      for _ in range(n_layers))
        make_skip = SKIPS.get(skip, owner=name, argument="skip")
        self.skips = nn.ModuleList(make_skip(hidden_channels, 3) for _ in range(n_layers))
        self.activation = ACTIVATIONS.build(activation, owner=name, argument="activation")
        self.output = SpectralConv(hidden_channels, 1, n_modes)
        self.time_grid(out_channels)  # the default out_steps must give a whole number of padding frames

    def extra_repr(self) -> str:
        return f"in_steps={self.in_steps}, out_steps={self.out_steps}, time_padding={self.time_padding}"

    def time_grid(self, out_steps: int) -> int:
        """Length of the padded latent time axis for ``out_steps`` frames (raises if the period is not exact)."""
        pad = self.time_padding * out_steps
        if abs(pad - round(pad)) > 1e-9 or round(pad) < 1:
            raise ValueError(f"{type(self).__name__}: out_steps={out_steps} with time_padding={self.time_padding} "
                             f"pads {pad:g} frames; the padding must be a positive whole number of frames so that the "
                             "time period is the same at every out_steps")
        return out_steps + round(pad)

    def check_input(self, x: torch.Tensor, out_steps: int | None = None) -> None:
        """Raise ``TypeError``/``ValueError`` unless ``x`` is a float tensor ``(batch, in_steps, X, Y)`` whose grid,
        with ``out_steps`` frames, resolves ``n_modes``."""
        name = type(self).__name__
        check_frames_input(x, self, self.in_steps)
        steps = self.out_steps if out_steps is None else out_steps
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
            raise ValueError(f"{name}: out_steps={steps!r} must be a positive int")
        check_modes_fit(self.n_modes, (x.shape[2], x.shape[3], self.time_grid(steps)), name)

    def latent(self, x: torch.Tensor, out_steps: int | None = None) -> torch.Tensor:
        """The features the output convolution reads, ``(batch, hidden_channels, X, Y, L)`` with ``L`` the padded
        time grid: everything before the last, linear layer (the part Spectral-Refiner freezes)."""
        self.check_input(x, out_steps)
        steps = self.out_steps if out_steps is None else out_steps
        b, _, nx, ny = x.shape
        s = torch.arange(steps + 1, device=x.device, dtype=x.dtype) / steps
        coords = grid_coordinates((nx, ny), x)
        features = torch.cat([
            repeat(x, "b c x y -> b c x y s", s=steps + 1),
            repeat(coords, "d x y -> b d x y s", b=b, s=steps + 1),
            repeat(s, "s -> b 1 x y s", b=b, x=nx, y=ny),
        ], dim=1)
        v = F.pad(self.lifting(features), (0, self.time_grid(steps) - steps - 1))
        for spectral, skip in zip(self.spectral, self.skips, strict=True):
            v = self.activation(spectral(v) + skip(v))
        return v

    def decode(self, field: torch.Tensor, x: torch.Tensor, out_steps: int | None = None) -> torch.Tensor:
        """Frames from the output convolution's ``field`` ``(batch, 1, X, Y, L)`` and the input frames ``x``: the
        residual connection from the last input frame, anchored so the trajectory starts there."""
        steps = self.out_steps if out_steps is None else out_steps
        g = rearrange(field, "b 1 x y s -> b s x y")
        return x[:, -1:] + g[:, 1: steps + 1] - g[:, :1]

    def forward(self, x: torch.Tensor, out_steps: int | None = None) -> torch.Tensor:
        return self.decode(self.output(self.latent(x, out_steps)), x, out_steps)

    def full_output_modes(self, spatial: Sequence[int], out_steps: int | None = None) -> tuple[int, int, int]:
        """Every mode up to the Nyquist of the grid ``spatial = (X, Y)`` with ``out_steps`` frames: the output
        convolution's ``n_modes`` after Spectral-Refiner lifts its truncation."""
        steps = self.out_steps if out_steps is None else out_steps
        return (*(max_modes(n) for n in spatial), max_modes(self.time_grid(steps)))

