"""Data-dependent initialisation: layers that compare inputs with templates start on the data they will see.

RBF centres (:meth:`kernelnn.layers.RBFLayer.init_from_data`) and the filters of distance / Gaussian kernel
convolutions (:meth:`kernelnn.layers.KernelConv2d.init_from_data`) are templates: they only respond usefully
where inputs are. :func:`data_dependent_init` walks a model's layers in order, feeding each the activations the
layers before it produce once they are placed.
"""

from __future__ import annotations

import torch
from torch import nn

from kernelnn.protocols import DataInitialized, layers_with


@torch.no_grad()
def data_dependent_init(model: nn.Module, x: torch.Tensor, seed: int = 0) -> int:
    """Call ``init_from_data(inputs, seed=seed)`` on every sub-module that has it, in registration order.

    Each layer gets the input it receives in ``model(x)`` after the layers before it were placed. The model's
    buffers (e.g. BatchNorm running statistics) are restored afterwards, so only the templates change.
    Deterministic for a ``seed``, so every DDP rank gets the same weights. Returns how many layers were placed.

    >>> from kernelnn.layers import KernelConv2d
    >>> model = nn.Sequential(KernelConv2d(1, 8, 3, kernel="l2"), nn.ReLU())
    >>> data_dependent_init(model, torch.randn(16, 1, 12, 12))
    1
    """
    placed = 0
    for layer in layers_with(model, DataInitialized).values():
        seen = layer_input(model, layer, x)
        if seen is not None:  # a layer the forward never reaches keeps its initialisation
            placed += bool(layer.init_from_data(seen, seed=seed))
    return placed


@torch.no_grad()
def layer_input(model: nn.Module, layer: nn.Module, x: torch.Tensor | tuple[torch.Tensor, ...]) -> torch.Tensor | None:
    """The (first positional) input that ``layer`` receives in ``model(x)`` (``model(*x)`` for a tuple of inputs, as
    the training loop calls it); ``None`` if it is never called.

    The forward stops as soon as ``layer`` is reached, and the model's buffers (BatchNorm running statistics)
    are restored, so asking changes nothing.
    """
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    seen: list[torch.Tensor] = []

    def capture(module, args):
        seen.append(args[0])
        raise _Captured

    handle = layer.register_forward_pre_hook(capture)
    try:
        model(*x) if isinstance(x, tuple) else model(x)
    except _Captured:
        pass
    finally:
        handle.remove()
        for name, b in model.named_buffers():
            b.copy_(buffers[name])
    return seen[0] if seen else None


class _Captured(Exception):
    """Stops the forward once the layer being initialised has seen its input (nothing later is needed)."""
