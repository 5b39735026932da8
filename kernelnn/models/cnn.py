"""An image classifier whose convolution type is chosen by name: ordinary, kernel, distance or quadratic."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from kernelnn.layers.input_checks import check_dtype_matches
from kernelnn.registry import ACTIVATIONS, CONVOLUTIONS

_BATCH_NORM = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
_MAX_POOL = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}
_ADAPTIVE_POOL = {1: nn.AdaptiveAvgPool1d, 2: nn.AdaptiveAvgPool2d, 3: nn.AdaptiveAvgPool3d}


class CNN(nn.Module):
    """``[conv -> batch norm -> activation -> max-pool] x len(channels)``, adaptive average pooling to a
    ``pooled_size`` grid, flatten, linear head.

    Parameters
    ----------
    in_channels, out_features : int
        Image channels and number of classes.
    channels : sequence of int
        Output channels of each convolution stage.
    conv : str
        Convolution type, a name from :data:`kernelnn.registry.CONVOLUTIONS`: ``conv`` (``nn.ConvNd``),
        ``distance_l2``, ``distance_l1``, ``distance_lp``, ``gaussian``, ``polynomial``, ``cauchy``,
        ``sigmoid``, ``linear`` (kernel convolutions, :mod:`kernelnn.layers.kernel_conv`) or ``quadratic``.
    conv_options : dict, optional
        Extra keyword arguments of every convolution (e.g. ``{"output_fn": "exp"}`` or ``{"q": 1.5}``).
    kernel_size : int
        Odd kernel size; convolutions are "same"-padded.
    batch_norm : bool
        Batch normalisation after each convolution (distance convolutions need it: their outputs are large
        and negative, as AdderNet notes for L1).
    pool : int
        Max-pooling factor after each stage (1: none).
    activation : str
        Name from :data:`kernelnn.registry.ACTIVATIONS`.
    dim : int
        Spatial dims of the images (1, 2 or 3).
    pooled_size : int
        Side of the grid the features are averaged to before the head (1: global average pooling). Keeping a
        coarse layout (e.g. 4x4) keeps where features are, which digits need; any input size works.

    Shapes: ``(batch, in_channels, *spatial) -> (batch, out_features)`` for any spatial size that survives the
    pooling.

    Example
    -------
    >>> model = CNN(1, 10, channels=[16, 32], conv="distance_l1")
    >>> model(torch.randn(4, 1, 28, 28)).shape
    torch.Size([4, 10])
    """

    def __init__(self, in_channels: int, out_features: int, channels: Sequence[int] = (32, 64), conv: str = "conv",
                 conv_options: dict | None = None, kernel_size: int = 3, batch_norm: bool = True, pool: int = 2,
                 activation: str = "relu", dim: int = 2, pooled_size: int = 4) -> None:
        super().__init__()
        widths = [in_channels, *channels]
        if any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in [*widths, out_features]):
            raise ValueError(f"CNN: channels must be positive ints, got in={in_channels}, channels={list(channels)}, "
                             f"out={out_features}")
        if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"CNN: kernel_size={kernel_size!r} must be an odd positive int")
        if dim not in _MAX_POOL:
            raise ValueError(f"CNN: dim={dim!r} must be 1, 2 or 3")
        if not isinstance(pool, int) or pool < 1:
            raise ValueError(f"CNN: pool={pool!r} must be a positive int")
        factory = CONVOLUTIONS.get(conv, owner="CNN", argument="conv")
        self.in_channels, self.dim, self.pool = in_channels, dim, pool
        stages: list[nn.Module] = []
        for n_in, n_out in zip(widths[:-1], widths[1:], strict=True):
            stages.append(factory(n_in, n_out, kernel_size, dim=dim, padding=kernel_size // 2,
                                  **(conv_options or {})))
            if batch_norm:
                stages.append(_BATCH_NORM[dim](n_out))
            stages.append(ACTIVATIONS.build(activation, owner="CNN", argument="activation"))
            if pool > 1:
                stages.append(_MAX_POOL[dim](pool))
        if not isinstance(pooled_size, int) or pooled_size < 1:
            raise ValueError(f"CNN: pooled_size={pooled_size!r} must be a positive int")
        self.features = nn.Sequential(*stages)
        self.pooling = _ADAPTIVE_POOL[dim](pooled_size)
        self.head = nn.Linear(widths[-1] * pooled_size**dim, out_features)

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ``TypeError``/``ValueError`` unless ``x`` is a float tensor ``(batch, in_channels, *spatial)``
        with images large enough for the pooling stages."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"CNN: input must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() != self.dim + 2 or x.shape[1] != self.in_channels:
            raise ValueError(f"CNN: input must have shape (batch, {self.in_channels}, "
                             f"{', '.join('n' * self.dim)}), got {tuple(x.shape)}")
        if not x.is_floating_point():
            raise TypeError(f"CNN: input dtype must be floating point, got {x.dtype}")
        check_dtype_matches(x, self, "CNN")
        stages = sum(isinstance(m, tuple(_MAX_POOL.values())) for m in self.features)
        if any(n // self.pool**stages < 1 for n in x.shape[2:]):
            raise ValueError(f"CNN: images of size {tuple(x.shape[2:])} are too small for {stages} pooling stages "
                             f"of factor {self.pool}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return self.head(self.pooling(self.features(x)).flatten(1))
