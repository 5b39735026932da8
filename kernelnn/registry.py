"""Name -> factory registries, so configs can pick a building block by a short name.

Every registry of building blocks (layers, models) is declared here, and only here: this module imports no
layer, so layer files import it without a cycle. Entries are registered with one style, the decorator on a class
or on a small named factory function::

    @NEURONS.register("quadratic")
    class QuadraticLinear(nn.Module): ...

    @CONVOLUTIONS.register("kan")
    def kan_conv(in_channels, out_channels, kernel_size, dim=2, **args): ...

Classes defined elsewhere get the same decorator applied to them: ``MODELS.register("fno")(FNO)``. Models look
names up through :meth:`Registry.get` / :meth:`Registry.build`, which name the owner, the argument and the valid
choices when a name is unknown.

Examples
--------
Every entry can build a small instance of itself and inputs for it, :meth:`Registry.example`; the test suite
runs every entry of every registry through forward, backward and a ``state_dict`` round trip with them, so a new
entry is tested without anyone editing a test. A registry's uniform factory signature has a default example
(``NEURONS``: ``factory(3, 4)`` on a ``(5, 3)`` input); an entry that needs more passes ``example=``:

- a dict: extra keyword arguments for the registry's example builder (for ``MODELS``: the constructor's
  keyword arguments and ``inputs``, a list of input shapes);
- a function of no arguments returning ``(module, inputs)``, for entries no dict can describe (wrappers).

A user's own model joins the same way, and becomes loadable from checkpoints (:meth:`Registry.targets`)::

    MODELS.register("mine", example={"width": 8, "inputs": [(2, 3)]})(MyModel)
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch
from torch import nn

ExampleBuilder = Callable[..., tuple[nn.Module, tuple[torch.Tensor, ...]]]


class Registry:
    """A mapping from short names to factories (classes or functions).

    Parameters
    ----------
    kind : str
        What the entries are, for error messages (``"neuron"``).
    example : callable, optional
        ``example(factory, **options) -> (module, inputs)``: a small instance built through the registry's
        uniform factory signature and inputs for it. Entries may pass ``options`` (or their own builder) with
        :meth:`register`. Without it, every entry must bring a callable example.

    Example
    -------
    >>> def gate_example(factory, **options):  # the uniform signature factory(channels) at a small size
    ...     return factory(4, **options), (torch.randn(2, 4),)
    >>> GATES = Registry("gate", example=gate_example)
    >>> @GATES.register("sigmoid")
    ... class SigmoidGate(nn.Module):
    ...     def __init__(self, channels):
    ...         super().__init__()
    ...         self.scale = nn.Parameter(torch.ones(channels))
    ...     def forward(self, x):
    ...         return torch.sigmoid(self.scale * x) * x
    >>> gate = GATES.build("sigmoid", 8)
    >>> module, inputs = GATES.example("sigmoid")
    >>> module(*inputs).shape
    torch.Size([2, 4])
    """

    def __init__(self, kind: str, example: ExampleBuilder | None = None) -> None:
        self.kind = kind
        self._entries: dict[str, Callable[..., Any]] = {}
        self._examples: dict[str, Mapping[str, Any] | Callable[[], Any]] = {}
        self._example = example

    def register(self, name: str, factory: Callable[..., Any] | None = None, *,
                 example: Mapping[str, Any] | Callable[[], Any] | None = None):
        """Register a factory under ``name``: ``@REG.register(name)`` above a class or a named function.

        Parameters
        ----------
        name : str
            The short name configs use.
        factory : callable, optional
            Registered directly (``REG.register(name, obj)`` equals ``REG.register(name)(obj)``); the
            decorator form is the one kernelnn uses.
        example : dict or callable, optional
            How :meth:`example` builds a small instance: a dict of keyword arguments for the registry's example
            builder, or a function of no arguments returning ``(module, inputs)``.
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"{self.kind} registry: name={name!r} must be a non-empty str")
        if example is not None and not (isinstance(example, Mapping) or callable(example)):
            raise TypeError(f"{self.kind} registry: example for {name!r} must be a dict or a function, got "
                            f"{type(example).__name__}")

        def add(obj: Callable[..., Any]) -> Callable[..., Any]:
            if not callable(obj):
                raise TypeError(f"{self.kind} registry: {name!r} must be a class or a function, got {obj!r}")
            if name in self._entries and self._entries[name] is not obj:
                raise ValueError(f"{self.kind} registry: the name {name!r} is already taken by "
                                 f"{_path(self._entries[name])}")
            self._entries[name] = obj
            if example is not None:
                self._examples[name] = example
            return obj

        return add if factory is None else add(factory)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, names={self.names()})"

    def get(self, name: str, *, owner: str = "", argument: str | None = None) -> Callable[..., Any]:
        """The factory registered as ``name``; a clear ``ValueError`` listing the valid names if none."""
        if name not in self._entries:
            where = f"{owner}: " if owner else ""
            arg = argument or self.kind
            raise ValueError(f"{where}{arg}={name!r} is not a known {self.kind}; valid: {', '.join(self.names())}")
        return self._entries[name]

    def build(self, name: str, *args: Any, owner: str = "", argument: str | None = None, **kwargs: Any) -> Any:
        return self.get(name, owner=owner, argument=argument)(*args, **kwargs)

    def example(self, name: str) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
        """A small instance of entry ``name`` and inputs for it: ``module(*inputs)`` runs.

        Each call builds a new module (fresh random initialisation, drawn from torch's global generator) and
        new random inputs.
        """
        factory = self.get(name)
        spec = self._examples.get(name, {})
        if callable(spec) and not isinstance(spec, Mapping):
            built = spec()
        elif self._example is None:
            raise ValueError(f"{self.kind} registry: {name!r} has no example; register it with example= a "
                             "function returning (module, inputs)")
        else:
            built = self._example(factory, **spec)
        module, inputs = built
        return module, tuple(inputs)

    def example_options(self, name: str) -> dict[str, Any] | None:
        """The keyword arguments entry ``name`` registered as its example (a copy), ``None`` when its example is a
        function: the small sizes a config test can build the entry at without a table of its own."""
        self.get(name)
        spec = self._examples.get(name, {})
        return None if callable(spec) and not isinstance(spec, Mapping) else dict(spec)

    def targets(self) -> frozenset[str]:
        """Import paths of the registered classes and functions, as Hydra's ``_target_`` would name them.

        Each entry appears under its defining module (``"kernelnn.models.fno.FNO"``) and under every
        already-imported parent package that re-exports it (``"kernelnn.models.FNO"``, ``"kernelnn.FNO"``). The
        training code instantiates nothing from a checkpoint whose target is not in this set, so only
        registered code runs; register your own model with ``MODELS.register("mine")(MyModel)``.
        """
        paths = set()
        for obj in self._entries.values():
            module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
            if not module or not qualname or "<" in qualname:  # lambdas and local classes have no import path
                continue
            paths.add(f"{module}.{qualname}")
            parts = module.split(".")
            for depth in range(1, len(parts)):
                package = sys.modules.get(".".join(parts[:depth]))
                if package is not None and getattr(package, qualname, None) is obj:
                    paths.add(f"{package.__name__}.{qualname}")
        return frozenset(paths)


def _path(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


# ------------------------------------------------------------------------------------------------ examples
# The default example of each registry: its uniform factory signature at small sizes.
def _activation_example(factory, **options):
    return factory(**options), (torch.randn(5, 3),)


def _neuron_example(factory, **options):
    return factory(3, 4, **options), (torch.randn(5, 3),)


def _convolution_example(factory, **options):
    return factory(3, 4, 3, dim=2, **options), (torch.randn(2, 3, 6, 6),)


def _skip_example(factory, **options):
    return factory(3, 2, **options), (torch.randn(2, 3, 6, 6),)


def _spectral_weight_example(factory, **options):
    # Imported here, not at the top: layer files import this module.
    from kernelnn.layers.spectral import SpectralConv

    weight = factory(3, 3, (4, 4), **{"rank": 0.5, **options})
    return SpectralConv(3, 3, (4, 4), factorization=weight), (torch.randn(2, 3, 8, 8),)


def _encoding_example(factory, **options):
    # Points that are valid (longitude, latitude) in degrees, and Euclidean coordinates too.
    return factory(**options), ((torch.rand(5, 2) - 0.5) * torch.tensor([359.0, 179.0]),)


def _attention_example(factory, **options):
    return factory(2, 5, **options), (torch.randn(3, 2, 5, 5),)


def _model_example(factory, *, inputs, **kwargs):
    return factory(**kwargs), tuple(torch.randn(*shape) for shape in inputs)


# Activations ``factory() -> module``, by name in every model's ``activation=`` argument.
ACTIVATIONS = Registry("activation", example=_activation_example)
# torch's activations (gelu, relu, silu, tanh, sigmoid, softplus, identity) with kernelnn's input check are
# registered in kernelnn/layers/checked.py.

# Dense neuron layers ``factory(in_features, out_features) -> (..., in) -> (..., out)``, chosen by name in MLPs
# and in the channel MLPs of neural operators. Layer files register their own (``quadratic``, ``rbf``, ...).
NEURONS = Registry("neuron", example=_neuron_example)
# ``linear`` (torch's nn.Linear, checked) is registered in kernelnn/layers/checked.py.

# Convolutions ``factory(in_channels, out_channels, kernel_size, dim=2, **conv_args)`` chosen by name in CNNs:
# ``conv`` (nn.ConvNd), kernel / distance convolutions (``gaussian``, ``distance_l2``, ...), ``quadratic``.
CONVOLUTIONS = Registry("convolution", example=_convolution_example)

# Skip connections of operator blocks ``factory(channels, dim) -> (batch, C, *spatial) -> same`` (layers/skip.py).
SKIPS = Registry("skip connection", example=_skip_example)

# Spectral weights ``factory(in_channels, out_channels, n_modes, rank=...) -> SpectralWeight``, the
# ``factorization=`` of SpectralConv (layers/spectral_weights.py).
SPECTRAL_WEIGHTS = Registry("spectral weight factorization", example=_spectral_weight_example)

# Positional encodings of coordinates ``factory(**options) -> (..., in_features) -> (..., out_features)`` (the
# module says both), chosen by name in coordinate networks (layers/positional_encoding.py): ``fourier_features``,
# ``spherical_harmonics``, ``double_fourier_sphere``, ``lonlat``.
ENCODINGS = Registry("positional encoding", example=_encoding_example)

# Attention score functions ``factory(heads, n_tokens) -> (batch, heads, N, N) -> same``: what turns the logits
# ``q.k / sqrt(d)`` of self-attention into the weights of the values. ``softmax`` and ``fourier_karat``
# (Kolmogorov-Arnold attention), in kernelnn/layers/self_attention.py and fourier_karat.py.
ATTENTIONS = Registry("attention", example=_attention_example)

# Models, under their config-group names (configs/model/<name>.yaml), registered in kernelnn/models/__init__.py.
# Examples are dicts of constructor keyword arguments plus ``inputs``, a list of input shapes.
MODELS = Registry("model", example=_model_example)
