"""What the training loop and its plugins may call on a layer, written down once.

Each protocol is ``runtime_checkable``; :func:`layers_with` is the one way a plugin finds the layers that
offer a hook. A layer joins simply by having the methods (no base class, no registration): a user's own
layer with ``regularization()`` is penalised like kernelnn's.

- :class:`InputChecked`: ``check_input(x)``, a clear error for input it cannot take (models, most layers);
- :class:`Regularized`: ``regularization()`` and optionally ``regularization_active`` (RBF, KAN, quadratic);
- :class:`DataInitialized`: ``init_from_data(x, seed)`` (RBF layers, kernel / distance convolutions);
- :class:`SignalPlaced`: ``init_kernels(points, weights, seed)`` on a signal's points (NeuRBF);
- :class:`OutputBasisFitted`: ``fit_output_basis(y)`` on training targets (POD-DeepONet);
- :class:`GridAdaptive`: ``update_grid(x)``, ``refine(grid_size)`` (B-spline KAN layers);
- :class:`SparsityPenalized`: ``sparsity_loss()``, ``reset_statistics()``, ``statistics()`` (delta activations);
- :class:`TwoSpeed`: ``quadratic_parameters()`` (quadratic neurons, for ReLinear).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol, TypeVar, runtime_checkable

import torch
from torch import nn


@runtime_checkable
class InputChecked(Protocol):
    def check_input(self, x: torch.Tensor) -> None:
        """Raise ``ValueError``/``TypeError`` naming the layer, the argument, what was given and what is allowed."""


@runtime_checkable
class Regularized(Protocol):
    def regularization(self) -> torch.Tensor:
        """The layer's own penalty, added to the training objective. A layer whose penalty is off says so with
        ``regularization_active = False`` (optional attribute; it is then skipped every step)."""


@runtime_checkable
class DataInitialized(Protocol):
    def init_from_data(self, x: torch.Tensor, seed: int = 0) -> bool:
        """Place templates (centres, filters) on the inputs ``x`` this layer sees; returns whether it did."""


@runtime_checkable
class SignalPlaced(Protocol):
    def init_kernels(self, points: torch.Tensor, weights: torch.Tensor | None = None, seed: int = 0) -> None:
        """Place kernels on the points of a signal, ``points (N, d)``, weighted by where it varies
        (``weights (N,)``, e.g. its gradient magnitude), as NeuRBF's weighted k-means."""


@runtime_checkable
class OutputBasisFitted(Protocol):
    def fit_output_basis(self, y: torch.Tensor) -> bool:
        """Fit a basis of the outputs to training targets ``y`` (as the layer is trained on); returns whether it
        did (e.g. POD-DeepONet's modes)."""


@runtime_checkable
class GridAdaptive(Protocol):
    def update_grid(self, x: torch.Tensor, margin: float = 0.01) -> None:
        """Move the grid to the inputs ``x`` this layer sees, keeping the function."""

    def refine(self, new_grid_size: int, x: torch.Tensor | None = None) -> nn.Module:
        """Switch to a finer grid, keeping the function."""


@runtime_checkable
class SparsityPenalized(Protocol):
    def sparsity_loss(self) -> torch.Tensor:
        """A penalty on the last forward pass's activity (e.g. ``fan_out * mean|delta|``)."""

    def reset_statistics(self) -> None:
        """Zero the activity counters."""

    def statistics(self) -> dict[str, float]:
        """Activity since the last reset, e.g. ``{"delta_density": 0.1, ...}``."""


@runtime_checkable
class TwoSpeed(Protocol):
    def quadratic_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters trained at their own (small) learning rate, as ReLinear's quadratic terms."""


@runtime_checkable
class Decoded(Protocol):
    def decoder_parameters(self) -> Iterator[nn.Parameter]:
        """The parameters of a field's decoder, which its authors train at their own learning rate (NeuRBF)."""


P = TypeVar("P")


def layers_with(model: nn.Module, protocol: type[P]) -> dict[str, P]:
    """Every sub-module of ``model`` (itself included) that implements ``protocol``, by name, in forward order."""
    return {name: m for name, m in model.named_modules() if isinstance(m, protocol)}


def describe(model: nn.Module) -> str:
    """``ClassName`` of a model, looking through wrappers that keep the trained model as ``.model``."""
    inner = model
    while isinstance(getattr(inner, "model", None), nn.Module):
        inner = inner.model
    return type(inner).__name__


__all__: Sequence[str] = ["DataInitialized", "GridAdaptive", "InputChecked", "OutputBasisFitted", "Regularized",
                          "SparsityPenalized", "TwoSpeed", "describe", "layers_with"]
