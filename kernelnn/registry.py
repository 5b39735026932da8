"""Name -> factory registries, so configs can pick a building block by a short name.

Each layer family registers itself here (``ACTIVATIONS.register("gelu", nn.GELU)``); models look names
up through :meth:`Registry.build`, which names the owner, the argument and the valid choices when a
name is unknown.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn


class Registry:
    """A mapping from short names to factories (classes or functions)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Callable[..., Any]] = {}

    def register(self, name: str, factory: Callable[..., Any] | None = None):
        """Register ``factory`` under ``name``; usable as a decorator when ``factory`` is omitted."""

        def add(obj: Callable[..., Any]) -> Callable[..., Any]:
            if name in self._entries and self._entries[name] is not obj:
                raise ValueError(f"{self.kind} registry: the name {name!r} is already taken")
            self._entries[name] = obj
            return obj

        return add if factory is None else add(factory)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def get(self, name: str, *, owner: str = "", argument: str | None = None) -> Callable[..., Any]:
        """The factory registered as ``name``; a clear ``ValueError`` listing the valid names if none."""
        if name not in self._entries:
            where = f"{owner}: " if owner else ""
            arg = argument or self.kind
            raise ValueError(f"{where}{arg}={name!r} is not a known {self.kind}; valid: {', '.join(self.names())}")
        return self._entries[name]

    def build(self, name: str, *args: Any, owner: str = "", argument: str | None = None, **kwargs: Any) -> Any:
        return self.get(name, owner=owner, argument=argument)(*args, **kwargs)


ACTIVATIONS = Registry("activation")
for _name, _cls in {
    "gelu": nn.GELU,
    "relu": nn.ReLU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "softplus": nn.Softplus,
    "identity": nn.Identity,
}.items():
    ACTIVATIONS.register(_name, _cls)

# Dense neuron layers ``factory(in_features, out_features) -> (..., in) -> (..., out)``, chosen by name in MLPs
# and in the channel MLPs of neural operators. Layer files register their own (``quadratic``, ``rbf``, ...).
NEURONS = Registry("neuron")
NEURONS.register("linear", nn.Linear)

# Convolutions ``factory(in_channels, out_channels, kernel_size, dim=2, **conv_args)`` chosen by name in CNNs:
# ``conv`` (nn.ConvNd), kernel / distance convolutions (``gaussian``, ``distance_l2``, ...), ``quadratic``.
CONVOLUTIONS = Registry("convolution")
