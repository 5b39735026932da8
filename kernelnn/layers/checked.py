"""torch's own layers as kernelnn registers them (``ACTIVATIONS``, ``NEURONS["linear"]``, ``CONVOLUTIONS["conv"]``),
with kernelnn's input check in front: a wrong input is a ``TypeError`` / ``ValueError`` naming the layer, as for
every kernelnn layer, rather than torch's "mat1 and mat2 shapes cannot be multiplied" from inside. Each class is a
subclass of the torch class of the same name: parameters, state dicts and ``isinstance`` checks are unchanged.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from kernelnn.layers.input_checks import check_dtype_matches, check_float_tensor
from kernelnn.registry import ACTIVATIONS, NEURONS


def _checked(base: type[nn.Module], check: Callable[[nn.Module, torch.Tensor], None],
             elementwise: bool = False) -> type[nn.Module]:
    """A subclass of ``base`` named like it whose ``forward`` first runs ``check(self, x)``. ``elementwise``
    marks modules that take any shape and return it."""

    def check_input(self, x: torch.Tensor) -> None:
        check_float_tensor(x, type(self).__name__)
        check(self, x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return base.forward(self, x)

    doc = f"``torch.nn.{base.__name__}`` with kernelnn's input check (module docstring)."
    return type(base.__name__, (base,), {"check_input": check_input, "forward": forward, "__doc__": doc,
                                         "elementwise": elementwise, "__module__": __name__,
                                         "__qualname__": base.__name__})


def _any_shape(module: nn.Module, x: torch.Tensor) -> None:
    """Element-wise: any shape, any floating dtype."""


def _features(module: nn.Module, x: torch.Tensor) -> None:
    name = type(module).__name__
    if x.dim() < 1 or x.shape[-1] != module.in_features:
        raise ValueError(f"{name}: input must have shape (..., {module.in_features}), got {tuple(x.shape)}")
    check_dtype_matches(x, module, name)


def _field(module: nn.Module, x: torch.Tensor) -> None:
    name, dim = type(module).__name__, len(module.kernel_size)
    if x.dim() not in (dim + 1, dim + 2) or x.shape[-dim - 1] != module.in_channels:
        raise ValueError(f"{name}: input must have shape ([batch,] {module.in_channels}, "
                         f"{', '.join('n' * dim)}), got {tuple(x.shape)}")
    check_dtype_matches(x, module, name)
    if module.padding == "same":
        return
    padding = (0,) * dim if module.padding == "valid" else module.padding
    sizes = x.shape[-dim:]
    reach = [d * (k - 1) + 1 for d, k in zip(module.dilation, module.kernel_size, strict=True)]
    if any(n + 2 * p < r for n, p, r in zip(sizes, padding, reach, strict=True)):
        raise ValueError(f"{name}: spatial size {tuple(sizes)} with padding {tuple(padding)} is smaller than the "
                         f"kernel's reach {tuple(reach)}")


GELU = ACTIVATIONS.register("gelu")(_checked(nn.GELU, _any_shape, elementwise=True))
ReLU = ACTIVATIONS.register("relu")(_checked(nn.ReLU, _any_shape, elementwise=True))
SiLU = ACTIVATIONS.register("silu")(_checked(nn.SiLU, _any_shape, elementwise=True))
Tanh = ACTIVATIONS.register("tanh")(_checked(nn.Tanh, _any_shape, elementwise=True))
Sigmoid = ACTIVATIONS.register("sigmoid")(_checked(nn.Sigmoid, _any_shape, elementwise=True))
Softplus = ACTIVATIONS.register("softplus")(_checked(nn.Softplus, _any_shape, elementwise=True))
Identity = ACTIVATIONS.register("identity")(_checked(nn.Identity, _any_shape, elementwise=True))
Linear = NEURONS.register("linear")(_checked(nn.Linear, _features))
Conv1d = _checked(nn.Conv1d, _field)
Conv2d = _checked(nn.Conv2d, _field)
Conv3d = _checked(nn.Conv3d, _field)
