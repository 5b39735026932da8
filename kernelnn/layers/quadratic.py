r"""Quadratic neurons and the ReLinear training strategy.

Source: Fan, Li, Wang et al., "Expressivity and Trainability of Quadratic Networks" (IEEE TNNLS, 2023).
A quadratic neuron replaces the inner product by

.. math:: y = (W_r x + b_r) \odot (W_g x + b_g) + W_b (x \odot x) + c,

and ReLinear makes it trainable: every neuron starts exactly linear (:math:`W_g = 0, b_g = 1, W_b = 0, c = 0`,
so :math:`y = W_r x + b_r`), and the quadratic terms (``g`` and ``b``) are then learned gradually, either with
a much smaller learning rate than the linear path (:func:`relinear_param_groups`; the reference code uses 0.1
against 1e-5 with SGD) or by shrinking their weights (:meth:`QuadraticLinear.regularization`).

The ``compact`` variant drops the product term: :math:`y = W_r x + b_r + W_b (x \odot x) + c`.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from kernelnn.layers.input_checks import check_float_input
from kernelnn.protocols import TwoSpeed, layers_with
from kernelnn.registry import CONVOLUTIONS, NEURONS


class _Quadratic(nn.Module):
    """The shared part of every quadratic layer: three linear maps ``r``, ``g``, ``b`` of the same kind."""

    def _build(self, make, compact: bool, shrinkage: tuple[float, float]) -> None:
        gamma_g, gamma_b = (float(s) for s in shrinkage)
        if gamma_g < 0 or gamma_b < 0:
            raise ValueError(f"{type(self).__name__}: shrinkage={tuple(shrinkage)} must be two numbers >= 0 "
                             "(gamma_g, gamma_b)")
        self.compact = compact
        self.shrinkage = (gamma_g, gamma_b)
        self.r = make()  # the linear path W_r x + b_r, initialised as the ordinary layer is
        self.g = None if compact else make()
        self.b = make()  # W_b (x * x) + c
        self.reset_quadratic_terms()

    @torch.no_grad()
    def reset_quadratic_terms(self) -> None:
        """ReLinear's start: ``W_g = 0, b_g = 1, W_b = 0, c = 0``, so the layer equals its linear path ``r``."""
        if self.g is not None:
            self.g.weight.zero_()
            self.g.bias.fill_(1.0)
        self.b.weight.zero_()
        self.b.bias.zero_()

    def quadratic_parameters(self) -> Iterator[nn.Parameter]:
        """The quadratic terms ``W_g, b_g, W_b, c`` (ReLinear trains these with the small learning rate)."""
        if self.g is not None:
            yield from self.g.parameters()
        yield from self.b.parameters()

    @property
    def regularization_active(self) -> bool:
        return any(self.shrinkage)

    def regularization(self) -> torch.Tensor:
        r"""ReLinear's weight shrinkage :math:`\gamma_g \|W_g\|_2^2 + \gamma_b \|W_b\|_2^2` (zero by default)."""
        gamma_g, gamma_b = self.shrinkage
        total = gamma_b * self.b.weight.square().sum()
        if self.g is not None:
            total = total + gamma_g * self.g.weight.square().sum()
        return total

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        quadratic = self.b(x * x)
        if self.g is None:
            return self.r(x) + quadratic
        return self.r(x) * self.g(x) + quadratic

    def extra_repr(self) -> str:
        return f"compact={self.compact}, shrinkage={self.shrinkage}"


@NEURONS.register("quadratic")
class QuadraticLinear(_Quadratic):
    """Dense quadratic neurons: ``(..., in_features) -> (..., out_features)``.

    Parameters
    ----------
    in_features, out_features : int
        Widths, as :class:`torch.nn.Linear`.
    compact : bool
        Drop the product term: ``y = W_r x + b_r + W_b (x*x) + c``.
    shrinkage : (float, float)
        ``(gamma_g, gamma_b)`` of :meth:`regularization`, which the training loop adds to the loss.

    At construction the layer equals ``self.r`` (an ``nn.Linear`` with PyTorch's default initialisation).

    Example
    -------
    >>> layer = QuadraticLinear(16, 8)
    >>> torch.equal(layer(x := torch.randn(4, 16)), layer.r(x))
    True
    """

    def __init__(self, in_features: int, out_features: int, compact: bool = False,
                 shrinkage: tuple[float, float] = (0.0, 0.0)) -> None:
        super().__init__()
        for arg, value in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"QuadraticLinear: {arg}={value!r} must be a positive int")
        self.in_features, self.out_features = in_features, out_features
        self._build(lambda: nn.Linear(in_features, out_features), compact, shrinkage)

    def check_input(self, x: torch.Tensor) -> None:
        check_float_input(x, self, "QuadraticLinear")
        if x.dim() < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"QuadraticLinear: input must have shape (..., {self.in_features}), got "
                             f"{tuple(x.shape)}")

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, {super().extra_repr()}"


_CONVS = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}


class QuadraticConv(_Quadratic):
    """Quadratic convolution: ``r``, ``g`` and ``b`` are convolutions with the same arguments.

    ``(W_r * x + b_r) (W_g * x + b_g) + W_b * (x x) + c`` with ``*`` the convolution; padding of ``x * x``
    matches padding of ``x`` for every padding mode (squaring commutes with copying and with zeros).
    Takes :class:`torch.nn.Conv2d`'s arguments (``kernel_size, stride, padding, dilation, groups,
    padding_mode``; the bias is always on: ``b_g = 1`` is part of the quadratic neuron) plus ``compact`` and
    ``shrinkage`` as :class:`QuadraticLinear`. Use :class:`QuadraticConv1d`, ``2d``, ``3d``.

    Shapes: as the corresponding ``nn.ConvNd``.
    """

    dim: int = 2

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, padding_mode: str = "zeros", compact: bool = False,
                 shrinkage: tuple[float, float] = (0.0, 0.0)) -> None:
        super().__init__()
        name = type(self).__name__
        for arg, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: {arg}={value!r} must be a positive int")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{name}: in_channels={in_channels} and out_channels={out_channels} must be divisible "
                             f"by groups={groups}")
        self.in_channels, self.out_channels = in_channels, out_channels
        conv = _CONVS[self.dim]

        def make() -> nn.Module:
            return conv(in_channels, out_channels, kernel_size, stride=stride, padding=padding, dilation=dilation,
                        groups=groups, bias=True, padding_mode=padding_mode)

        self._build(make, compact, shrinkage)

    def check_input(self, x: torch.Tensor) -> None:
        check_float_input(x, self, type(self).__name__)
        if x.dim() not in (self.dim + 1, self.dim + 2) or x.shape[-self.dim - 1] != self.in_channels:
            raise ValueError(f"{type(self).__name__}: input must have shape (batch, {self.in_channels}, "
                             f"{', '.join('n' * self.dim)}), got {tuple(x.shape)}")

    def extra_repr(self) -> str:
        r = self.r
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={r.kernel_size}, stride={r.stride}, "
                f"padding={r.padding}, {super().extra_repr()}")


class QuadraticConv1d(QuadraticConv):
    dim = 1


class QuadraticConv2d(QuadraticConv):
    dim = 2


class QuadraticConv3d(QuadraticConv):
    dim = 3


@CONVOLUTIONS.register("quadratic")
def quadratic_conv(in_channels: int, out_channels: int, kernel_size, dim: int = 2, **args) -> QuadraticConv:
    """A quadratic convolution of ``dim`` spatial dims, for ``model.conv=quadratic``."""
    return {1: QuadraticConv1d, 2: QuadraticConv2d, 3: QuadraticConv3d}[dim](in_channels, out_channels, kernel_size,
                                                                             **args)


def relinear_param_groups(model: nn.Module, lr: float | None, quadratic_lr: float) -> list[dict]:
    """Optimizer groups for ReLinear: ``"quadratic"`` (every quadratic layer's ``W_g, b_g, W_b, c``) at
    ``quadratic_lr`` and ``"linear"`` (all other trainable parameters, the ``W_r, b_r`` paths included) at ``lr``
    (``None``: the optimizer's own default).

    Parameters are picked by the layer that owns them (:meth:`QuadraticLinear.quadratic_parameters`), never by
    matching names, so no other layer's parameters can land in the wrong group.

    Example
    -------
    >>> torch.optim.SGD(relinear_param_groups(model, lr=0.1, quadratic_lr=1e-5), lr=0.1, momentum=0.9)
    """
    if (lr is not None and lr <= 0) or quadratic_lr < 0:
        raise ValueError(f"relinear_param_groups: lr={lr} must be > 0 (or None) and quadratic_lr={quadratic_lr} "
                         ">= 0")
    quadratic = {id(p): p for m in layers_with(model, TwoSpeed).values()
                 for p in m.quadratic_parameters() if p.requires_grad}
    if not quadratic:
        raise ValueError(f"relinear_param_groups: {type(model).__name__} has no quadratic layer")
    linear = [p for p in model.parameters() if p.requires_grad and id(p) not in quadratic]
    linear_group = {"name": "linear", "params": linear} | ({} if lr is None else {"lr": lr})
    return [linear_group, {"name": "quadratic", "params": list(quadratic.values()), "lr": quadratic_lr}]
