"""Kolmogorov-Arnold networks: a stack of KAN layers (``kan``, ``trukan``, ``relu_kan``, ``af_kan``) of given widths."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from kernelnn.registry import NEURONS

LAYERS = ("kan", "trukan", "relu_kan", "af_kan")


class KAN(nn.Module):
    """KAN of ``widths = [in, hidden..., out]``: one KAN layer per consecutive pair, nothing in between.

    Parameters
    ----------
    widths : sequence of int
        Layer widths including input and output, e.g. ``[2, 5, 1]``.
    layer : str
        ``"kan"`` (:class:`~kernelnn.layers.KANLinear`), ``"trukan"`` (:class:`~kernelnn.layers.TruKANLinear`),
        ``"relu_kan"`` (:class:`~kernelnn.layers.ReLUKANLinear`) or ``"af_kan"``
        (:class:`~kernelnn.layers.AFKANLinear`).
    layer_options : dict, optional
        Constructor arguments of every layer (``grid_size``, ``spline_order``, ``n_knots``, ...).
    layer_norm : bool
        A LayerNorm before every layer (TruKAN's companion: keeps inputs where the knots are).
    in_features, out_features : int, optional
        Filled from the data by ``train.py``; must agree with ``widths[0]`` and ``widths[-1]``.

    Shapes: ``(..., widths[0]) -> (..., widths[-1])``.

    >>> KAN([2, 5, 1])(torch.rand(8, 2)).shape
    torch.Size([8, 1])
    """

    def __init__(self, widths: Sequence[int], layer: str = "kan", layer_options: dict | None = None,
                 layer_norm: bool = False, in_features: int | None = None, out_features: int | None = None) -> None:
        super().__init__()
        widths = list(widths)
        if len(widths) < 2 or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths):
            raise ValueError(f"KAN: widths={widths} must be at least two positive ints [in, ..., out]")
        if layer not in LAYERS:
            raise ValueError(f"KAN: layer={layer!r} must be one of {', '.join(LAYERS)}")
        for name, value, width in (("in_features", in_features, widths[0]), ("out_features", out_features,
                                                                              widths[-1])):
            if value is not None and value != width:
                raise ValueError(f"KAN: {name}={value} disagrees with widths={widths}")
        self.widths, self.in_features = widths, widths[0]
        blocks: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:], strict=True):
            if layer_norm:
                blocks.append(nn.LayerNorm(a))
            blocks.append(NEURONS.build(layer, a, b, owner="KAN", argument="layer", **(layer_options or {})))
        self.layers = nn.Sequential(*blocks)

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ``TypeError``/``ValueError`` unless ``x`` is a float tensor ``(..., in_features)``."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"KAN: input must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"KAN: input must have shape (..., {self.in_features}), got {tuple(x.shape)}")
        if not x.is_floating_point():
            raise TypeError(f"KAN: input dtype must be floating point, got {x.dtype}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return self.layers(x)
