r"""A convolution that is a local integral operator: its kernel is a function of the physical offset.

.. math::  (\mathcal{K} v)(x) = \int_{|y - x| \le r} \kappa(y - x)\, v(y)\, dy + b,
           \qquad \kappa(z) = \sum_{b=1}^{K} \theta_b\, \frac{\psi_b(z)}{n_b},

discretised on a grid of spacing ``(h_0, h_1)`` by the rectangle rule: the pixel kernel is
``kappa(i h_0, j h_1) h_0 h_1`` for the offsets with ``|z| <= r``, applied as a convolution. This is the discrete-
continuous (DISCO) convolution of Ocampo, Price & McEwen (2023) on an equidistant grid, as Liu-Schiaffini et al.
(2024, "Neural operators with localized integral and differential kernels") use it and Berner, Liu-Schiaffini,
Kossaifi et al. (2025) put in place of ``nn.Conv2d`` when they turn a CNN into a neural operator. The receptive
field is ``r`` in physical units, not pixels, so on finer grids the pixel kernel grows and the output converges to
the integral, where an ``nn.Conv2d`` would shrink its receptive field with the pixels.

The basis ``psi_b`` is torch-harmonics' filter basis on the disk of radius ``r`` (``"piecewise linear"`` hats in
radius and angle by default; ``"harmonic"``, ``"zernike"``, ``"fourier-bessel"``). Each is divided by its
integral of ``|psi_b|`` (by default that integral's rectangle rule on the grid at hand, so that every grid gives
each basis function the same mass; or the exact integral), so a weight ``theta_b`` acts like a point-wise weight on
smooth fields at every resolution and radius, and the init is a ``Linear``'s over ``in_channels * K``. On a grid
too coarse to resolve the disk (a pixel wider than about ``r / 2``) the rectangle rule is poor: the layer is made
for grids at or above the one it is designed on.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from kernelnn.layers.input_checks import check_dtype_matches, check_float_tensor, check_positive_ints
from kernelnn.layers.spectral import autocast_output_dtype

BASES = ("piecewise linear", "harmonic", "zernike", "fourier-bessel")
NORMALIZATIONS = ("continuous", "discrete")


def _filter_basis(kernel_shape: tuple[int, ...], basis: str):
    from torch_harmonics.filter_basis import get_filter_basis  # imported where used: keeps `import kernelnn` light

    return get_filter_basis(kernel_shape, basis)


def _dense(basis, r: torch.Tensor, phi: torch.Tensor, radius: float) -> torch.Tensor:
    """The basis functions at the points ``(r, phi)``: ``(K, *r.shape)`` (torch-harmonics returns them sparse)."""
    index, values = basis.compute_support_vals(r, phi, r_cutoff=radius)
    dense = torch.zeros(basis.kernel_size, *r.shape, dtype=r.dtype)
    dense[tuple(index.T)] = values.to(r.dtype)
    return dense


@functools.lru_cache(maxsize=64)
def basis_l1_norms(kernel_shape: tuple[int, ...], basis: str, radius: float) -> torch.Tensor:
    """``int |psi_b(z)| dz`` over the disk of ``radius``, by the midpoint rule on a 400 x 720 polar grid (float64)."""
    fb = _filter_basis(kernel_shape, basis)
    nr, nphi = 400, 720
    dr, dphi = radius / nr, 2 * math.pi / nphi
    r, phi = torch.meshgrid((torch.arange(nr, dtype=torch.float64) + 0.5) * dr,
                            torch.arange(nphi, dtype=torch.float64) * dphi - math.pi, indexing="ij")
    return (_dense(fb, r, phi, radius).abs() * r * dr * dphi).sum((1, 2))


@functools.lru_cache(maxsize=64)
def discretised_basis(kernel_shape: tuple[int, ...], basis: str, radius: float, spacing: tuple[float, float],
                      normalization: str = "continuous") -> torch.Tensor:
    """``psi_b(i h_0, j h_1) h_0 h_1 / n_b`` on the offsets within ``radius``: ``(K, 2 p_0 + 1, 2 p_1 + 1)`` with
    ``p_a = floor(radius / h_a)`` (float64, CPU; cached per grid). ``n_b`` is ``||psi_b||_1`` (``"continuous"``) or
    its rectangle-rule value on this grid (``"discrete"``; the continuous one where the grid samples less than a
    tenth of it)."""
    fb = _filter_basis(kernel_shape, basis)
    half = [math.floor(radius / h * (1 + 1e-12)) for h in spacing]  # an offset exactly at r is inside
    z0, z1 = (torch.arange(-p, p + 1, dtype=torch.float64) * h for p, h in zip(half, spacing, strict=True))
    z0, z1 = torch.meshgrid(z0, z1, indexing="ij")
    r, phi = torch.hypot(z0, z1), torch.atan2(z0, z1)
    psi = _dense(fb, r, phi, radius) * (spacing[0] * spacing[1])
    norms = basis_l1_norms(kernel_shape, basis, radius)
    if normalization == "discrete":  # a function the grid barely samples is not blown up onto a few pixels
        sampled = psi.abs().sum((1, 2))
        norms = torch.where(sampled >= 0.1 * norms, sampled, norms)
    return psi / norms[:, None, None]


@functools.lru_cache(maxsize=64)
def discretised_hats(n_basis: int, radius: float, spacing: tuple[float], normalization: str = "continuous"
                     ) -> torch.Tensor:
    """The 1-D basis ``psi_k(i h) h / n_k`` on the offsets within ``radius``: ``(K, 2 p + 1)``, ``p = floor(r / h)``
    (float64, CPU; cached per grid). ``psi_k`` are torch-harmonics' piecewise-linear collocation on a line: ``K``
    hats of half width ``dr = 2 r / (K + 1)`` at the nodes ``(k - (K - 1) / 2) dr``, so each vanishes at ``|z| = r``
    and has the integral ``dr``. ``n_k`` is that integral (``"continuous"``) or its rectangle rule on this grid
    (``"discrete"``, as :func:`discretised_basis`)."""
    (h,) = spacing
    p = math.floor(radius / h * (1 + 1e-12))
    z = torch.arange(-p, p + 1, dtype=torch.float64) * h
    dr = 2 * radius / (n_basis + 1)
    nodes = (torch.arange(n_basis, dtype=torch.float64) - (n_basis - 1) / 2) * dr
    psi = (1 - (z - nodes[:, None]).abs() / dr).clamp(min=0) * h
    norms = torch.full((n_basis,), dr, dtype=torch.float64)
    if normalization == "discrete":
        sampled = psi.sum(1)
        norms = torch.where(sampled >= 0.1 * norms, sampled, norms)
    return psi / norms[:, None]


@functools.cache
def _eager(fn):
    """``fn`` run eagerly inside compiled code: the basis is a cached constant per grid, and torch-harmonics builds
    it from a sparse (data-dependent) index set that the compiler cannot trace. Made on first use, so importing
    kernelnn does not load the compiler."""
    return torch.compiler.disable(fn)


class _LocalIntegralConv(nn.Module):
    """What the 1-D and 2-D local integral operators share: weights over the basis, the grid's spacing, checks, and
    the convolution with the pixel kernel (directly, or through FFTs when it is large). Subclasses set ``dim`` and
    give the discretised basis on a grid (:meth:`grid_basis`)."""

    dim: int

    def __init__(self, in_channels: int, out_channels: int, radius: float, n_basis: int, domain: Sequence[float],
                 periodic: bool, bias: bool, normalization: str) -> None:
        super().__init__()
        name = type(self).__name__
        check_positive_ints(name, in_channels=in_channels, out_channels=out_channels)
        if not isinstance(periodic, bool):
            raise ValueError(f"{name}: periodic={periodic!r} must be True or False")
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"{name}: normalization={normalization!r} is not one of {list(NORMALIZATIONS)}")
        domain = (domain,) if isinstance(domain, (int, float)) else tuple(domain)
        if (len(domain) != self.dim or not all(isinstance(s, (int, float)) and not isinstance(s, bool)
                                               and math.isfinite(s) and s > 0 for s in domain)):
            wanted = "one positive length" if self.dim == 1 else "two positive side lengths"
            raise ValueError(f"{name}: domain={domain} must be {wanted}")
        if isinstance(radius, bool) or not isinstance(radius, (int, float)) or not 0 < radius < math.inf:
            raise ValueError(f"{name}: radius={radius!r} must be a positive number")
        self.in_channels, self.out_channels, self.n_basis = in_channels, out_channels, n_basis
        self.radius, self.domain, self.periodic = float(radius), tuple(float(s) for s in domain), periodic
        self.normalization = normalization
        bound = 1 / math.sqrt(in_channels * n_basis)  # nn.Linear's init over in_channels * K inputs
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, n_basis).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(out_channels).uniform_(-bound, bound)) if bias else None

    def check_input(self, x: torch.Tensor) -> None:
        name = type(self).__name__
        check_float_tensor(x, name)
        axes = ", ".join("HW"[i] if self.dim == 2 else "L" for i in range(self.dim))
        if x.dim() != self.dim + 2 or x.shape[1] != self.in_channels:
            raise ValueError(f"{name}: input must have shape (batch, {self.in_channels}, {axes}), "
                             f"got {tuple(x.shape)}")
        check_dtype_matches(x, self, name)
        if self.periodic:
            for n, p in zip(x.shape[2:], self.half_widths(x.shape[2:]), strict=True):
                if 2 * p + 1 > n:
                    raise ValueError(f"{name}: a periodic grid of {tuple(x.shape[2:])} points is smaller than the "
                                     f"kernel's {2 * p + 1} pixels (radius={self.radius:g})")

    def spacing(self, shape: Sequence[int]) -> tuple[float, ...]:
        return tuple(side / n for side, n in zip(self.domain, shape, strict=True))

    def half_widths(self, shape: Sequence[int]) -> list[int]:
        return [math.floor(self.radius / h * (1 + 1e-12)) for h in self.spacing(shape)]

    def basis_spec(self) -> tuple:
        """``(builder, leading arguments)``: ``builder(*leading, spacing, normalization)`` is the discretised,
        normalised basis on a grid, ``(K, *kernel pixels)`` in float64 (hashable, so grids are cached by it)."""
        raise NotImplementedError

    def pixel_basis(self, shape: Sequence[int], device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """The discretised basis on a grid of ``shape``: ``(K, *kernel pixels)``, cached per grid, device, dtype."""
        builder, leading = self.basis_spec()
        return basis_on_grid(builder, leading, self.spacing(tuple(shape)), self.normalization, device, dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        basis = _LocalIntegralConv.pixel_basis
        if torch.compiler.is_compiling():
            basis = _eager(basis)
        psi = basis(self, tuple(int(n) for n in x.shape[2:]), x.device, self.weight.dtype)
        if psi[0].numel() <= DIRECT_MAX_PIXELS:
            kernel = torch.einsum("oik,k...->oi...", self.weight, psi)
            pad = [p for n in reversed(psi.shape[1:]) for p in (n // 2, n // 2)]
            x = F.pad(x, pad, mode="circular" if self.periodic else "constant")
            return (F.conv1d if self.dim == 1 else F.conv2d)(x, kernel, self.bias)
        out = fft_correlate(x, self.weight, psi, self.periodic)
        return out if self.bias is None else out + self.bias.view(-1, *[1] * self.dim).to(out.dtype)


class LocalIntegralConv1d(_LocalIntegralConv):
    """Local integral operator on 1-D grids ``(batch, in_channels, L) -> (batch, out_channels, L)``.

    The 1-D case of the module's operator, on torch-harmonics' piecewise-linear collocation along a line
    (:func:`discretised_hats`): ``kernel_shape`` hats of half width ``2 r / (kernel_shape + 1)`` centred at equal
    steps about the origin, each vanishing at ``|z| = r``.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of the input and output fields.
    radius : float
        Radius ``r`` of the kernel's support, in the units of ``domain``.
    kernel_shape : int
        Number ``K`` of hats.
    domain : float
        Length of the domain; a grid of ``L`` points has spacing ``domain / L``.
    periodic, bias, normalization
        As :class:`LocalIntegralConv2d`.
    """

    dim = 1

    def __init__(self, in_channels: int, out_channels: int, radius: float, kernel_shape: int = 3,
                 domain: float | Sequence[float] = 1.0, periodic: bool = False, bias: bool = True,
                 normalization: str = "discrete") -> None:
        if isinstance(kernel_shape, Sequence) and len(kernel_shape) == 1:
            kernel_shape = kernel_shape[0]
        check_positive_ints("LocalIntegralConv1d", kernel_shape=kernel_shape)
        super().__init__(in_channels, out_channels, radius, kernel_shape, domain, periodic, bias, normalization)
        self.kernel_shape = kernel_shape

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, radius={self.radius:g}, kernel_shape={self.kernel_shape}, "
                f"domain={self.domain[0]:g}, periodic={self.periodic}, bias={self.bias is not None}, "
                f"normalization={self.normalization!r}")

    def basis_spec(self) -> tuple:
        return discretised_hats, (self.kernel_shape, self.radius)


class LocalIntegralConv2d(_LocalIntegralConv):
    """Local integral operator on 2-D grids ``(batch, in_channels, H, W) -> (batch, out_channels, H, W)``.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of the input and output fields.
    radius : float
        Radius ``r`` of the kernel's support, in the units of ``domain``.
    kernel_shape : int or (int, int)
        torch-harmonics' basis shape (piecewise linear: ``(radial collocation points, angles)``); ``K`` basis
        functions follow from it.
    basis : str
        One of ``"piecewise linear"``, ``"harmonic"``, ``"zernike"``, ``"fourier-bessel"``.
    domain : (float, float)
        Side lengths of the domain; a grid of ``(H, W)`` points has spacing ``(domain[0] / H, domain[1] / W)``.
    periodic : bool
        Periodic domain (circular padding); otherwise the integral stops at the boundary (zero padding).
    bias : bool
        Add a learnable bias per output channel.
    normalization : str
        ``"discrete"`` (default): each basis function is divided by the rectangle rule of its integral of
        ``|psi_b|`` on the input's grid, so it has the same mass on every grid that samples it (at least a tenth
        of it; neuraloperator's choice); ``"continuous"``: by the exact integral. Both converge to the same
        operator. On coarse grids (a pixel wider than about ``r / 2``) they differ, and the continuous one is far
        from its limit: the operator U-Net trained on Darcy at 32 x 32 with 1.5-cell kernels had a zero-shot error at
        64 x 64 of 0.201 with it, 0.080 with ``"discrete"`` (benchmarks/RESULTS.md).

    The pixel kernel is rebuilt for each grid shape (cached), so any resolution is accepted; the grid must be at
    least as large as the kernel (``2 floor(r / h) + 1`` points per axis) when periodic.
    """

    dim = 2

    def __init__(self, in_channels: int, out_channels: int, radius: float, kernel_shape: int | Sequence[int] = (3, 4),
                 basis: str = "piecewise linear", domain: Sequence[float] = (1.0, 1.0), periodic: bool = False,
                 bias: bool = True, normalization: str = "discrete") -> None:
        if basis not in BASES:
            raise ValueError(f"LocalIntegralConv2d: basis={basis!r} is not one of {list(BASES)}")
        kernel_shape = (kernel_shape,) if isinstance(kernel_shape, int) else tuple(kernel_shape)
        check_positive_ints("LocalIntegralConv2d", **{f"kernel_shape[{i}]": k for i, k in enumerate(kernel_shape)})
        n_basis = _filter_basis(kernel_shape, basis).kernel_size
        super().__init__(in_channels, out_channels, radius, n_basis, domain, periodic, bias, normalization)
        self.kernel_shape, self.basis = kernel_shape, basis

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, radius={self.radius:g}, kernel_shape={self.kernel_shape}, "
                f"basis={self.basis!r}, domain={self.domain}, periodic={self.periodic}, bias={self.bias is not None}, "
                f"normalization={self.normalization!r}")

    def basis_spec(self) -> tuple:
        return discretised_basis, (self.kernel_shape, self.basis, self.radius)


@functools.lru_cache(maxsize=256)
def basis_on_grid(builder, leading: tuple, spacing: tuple[float, ...], normalization: str, device: torch.device,
                  dtype: torch.dtype) -> torch.Tensor:
    """``builder(*leading, spacing, normalization)`` (:func:`discretised_hats`, :func:`discretised_basis`) on
    ``device`` in ``dtype``: copied there once, not at every call."""
    return builder(*leading, spacing, normalization).to(device=device, dtype=dtype)


# Above this many kernel pixels the convolution runs through FFTs: a direct one costs kernel pixels per output
# point, and im2col memory grows with them (a 97 x 97 kernel on 512 x 512 asks for tens of GB).
DIRECT_MAX_PIXELS = 81


def fft_correlate(x: torch.Tensor, weight: torch.Tensor, psi: torch.Tensor, periodic: bool) -> torch.Tensor:
    """``F.conv{d}d(pad(x), einsum("oik,k...->oi...", weight, psi))`` (cross-correlation, 'same' size, odd kernel;
    ``d`` = 1 or 2 spatial axes, those of ``psi`` after its basis axis) through real FFTs: circular padding when
    ``periodic``, zeros otherwise (the grid is extended by the kernel's half width, so nothing wraps).

    The weights are applied to the input's spectrum before the basis functions' spectra, so memory grows with
    ``batch * out_channels * K`` spectra rather than with the ``out_channels * in_channels`` pixel kernels.
    Under autocast the FFTs run in float32 and the output comes in the autocast dtype, as the direct path's.
    """
    out_dtype = autocast_output_dtype(x)
    if x.shape[0] == 0:  # MKL's FFT refuses empty batches
        return x.new_zeros(0, weight.shape[0], *x.shape[2:], dtype=out_dtype)
    d = psi.dim() - 1
    axes = list(range(-d, 0))
    with torch.autocast(x.device.type, enabled=False):
        x = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
        psi = psi.to(x.dtype)
        grid, half = x.shape[2:], [k // 2 for k in psi.shape[1:]]
        size = tuple(grid) if periodic else tuple(n + p for n, p in zip(grid, half, strict=True))
        # Each flipped basis function at offsets -z (mod size): correlation becomes a circular convolution.
        index = tuple((torch.arange(-p, p + 1, device=x.device) % n).view(-1, *[1] * (d - 1 - a))
                      for a, (p, n) in enumerate(zip(half, size, strict=True)))
        placed = psi.new_zeros(*size, psi.shape[0]).index_put(
            index, psi.flip(axes).movedim(0, -1), accumulate=True).movedim(-1, 0)
        x_hat = torch.fft.rfftn(x, s=size, dim=axes)
        mixed = torch.einsum("bi...,oik->bok...", x_hat, weight.to(x_hat.dtype))
        spectrum = torch.einsum("bok...,k...->bo...", mixed, torch.fft.rfftn(placed, dim=axes))
        out = torch.fft.irfftn(spectrum, s=size, dim=axes)[(..., *(slice(0, n) for n in grid))]
    return out.to(out_dtype)
