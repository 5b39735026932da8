"""A CNN applied frame by frame to videos, optionally with delta activations (temporal sparsity)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from kernelnn.layers.delta import DeltaActivation
from kernelnn.layers.delta_accumulate import DeltaConv2d, DeltaLinear
from kernelnn.layers.input_checks import check_dtype_matches
from kernelnn.layers.time_distributed import TimeDistributed


class FrameCNN(nn.Module):
    """``[conv -> batch norm -> max-pool -> ReLU] x len(channels)``, adaptive average pooling, linear head, on
    every frame of ``(batch, time, C, H, W)``; per-frame logits averaged over time -> ``(batch, classes)``.

    With ``delta=True`` each ReLU becomes a :class:`~kernelnn.layers.delta.DeltaActivation` emitting deltas,
    and the convolution / head after it a :class:`~kernelnn.layers.delta_accumulate.DeltaConv2d` /
    :class:`~kernelnn.layers.delta_accumulate.DeltaLinear` that accumulates them (pooling sits before the
    activation and the average pooling after it is linear, so the network computes the same function as with
    quantised activations). Each delta layer's ``fan_out`` is the MACs one of its outputs feeds in the next
    layer, so the sparsity penalty weighs deltas by the compute they cost. The first convolution sees the raw
    frames and stays dense.

    Parameters
    ----------
    in_channels, out_features : int
        Frame channels and classes.
    channels : sequence of int
        Output channels of each convolution stage.
    kernel_size, pool, pooled_size : int
        Odd kernel size ("same" padding), max-pool factor per stage, side of the grid averaged to before the head.
    delta : bool
        Build the delta version.
    delta_options : dict, optional
        More :class:`DeltaActivation` arguments (``threshold``, ``threshold_shape`` ``"layer"`` or ``"channel"``,
        ``learn_threshold``).

    Example
    -------
    >>> model = FrameCNN(1, 10, channels=[8, 16], delta=True)
    >>> model(torch.rand(2, 6, 1, 32, 32)).shape
    torch.Size([2, 10])
    """

    def __init__(self, in_channels: int, out_features: int, channels: Sequence[int] = (16, 32), kernel_size: int = 3,
                 pool: int = 2, pooled_size: int = 4, batch_norm: bool = True, delta: bool = False,
                 delta_options: dict | None = None) -> None:
        super().__init__()
        widths = [in_channels, *channels]
        if any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in [*widths, out_features]):
            raise ValueError(f"FrameCNN: channels must be positive ints, got in={in_channels}, "
                             f"channels={list(channels)}, out={out_features}")
        if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"FrameCNN: kernel_size={kernel_size!r} must be an odd positive int")
        for arg, value in (("pool", pool), ("pooled_size", pooled_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"FrameCNN: {arg}={value!r} must be a positive int")
        self.in_channels, self.delta = in_channels, delta
        options = dict(delta_options or {})
        if options.get("threshold_shape", "layer") not in ("layer", "channel") or "features" in options:
            raise ValueError(f"FrameCNN: delta_options={options!r}: threshold_shape must be 'layer' or 'channel' "
                             "(per-neuron steps need the frame size, unknown here) and features is set per stage")
        stages: list[nn.Module] = []
        for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            conv_args = (n_in, n_out, kernel_size)
            conv_kwargs = {"padding": kernel_size // 2, "bias": not batch_norm}
            if delta and i > 0:
                stages.append(DeltaConv2d(*conv_args, **conv_kwargs))
            else:
                stages.append(TimeDistributed(nn.Conv2d(*conv_args, **conv_kwargs)))
            if batch_norm:
                stages.append(TimeDistributed(nn.BatchNorm2d(n_out)))
            if pool > 1:
                stages.append(TimeDistributed(nn.MaxPool2d(pool)))
            if delta:
                last = i == len(widths) - 2
                fan_out = out_features if last else widths[i + 2] * kernel_size**2
                threshold_features = n_out if options.get("threshold_shape") == "channel" else None
                stages.append(DeltaActivation("relu", output="delta", fan_out=fan_out, features=threshold_features,
                                              **options))
            else:
                stages.append(nn.ReLU())
        self.features = nn.Sequential(*stages)
        self.pooling = TimeDistributed(nn.Sequential(nn.AdaptiveAvgPool2d(pooled_size), nn.Flatten()))
        head = (widths[-1] * pooled_size**2, out_features)
        self.head = DeltaLinear(*head) if delta else TimeDistributed(nn.Linear(*head))
        self.pool, self.n_pools = pool, len(channels) if pool > 1 else 0

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ``TypeError``/``ValueError`` unless ``x`` is a float tensor ``(batch, time, in_channels, H, W)``
        with frames large enough for the pooling stages."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"FrameCNN: input must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() != 5 or x.shape[2] != self.in_channels:
            raise ValueError(f"FrameCNN: input must have shape (batch, time, {self.in_channels}, H, W), got "
                             f"{tuple(x.shape)}")
        if not x.is_floating_point():
            raise TypeError(f"FrameCNN: input dtype must be floating point, got {x.dtype}")
        check_dtype_matches(x, self, "FrameCNN")
        if any(n // self.pool**self.n_pools < 1 for n in x.shape[3:]):
            raise ValueError(f"FrameCNN: frames of size {tuple(x.shape[3:])} are too small for {self.n_pools} "
                             f"pooling stages of factor {self.pool}")

    def frame_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Per-frame logits ``(batch, time, classes)``."""
        self.check_input(x)
        return self.head(self.pooling(self.features(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.frame_logits(x).mean(1)
