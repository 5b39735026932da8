r"""Linear layers that consume deltas and accumulate: the compute side of the delta activation layer.

A linear map commutes with summation over time, so a layer fed :math:`\delta_t = q(a_t) - q(a_{t-1})` recovers
its dense output by accumulation:

.. math:: y_t = b + W q(a_t) = y_{t-1} + W \delta_t, \qquad y_{-1} = b.

Only the non-zero entries of :math:`\delta_t` cost multiply-accumulates (MACs); in eval mode and in streaming the
layers count the MACs a dense layer would do and those skipped because an input was zero
(:meth:`mac_statistics`). Taps on padding are counted in neither.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


class _Accumulating:
    """Shared state handling: streamed accumulator, MAC counters."""

    def _init_accumulator(self) -> None:
        self._accumulated: torch.Tensor | None = None
        for name in ("macs_dense", "macs_performed"):
            self.register_buffer(name, torch.zeros((), dtype=torch.int64), persistent=False)

    def reset(self) -> None:
        """Forget the streamed accumulator (the next :meth:`step` starts a sequence)."""
        self._accumulated = None

    def _accumulate_step(self, increment: torch.Tensor) -> torch.Tensor:
        if self._accumulated is not None and self._accumulated.shape != increment.shape:
            raise ValueError(f"{type(self).__name__}.step: frame gives output shape {tuple(increment.shape)}, the "
                             f"previous frames {tuple(self._accumulated.shape)}; call reset() between sequences")
        self._accumulated = increment if self._accumulated is None else self._accumulated + increment
        return self._accumulated

    def reset_statistics(self) -> None:
        self.macs_dense.zero_()
        self.macs_performed.zero_()

    def mac_statistics(self) -> dict[str, float]:
        """MACs a dense layer would have done on the counted inputs, those done, and the fraction skipped."""
        dense, performed = int(self.macs_dense), int(self.macs_performed)
        return {"macs_dense": dense, "macs_performed": performed, "macs_skipped": dense - performed,
                "skipped_fraction": (dense - performed) / dense if dense else 0.0}


class DeltaLinear(nn.Linear, _Accumulating):
    r"""``nn.Linear`` on deltas, accumulated over time: ``(batch, time, ..., in) -> (batch, time, ..., out)``
    equals ``nn.Linear`` on ``q(a)`` (up to rounding). Streaming: :meth:`step` on ``(batch, ..., in)``.

    Parameters as :class:`torch.nn.Linear`; :meth:`from_linear` copies an existing layer.

    Example
    -------
    >>> layer = DeltaLinear(16, 4)
    >>> deltas = torch.randn(2, 6, 16)
    >>> torch.allclose(layer(deltas), F.linear(deltas.cumsum(1), layer.weight, layer.bias), atol=1e-5)
    True
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None, dtype=None) -> None:
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        self._init_accumulator()

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> DeltaLinear:
        layer = cls(linear.in_features, linear.out_features, bias=linear.bias is not None,
                    device=linear.weight.device, dtype=linear.weight.dtype)
        layer.load_state_dict(linear.state_dict())
        return layer

    def _check(self, x: torch.Tensor, leading: int, where: str) -> None:
        if x.dim() < leading + 1 or x.shape[-1] != self.in_features:
            what = "(batch, time, ..., in_features)" if leading == 2 else "(batch, ..., in_features)"
            raise ValueError(f"DeltaLinear.{where}: input must be {what} with in_features={self.in_features}, "
                             f"got shape {tuple(x.shape)}")

    def _bias(self) -> torch.Tensor | float:
        return 0.0 if self.bias is None else self.bias

    @torch.no_grad()
    def _count(self, delta: torch.Tensor) -> None:
        self.macs_dense += delta.numel() * self.out_features
        self.macs_performed += torch.count_nonzero(delta) * self.out_features

    def forward(self, delta: torch.Tensor) -> torch.Tensor:
        self._check(delta, 2, "forward")
        if not self.training:
            self._count(delta)
        return F.linear(delta, self.weight).cumsum(1) + self._bias()

    def step(self, delta: torch.Tensor) -> torch.Tensor:
        """One frame's delta ``(batch, ..., in)``: the accumulated output ``b + W sum(deltas so far)``."""
        self._check(delta, 1, "step")
        self._count(delta)
        return self._accumulate_step(F.linear(delta, self.weight)) + self._bias()


class DeltaConv2d(nn.Conv2d, _Accumulating):
    r"""``nn.Conv2d`` on deltas, accumulated over time: ``(batch, time, C_in, H, W) -> (batch, time, C_out,
    H', W')`` equals the convolution of ``q(a)`` frame by frame (up to rounding; every padding mode is linear).
    Streaming: :meth:`step` on ``(batch, C_in, H, W)``.

    Parameters as :class:`torch.nn.Conv2d`; :meth:`from_conv` copies an existing layer. MACs are counted per
    output position and tap that lands on an input pixel: ``C_out / groups`` per non-zero input under the tap.

    Example
    -------
    >>> layer = DeltaConv2d(8, 16, 3, padding=1)
    >>> layer(torch.randn(2, 6, 8, 12, 12)).shape
    torch.Size([2, 6, 16, 12, 12])
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._init_accumulator()
        # One all-ones filter per group: convolving an input's non-zero mask with it counts the taps that cost MACs.
        self.register_buffer("_tap_counter", torch.ones(self.groups, self.in_channels // self.groups,
                                                        *self.kernel_size), persistent=False)

    @classmethod
    def from_conv(cls, conv: nn.Conv2d) -> DeltaConv2d:
        layer = cls(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride, padding=conv.padding,
                    dilation=conv.dilation, groups=conv.groups, bias=conv.bias is not None,
                    padding_mode=conv.padding_mode, device=conv.weight.device, dtype=conv.weight.dtype)
        layer.load_state_dict(conv.state_dict())
        return layer

    def _check(self, x: torch.Tensor, dims: int, where: str) -> None:
        channel = dims - 3
        if x.dim() != dims or x.shape[channel] != self.in_channels:
            what = "(batch, time, C_in, H, W)" if dims == 5 else "(batch, C_in, H, W)"
            raise ValueError(f"DeltaConv2d.{where}: input must be {what} with C_in={self.in_channels}, got shape "
                             f"{tuple(x.shape)}")

    def _bias(self) -> torch.Tensor | float:
        return 0.0 if self.bias is None else self.bias[:, None, None]

    @torch.no_grad()
    def _count(self, frames: torch.Tensor) -> None:
        """``frames``: ``(n, C_in, H, W)`` deltas."""
        counter = self._tap_counter.to(frames.dtype)
        taps = F.conv2d((frames != 0).to(frames.dtype), counter, None, self.stride, self.padding, self.dilation,
                        self.groups)
        all_taps = F.conv2d(torch.ones_like(frames[:1]), counter, None, self.stride, self.padding, self.dilation,
                            self.groups)
        per_tap = self.out_channels // self.groups
        self.macs_performed += taps.sum().round().long() * per_tap
        self.macs_dense += all_taps.sum().round().long() * per_tap * frames.shape[0]

    def forward(self, delta: torch.Tensor) -> torch.Tensor:
        self._check(delta, 5, "forward")
        frames = rearrange(delta, "b t ... -> (b t) ...")
        if not self.training:
            self._count(frames)
        out = rearrange(self._conv_forward(frames, self.weight, None), "(b t) ... -> b t ...", b=delta.shape[0])
        return out.cumsum(1) + self._bias()

    def step(self, delta: torch.Tensor) -> torch.Tensor:
        """One frame's delta ``(batch, C_in, H, W)``: the accumulated output."""
        self._check(delta, 4, "step")
        self._count(delta)
        return self._accumulate_step(self._conv_forward(delta, self.weight, None)) + self._bias()
