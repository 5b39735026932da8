"""A plain multilayer perceptron on feature vectors ``(..., in_features)``."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from kernelnn.layers.input_checks import check_dtype_matches
from kernelnn.registry import ACTIVATIONS, NEURONS


class MLP(nn.Module):
    """``Linear -> activation -> ... -> Linear`` with optional dropout.

    Parameters
    ----------
    in_features, out_features : int
        Input and output widths (``out_features`` = number of classes for classification).
    hidden : sequence of int
        Widths of the hidden layers (may be empty: a linear model).
    activation : str
        Name from :data:`kernelnn.registry.ACTIVATIONS`.
    dropout : float
        Dropout probability after each hidden activation.
    neuron : str
        Type of the hidden layers, a name from :data:`kernelnn.registry.NEURONS` (``"linear"``,
        ``"quadratic"``, ...); the output layer is always linear (as in the quadratic and RBF networks' papers).
    neuron_options : dict, optional
        Keyword arguments of the hidden layers' constructor (e.g. ``{"compact": True}`` for quadratic neurons).

    Shapes
    ------
    ``(..., in_features) -> (..., out_features)``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden: Sequence[int] = (64, 64),
        activation: str = "relu",
        dropout: float = 0.0,
        neuron: str = "linear",
        neuron_options: dict | None = None,
    ) -> None:
        super().__init__()
        widths = [in_features, *hidden, out_features]
        if any(not isinstance(w, int) or w < 1 for w in widths):
            raise ValueError(f"MLP: widths must be positive ints, got in={in_features}, hidden={list(hidden)}, "
                             f"out={out_features}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"MLP: dropout={dropout} must be in [0, 1)")
        self.in_features = in_features
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            hidden_layer = i < len(widths) - 2
            if hidden_layer:
                layers.append(NEURONS.build(neuron, a, b, owner="MLP", argument="neuron", **(neuron_options or {})))
            else:
                layers.append(nn.Linear(a, b))
            if hidden_layer:
                layers.append(ACTIVATIONS.build(activation, owner="MLP", argument="activation"))
                if dropout > 0:
                    layers.append(nn.Dropout(dropout))
        self.net = nn.Sequential(*layers)

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ``TypeError``/``ValueError`` unless ``x`` is a float tensor ``(..., in_features)``."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"MLP: input must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"MLP: input must have shape (..., {self.in_features}), got {tuple(x.shape)}")
        if not x.is_floating_point():
            raise TypeError(f"MLP: input dtype must be floating point, got {x.dtype}")
        check_dtype_matches(x, self, "MLP")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return self.net(x)
