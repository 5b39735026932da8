r"""Kernel and distance convolutions: the inner product of a convolution replaced by another similarity.

Source: Ghiasi-Shirazi, "Generalizing the Convolution Operator in Convolutional Neural Networks" (Neural
Processing Letters, 2019). A convolution computes :math:`\langle w, p\rangle` between a filter :math:`w` and
every image patch :math:`p`. Here it is replaced by

* a positive-definite kernel ``kernel=``: ``linear`` :math:`\langle w,p\rangle` (exactly ``nn.ConvNd``),
  ``polynomial`` :math:`(\langle w,p\rangle + c)^d` (learnable :math:`c \ge 0`), ``gaussian``
  :math:`\exp(-\gamma\|w-p\|^2)`, ``cauchy`` :math:`1/(1+\gamma\|w-p\|^2)` (learnable :math:`\gamma > 0`), or
  ``sigmoid`` :math:`\tanh(a\langle w,p\rangle + c)`;
* a distance similarity: ``l2`` :math:`-\sum_i u_i (p_i - w_i)^2`, ``l1`` :math:`-\sum_i u_i |p_i - w_i|` and
  ``lp`` :math:`-\sum_i u_i |p_i - w_i|^q`, with learnable positive per-tap weights :math:`u` (one per filter
  entry),

then a bias and optionally a monotonically increasing ``output_fn`` (``identity``, ``exp``, ``sine`` as the
paper's justification of sine activations, or any callable). Parameters of kernels and distances have one
value per output channel and are learned with the filters.

Cost: ``l2``, ``gaussian`` and ``cauchy`` use :math:`\|w-p\|^2 = \|w\|^2 - 2\langle w,p\rangle + \|p\|^2`,
i.e. ordinary convolutions of ``x`` and ``x*x``; ``l1``/``lp`` have no such form and run through
:func:`kernelnn.layers.lp_distance.lp_distance` (chunked, bounded memory).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from kernelnn.layers import checked
from kernelnn.layers.conv_args import check_padding_mode, int_tuple, pad
from kernelnn.layers.input_checks import check_dtype_matches, check_float_tensor
from kernelnn.layers.lp_distance import BACKENDS, CHUNK_ELEMENTS, lp_distance
from kernelnn.registry import CONVOLUTIONS, NEURONS

KERNELS = ("linear", "polynomial", "gaussian", "cauchy", "sigmoid", "l2", "l1", "lp")
DISTANCES = ("l2", "l1", "lp")
TEMPLATE_KERNELS = ("gaussian", "cauchy", "l2", "l1", "lp")  # filters compared to patches by a distance
OUTPUT_FUNCTIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "identity": lambda t: t,
    "exp": torch.exp,
    "sine": torch.sin,
}
_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def _inverse_softplus(y: float) -> float:
    return y + math.log(-math.expm1(-y))


class KernelConv(nn.Module):
    """Generalized convolution (see the module docstring); use :class:`KernelConv1d`, ``2d`` or ``3d``.

    Parameters
    ----------
    in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode
        As :class:`torch.nn.Conv2d` (``padding`` may be ``"same"`` / ``"valid"``; ``padding_mode`` is
        ``zeros``, ``reflect``, ``replicate`` or ``circular``).
    kernel : str
        One of ``linear, polynomial, gaussian, cauchy, sigmoid, l2, l1, lp``.
    degree : int
        Degree ``d`` of the polynomial kernel.
    q : float
        Exponent of the ``lp`` distance (``l1`` is ``q = 1``, ``l2`` is ``q = 2``).
    output_fn : str or callable
        Applied last: ``identity``, ``exp``, ``sine`` or a callable on tensors.
    chunk_elements : int
        Memory bound of the ``l1``/``lp`` computation (elements per broadcast block).
    backend : str
        How ``l1``/``lp`` are computed: ``"auto"`` (fused Triton kernels on CUDA; on CPU fused kernels compiled
        by ``torch.compile`` for large inputs, chunked PyTorch for small ones), ``"torch"``, ``"compiled"`` or
        ``"triton"``.

    Shapes: ``(batch, in_channels, *spatial) -> (batch, out_channels, *spatial_out)`` as ``nn.ConvNd``.

    Example
    -------
    >>> conv = KernelConv2d(3, 16, 3, padding=1, kernel="l2")
    >>> conv(torch.randn(8, 3, 32, 32)).shape
    torch.Size([8, 16, 32, 32])
    """

    dim: int = 2

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | Sequence[int], stride=1,
                 padding: int | Sequence[int] | str = 0, dilation=1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", kernel: str = "linear", degree: int = 2, q: float = 1.0,
                 output_fn: str | Callable = "identity", chunk_elements: int = CHUNK_ELEMENTS,
                 backend: str = "auto") -> None:
        super().__init__()
        name = type(self).__name__
        for arg, value in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: {arg}={value!r} must be a positive int")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{name}: in_channels={in_channels} and out_channels={out_channels} must be divisible "
                             f"by groups={groups}")
        if kernel not in KERNELS:
            raise ValueError(f"{name}: kernel={kernel!r} is not a known kernel; valid: {', '.join(KERNELS)}")
        check_padding_mode(padding_mode, name)
        if kernel == "polynomial" and (not isinstance(degree, int) or degree < 1):
            raise ValueError(f"{name}: degree={degree!r} must be a positive int")
        if kernel == "lp" and not q >= 1:
            raise ValueError(f"{name}: q={q!r} must be >= 1 (|t|^q is not differentiable at 0 below that)")
        if backend not in BACKENDS:
            raise ValueError(f"{name}: backend={backend!r} must be one of {', '.join(BACKENDS)}")
        if not callable(output_fn) and output_fn not in OUTPUT_FUNCTIONS:
            raise ValueError(f"{name}: output_fn={output_fn!r} is not a callable or one of "
                             f"{', '.join(OUTPUT_FUNCTIONS)}")
        d = self.dim
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = int_tuple(kernel_size, d, "kernel_size", name, minimum=1)
        self.stride = int_tuple(stride, d, "stride", name, minimum=1)
        self.dilation = int_tuple(dilation, d, "dilation", name, minimum=1)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"{name}: padding={padding!r} must be an int, ints, 'same' or 'valid'")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError(f"{name}: padding='same' needs stride 1, got stride={self.stride}")
            total = [dl * (k - 1) for dl, k in zip(self.dilation, self.kernel_size, strict=True)]
            pads = [(t // 2, t - t // 2) for t in total] if padding == "same" else [(0, 0)] * d
        else:
            pads = [(p, p) for p in int_tuple(padding, d, "padding", name, minimum=0)]
        self.pads = tuple(pads)  # (left, right) per spatial dim
        self.padding_mode = padding_mode
        self.kernel, self.degree, self.q = kernel, degree, float(2.0 if kernel == "l2" else 1.0 if kernel == "l1"
                                                                 else q)
        self.output_fn = output_fn
        self.chunk_elements = chunk_elements
        self.backend = backend

        # Filters initialised as nn.ConvNd's (so the linear kernel starts as the ordinary convolution).
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, *self.kernel_size))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        fan_in = (in_channels // groups) * math.prod(self.kernel_size)
        if bias:
            bound = 1 / math.sqrt(fan_in)
            self.bias = nn.Parameter(torch.empty(out_channels).uniform_(-bound, bound))
        else:
            self.register_parameter("bias", None)
        if kernel in DISTANCES:  # u = softplus(raw) > 0, one per filter entry, starting at 1
            self.raw_taps = nn.Parameter(torch.full_like(self.weight, _inverse_softplus(1.0)))
        if kernel == "polynomial":  # c = softplus(raw) >= 0, starting at 1
            self.raw_offset = nn.Parameter(torch.full((out_channels,), _inverse_softplus(1.0)))
        if kernel in ("gaussian", "cauchy"):  # gamma = softplus(raw) > 0, starting at 1 / fan_in
            self.raw_gamma = nn.Parameter(torch.full((out_channels,), _inverse_softplus(1.0 / fan_in)))
        if kernel == "sigmoid":
            self.slope = nn.Parameter(torch.ones(out_channels))
            self.offset = nn.Parameter(torch.zeros(out_channels))

    def extra_repr(self) -> str:
        fn = self.output_fn if isinstance(self.output_fn, str) else getattr(self.output_fn, "__name__", "callable")
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"kernel={self.kernel!r}, output_fn={fn!r}")

    # ------------------------------------------------------------------ parameters in their natural ranges
    def taps(self) -> torch.Tensor:
        """The positive per-tap weights ``u`` of a distance kernel, shaped like ``weight``."""
        return F.softplus(self.raw_taps)

    def _per_channel(self, t: torch.Tensor) -> torch.Tensor:
        return t.view(1, -1, *([1] * self.dim))

    # ------------------------------------------------------------------ forward
    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        return pad(x, self.pads, self.padding_mode)

    def _conv_padding(self) -> int | tuple[int, ...]:
        """What the convolution call pads itself: symmetric zero padding (no padded copy of the input)."""
        if self.padding_mode == "zeros" and all(left == right for left, right in self.pads):
            return tuple(left for left, _ in self.pads)
        return 0

    def _conv_input(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` padded by whatever the convolution call does not pad itself."""
        return x if self._conv_padding() != 0 else self._pad(x)

    def _conv(self, xp: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        return _CONV[self.dim](xp, weight, bias, self.stride, self._conv_padding(), self.dilation, self.groups)

    def _scaled_squared_distance(self, xp: torch.Tensor, taps: torch.Tensor | None, scale: torch.Tensor,
                                 offset: torch.Tensor | None = None) -> torch.Tensor:
        """``scale_o * sum_i u_i (p_i - w_i)^2 + offset_o`` (``u = 1`` without taps) from ordinary convolutions.

        The expansion ``sum u p^2 - 2 sum u w p + sum u w^2``: with taps, a convolution of ``x*x`` with ``u``
        whose bias carries ``sum u w^2`` (``scale`` and ``offset`` fold in too), plus one of ``x`` with
        ``-2 u w`` added in place. Without taps ``||p||^2`` is the same for every filter of a group: a
        one-channel box filter of the channel sum of ``x*x``, so the cost is one convolution of ``x`` plus a
        tiny one.
        No clamp: without a square root, rounding below zero is harmless.
        """
        w = self.weight
        s = scale.view(-1, *([1] * (w.dim() - 1)))
        grouped = xp.unflatten(1, (self.groups, -1))
        if taps is None:
            bias = scale * (w * w).flatten(1).sum(1)
            cross = self._conv(xp, -2 * s * w, bias if offset is None else bias + offset)
            box = w.new_ones(self.groups, 1, *self.kernel_size)
            squares = (grouped * grouped).sum(2)  # (batch, groups, *spatial)
            patch_norms = _CONV[self.dim](squares, box, None, self.stride, self._conv_padding(), self.dilation,
                                          self.groups)
            g = self.groups
            cross = cross.unflatten(1, (g, -1)) + scale.view(1, g, -1, *([1] * self.dim)) * patch_norms.unsqueeze(2)
            return cross.flatten(1, 2)
        # With taps: sum_i u_i p_i^2 differs per filter, a convolution of x*x with u; the cross term is a
        # convolution of x (two calls rather than one of the stacked [x*x, x], so autograd keeps x*x, not a
        # second, twice-as-wide copy of the input).
        u = taps
        bias = scale * (u * w * w).flatten(1).sum(1)
        if offset is not None:
            bias = bias + offset
        out = self._conv(xp * xp, s * u, bias)
        return out.add_(self._conv(xp, -2 * s * u * w))

    def _patches(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, groups, C_g * prod(kernel), positions)``: padded, strided, dilated windows of ``x``."""
        xp = self._pad(x)
        for axis, (k, s, dl) in enumerate(zip(self.kernel_size, self.stride, self.dilation, strict=True), start=2):
            xp = xp.unfold(axis, dl * (k - 1) + 1, s)
            if dl > 1:
                xp = xp[..., ::dl]
        # xp: (batch, C, *out_spatial, *kernel) -> (batch, groups, C_g * kernel, positions)
        n, c = xp.shape[:2]
        d = self.dim
        xp = xp.permute(0, 1, *range(2 + d, 2 + 2 * d), *range(2, 2 + d))
        return xp.reshape(n, self.groups, (c // self.groups) * math.prod(self.kernel_size), -1)

    def output_shape(self, spatial: Sequence[int]) -> tuple[int, ...]:
        return tuple((n + pl + pr - dl * (k - 1) - 1) // s + 1 for n, (pl, pr), k, s, dl in
                     zip(spatial, self.pads, self.kernel_size, self.stride, self.dilation, strict=True))

    def check_input(self, x: torch.Tensor) -> None:
        name = type(self).__name__
        check_float_tensor(x, name)
        if self.kernel not in ("l1", "lp"):  # the l1/lp distance promotes dtypes itself; the others are F.conv
            check_dtype_matches(x, self, name)
        if x.dim() != self.dim + 2 or x.shape[1] != self.in_channels:
            raise ValueError(f"{name}: input must have shape (batch, {self.in_channels}, "
                             f"{', '.join('n' * self.dim)}), got {tuple(x.shape)}")
        if any(n < 1 for n in self.output_shape(x.shape[2:])):
            raise ValueError(f"{name}: input spatial size {tuple(x.shape[2:])} is smaller than the (dilated) "
                             f"kernel {self.kernel_size} after padding")

    def similarity(self, x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        """The kernel or distance similarity of every filter and patch, plus ``bias`` (one per output channel).

        Where the kernel allows, the bias rides in the convolution call itself (no extra pass over the output).
        """
        k = self.kernel
        if k in ("l1", "lp"):
            g = self.groups
            w = self.weight.reshape(g, self.out_channels // g, -1)
            u = self.taps().reshape(g, self.out_channels // g, -1)
            shape = self.output_shape(x.shape[2:])
            out = -lp_distance(x, w, u, self._patches, math.prod(shape), self.q, self.chunk_elements, self.backend)
            out = out.reshape(x.shape[0], self.out_channels, *shape)
        else:
            xp = self._conv_input(x)
            if k == "linear":
                return self._conv(xp, self.weight, bias)
            if k == "l2":
                return self._scaled_squared_distance(xp, self.taps(), self.weight.new_full((self.out_channels,), -1.0),
                                                     bias)
            if k == "polynomial":
                out = (self._conv(xp, self.weight, F.softplus(self.raw_offset))) ** self.degree
            elif k == "sigmoid":
                out = torch.tanh(self._conv(xp, self._per_filter(self.slope) * self.weight, self.offset))
            else:
                gamma = F.softplus(self.raw_gamma)
                if k == "gaussian":
                    out = torch.exp(self._scaled_squared_distance(xp, None, -gamma))
                else:
                    # reciprocal, not 1.0 / z (reciprocal, then a scaled copy): backward keeps only the output
                    out = torch.reciprocal(self._scaled_squared_distance(xp, None, gamma, torch.ones_like(gamma)))
        return out if bias is None else out + self._per_channel(bias)

    @torch.no_grad()
    def init_from_data(self, x: torch.Tensor, seed: int = 0, max_patches: int = 8192) -> bool:
        """Place the filters of a distance-based kernel on k-means centres of the input patches of ``x``.

        Distance and Gaussian/Cauchy similarities compare each filter with patches as a *template*, so the
        filters must live where the patches do; ``nn.Conv``'s small random init puts them near the origin,
        far from data, and Adam then spends hundreds of steps just moving them there. k-means (k-means++ seeding
        then Lloyd, SciPy) on up to ``max_patches`` random patches per group gives distinct data-scale templates,
        as in Coates and Ng's k-means feature learning. Deterministic for a ``seed``. Returns whether filters
        were placed (``False`` for inner-product kernels, whose init is ``nn.Conv``'s).
        """
        if self.kernel not in TEMPLATE_KERNELS:
            return False
        self.check_input(x)
        from scipy.cluster.vq import kmeans2

        patches = self._patches(x.detach()).transpose(0, 1).transpose(2, 3)  # (groups, batch, positions, C_g K)
        patches = patches.reshape(self.groups, -1, patches.shape[-1]).cpu().double()
        per_group = self.out_channels // self.groups
        if patches.shape[1] < per_group:
            raise ValueError(f"{type(self).__name__}.init_from_data: {patches.shape[1]} patches cannot place "
                             f"{per_group} filters per group")
        generator = torch.Generator().manual_seed(seed)
        rng = np.random.default_rng(seed)
        templates = []
        for group in patches:
            sample = group[torch.randperm(len(group), generator=generator)[:max_patches]].numpy()
            with warnings.catch_warnings():  # an empty cluster keeps its seed: fine for templates
                warnings.simplefilter("ignore")
                centres, _ = kmeans2(sample, per_group, iter=10, minit="++", seed=rng)
            templates.append(torch.from_numpy(centres))
        self.weight.copy_(torch.cat(templates).reshape_as(self.weight))
        return True

    def _per_filter(self, t: torch.Tensor) -> torch.Tensor:
        return t.view(-1, *([1] * (self.weight.dim() - 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        out = self.similarity(x, self.bias)
        fn = self.output_fn if callable(self.output_fn) else OUTPUT_FUNCTIONS[self.output_fn]
        return fn(out)


class KernelConv1d(KernelConv):
    dim = 1


class KernelConv2d(KernelConv):
    dim = 2


class KernelConv3d(KernelConv):
    dim = 3


class KernelLinear(nn.Module):
    """The dense layer of :class:`KernelConv`: ``(..., in_features) -> (..., out_features)``.

    Output ``o`` is the kernel / distance similarity of the input vector and weight row ``w_o`` (plus bias,
    then ``output_fn``); arguments as :class:`KernelConv` (``kernel="linear"`` equals ``nn.Linear``).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, kernel: str = "linear",
                 **options) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.conv = KernelConv1d(in_features, out_features, 1, bias=bias, kernel=kernel, **options)

    def check_input(self, x: torch.Tensor) -> None:
        name = type(self).__name__
        check_float_tensor(x, name)
        if self.conv.kernel not in ("l1", "lp"):
            check_dtype_matches(x, self, name)
        if x.dim() < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"{name}: input must have shape (..., {self.in_features}), got {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        lead = x.shape[:-1]
        return self.conv(x.reshape(-1, self.in_features, 1)).reshape(*lead, self.out_features)


class DistanceLinear(KernelLinear):
    """:class:`KernelLinear` with a weighted distance similarity: ``kernel="l2"`` (default), ``"l1"``, ``"lp"``."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, kernel: str = "l2",
                 **options) -> None:
        if kernel not in DISTANCES:
            raise ValueError(f"DistanceLinear: kernel={kernel!r} must be one of {', '.join(DISTANCES)}")
        super().__init__(in_features, out_features, bias=bias, kernel=kernel, **options)


_BY_DIM = {1: KernelConv1d, 2: KernelConv2d, 3: KernelConv3d}


# Registered names: ``conv`` (nn.ConvNd), each kernel of KERNELS, distances as ``distance_<name>``; the dense
# neurons of the same kernels (``linear`` is nn.Linear, registered in kernelnn/layers/checked.py).
def _kernel_conv(kernel: str, in_channels: int, out_channels: int, kernel_size, dim: int, args: dict) -> KernelConv:
    return _BY_DIM[dim](in_channels, out_channels, kernel_size, kernel=kernel, **args)


@CONVOLUTIONS.register("conv")
def plain_conv(in_channels: int, out_channels: int, kernel_size, dim: int = 2, **args) -> nn.Module:
    """The ordinary convolution ``nn.Conv{dim}d`` (with kernelnn's input check), for ``model.conv=conv``."""
    return {1: checked.Conv1d, 2: checked.Conv2d, 3: checked.Conv3d}[dim](in_channels, out_channels, kernel_size,
                                                                           **args)


@CONVOLUTIONS.register("linear")
def linear_conv(in_channels: int, out_channels: int, kernel_size, dim: int = 2, **args) -> KernelConv:
    """A :class:`KernelConv` with the plain dot product (equals nn.ConvNd)."""
    return _kernel_conv("linear", in_channels, out_channels, kernel_size, dim, args)


@CONVOLUTIONS.register("polynomial")
def polynomial_conv(in_channels: int, out_channels: int, kernel_size, dim: int = 2, **args) -> KernelConv:
    """A :class:`KernelConv` with the polynomial kernel."""
    return _kernel_conv("polynomial", in_channels, out_channels, kernel_size, dim, args)


@CONVOLUTIONS.register("gaussian")
def gaussian_conv(in_channels: int, out_channels: int, kernel_size, dim: int = 2, **args) -> KernelConv:
    """A :class:`KernelConv` with the Gaussian kernel."""
    return _kernel_conv("gaussian", in_channels, out_channels, kernel_size, dim, args)


@CONVOLUTIONS.register("cauchy")
def cauchy_conv(in_channels: int, out_channels: int, kernel_size, dim: int = 2, **args) -> KernelConv:
    """A :class:`KernelConv` with the Cauchy kernel."""
    return _kernel_conv("cauchy", in_channels, out_channels, kernel_size, dim, args)


@CONVOLUTIONS.register("sigmoid")
def sigmoid_conv(in_channels: int, out_channels: int, kernel_size, dim: int = 2, **args) -> KernelConv:
    """A :class:`KernelConv` with the sigmoid kernel."""
    return _kernel_conv("sigmoid", in_channels, out_channels, kernel_size, dim, args)


@CONVOLUTIONS.register("distance_l2")
def distance_l2_conv(in_channels: int, out_channels: int, kernel_size, dim: int = 2, **args) -> KernelConv:
    """A :class:`KernelConv` with the weighted L2 distance similarity."""
    return _kernel_conv("l2", in_channels, out_channels, kernel_size, dim, args)


@CONVOLUTIONS.register("distance_l1")
def distance_l1_conv(in_channels: int, out_channels: int, kernel_size, dim: int = 2, **args) -> KernelConv:
    """A :class:`KernelConv` with the weighted L1 distance similarity."""
    return _kernel_conv("l1", in_channels, out_channels, kernel_size, dim, args)


@CONVOLUTIONS.register("distance_lp")
def distance_lp_conv(in_channels: int, out_channels: int, kernel_size, dim: int = 2, **args) -> KernelConv:
    """A :class:`KernelConv` with the weighted Lp distance similarity."""
    return _kernel_conv("lp", in_channels, out_channels, kernel_size, dim, args)


@NEURONS.register("polynomial")
def polynomial_neurons(in_features: int, out_features: int, **args) -> KernelLinear:
    """A :class:`KernelLinear` with the polynomial kernel."""
    return KernelLinear(in_features, out_features, kernel="polynomial", **args)


@NEURONS.register("gaussian")
def gaussian_neurons(in_features: int, out_features: int, **args) -> KernelLinear:
    """A :class:`KernelLinear` with the Gaussian kernel."""
    return KernelLinear(in_features, out_features, kernel="gaussian", **args)


@NEURONS.register("cauchy")
def cauchy_neurons(in_features: int, out_features: int, **args) -> KernelLinear:
    """A :class:`KernelLinear` with the Cauchy kernel."""
    return KernelLinear(in_features, out_features, kernel="cauchy", **args)


@NEURONS.register("sigmoid")
def sigmoid_neurons(in_features: int, out_features: int, **args) -> KernelLinear:
    """A :class:`KernelLinear` with the sigmoid kernel."""
    return KernelLinear(in_features, out_features, kernel="sigmoid", **args)


@NEURONS.register("distance_l2")
def distance_l2_neurons(in_features: int, out_features: int, **args) -> KernelLinear:
    """A :class:`KernelLinear` with the weighted L2 distance similarity."""
    return KernelLinear(in_features, out_features, kernel="l2", **args)


@NEURONS.register("distance_l1")
def distance_l1_neurons(in_features: int, out_features: int, **args) -> KernelLinear:
    """A :class:`KernelLinear` with the weighted L1 distance similarity."""
    return KernelLinear(in_features, out_features, kernel="l1", **args)


@NEURONS.register("distance_lp")
def distance_lp_neurons(in_features: int, out_features: int, **args) -> KernelLinear:
    """A :class:`KernelLinear` with the weighted Lp distance similarity."""
    return KernelLinear(in_features, out_features, kernel="lp", **args)
