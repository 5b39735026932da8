"""Kolmogorov-Arnold networks: a stack of KAN layers (``kan``, ``trukan``, ``relu_kan``, ``af_kan``) of given widths.

B-spline KANs are also interpretable as pykan's are: :meth:`KAN.attribute`, :meth:`KAN.prune`, :meth:`KAN.plot`,
:meth:`KAN.auto_symbolic`, :meth:`KAN.fit_symbolic` and :meth:`KAN.symbolic_formula` (see :mod:`kernelnn.interpret`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

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

    The interpretation methods take samples ``x`` or, without them, the last input the model saw (a reference to
    that batch is kept, not a copy).

    >>> KAN([2, 5, 1])(torch.rand(8, 2)).shape
    torch.Size([8, 1])
    """

    last_input: torch.Tensor | None = None

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
        if not torch.compiler.is_compiling():
            self.last_input = x.detach()
        return self.layers(x)

    # ---------------------------------------------------------------------------- interpretation (pykan's names)
    def attribute(self, x: torch.Tensor | None = None) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Node and edge attribution scores; see :func:`kernelnn.interpret.attribute`."""
        from kernelnn.interpret import attribute

        return attribute(self, x)

    def prune(self, threshold: float = 1e-2, edge_threshold: float = 3e-2, x: torch.Tensor | None = None) -> KAN:
        """A smaller KAN without unimportant nodes and edges; see :func:`kernelnn.interpret.prune`."""
        from kernelnn.interpret import prune

        return prune(self, threshold, edge_threshold, x)

    def plot(self, path: str | Path, x: torch.Tensor | None = None, max_edges: int = 64) -> Path:
        """Every edge function as a PNG; see :func:`kernelnn.interpret.plot`."""
        from kernelnn.interpret import plot

        return plot(self, path, x, max_edges=max_edges)

    def auto_symbolic(self, lib: str | Sequence[str] | None = None, x: torch.Tensor | None = None,
                      weight_simple: float = 0.8) -> list[dict]:
        """Replace every edge by its best formula, in place; see :func:`kernelnn.interpret.auto_symbolic`."""
        from kernelnn.interpret import auto_symbolic

        return auto_symbolic(self, lib, x, weight_simple)

    def fit_symbolic(self, x: torch.Tensor, y: torch.Tensor, steps: int = 100, search: bool = True) -> float:
        """Polish the formulas' constants on data (and try runner-up formulas); see
        :func:`kernelnn.interpret.fit_symbolic`."""
        from kernelnn.interpret import fit_symbolic

        return fit_symbolic(self, x, y, steps, search)

    def symbolic_formula(self, x: torch.Tensor | None = None, variables: Sequence[str] | None = None,
                         tolerance: float = 1e-6):
        """The network as a simplified sympy expression; see :func:`kernelnn.interpret.symbolic_formula`."""
        from kernelnn.interpret import symbolic_formula

        return symbolic_formula(self, x, variables, tolerance)
