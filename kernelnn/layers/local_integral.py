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


@functools.cache
def _eager(fn):
    """``fn`` run eagerly inside compiled code: the basis is a cached constant per grid, and torch-harmonics builds
    it from a sparse (data-dependent) index set that the compiler cannot trace. Made on first use, so importing
    kernelnn does not load the compiler."""
    return torch.compiler.disable(fn)


class LocalIntegralConv2d(nn.Module):
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

    def __init__(self, in_channels: int, out_channels: int, radius: float, kernel_shape: int | Sequence[int] = (3, 4),
                 basis: str = "piecewise linear", domain: Sequence[float] = (1.0, 1.0), periodic: bool = False,
                 bias: bool = True, normalization: str = "discrete") -> None:
        super().__init__()
        check_positive_ints("LocalIntegralConv2d", in_channels=in_channels, out_channels=out_channels)
        if basis not in BASES:
            raise ValueError(f"LocalIntegralConv2d: basis={basis!r} is not one of {list(BASES)}")
        if not isinstance(periodic, bool):
            raise ValueError(f"LocalIntegralConv2d: periodic={periodic!r} must be True or False")
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"LocalIntegralConv2d: normalization={normalization!r} is not one of "
                             f"{list(NORMALIZATIONS)}")
        self.normalization = normalization
        kernel_shape = (kernel_shape,) if isinstance(kernel_shape, int) else tuple(kernel_shape)
        check_positive_ints("LocalIntegralConv2d", **{f"kernel_shape[{i}]": k for i, k in enumerate(kernel_shape)})
        domain = tuple(float(s) for s in domain)
        if len(domain) != 2 or not all(math.isfinite(s) and s > 0 for s in domain):
            raise ValueError(f"LocalIntegralConv2d: domain={domain} must be two positive side lengths")
        if isinstance(radius, bool) or not isinstance(radius, (int, float)) or not 0 < radius < math.inf:
            raise ValueError(f"LocalIntegralConv2d: radius={radius!r} must be a positive number")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.radius, self.kernel_shape, self.basis = float(radius), kernel_shape, basis
        self.domain, self.periodic = domain, bool(periodic)
        self.n_basis = _filter_basis(kernel_shape, basis).kernel_size
        bound = 1 / math.sqrt(in_channels * self.n_basis)  # nn.Linear's init over in_channels * K inputs
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, self.n_basis).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(out_channels).uniform_(-bound, bound)) if bias else None

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, radius={self.radius:g}, kernel_shape={self.kernel_shape}, "
                f"basis={self.basis!r}, domain={self.domain}, periodic={self.periodic}, bias={self.bias is not None}, "
                f"normalization={self.normalization!r}")

    def check_input(self, x: torch.Tensor) -> None:
        check_float_tensor(x, "LocalIntegralConv2d")
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"LocalIntegralConv2d: input must have shape (batch, {self.in_channels}, H, W), "
                             f"got {tuple(x.shape)}")
        check_dtype_matches(x, self, "LocalIntegralConv2d")
        if self.periodic:
            for n, p in zip(x.shape[2:], self.half_widths(x.shape[2:]), strict=True):
                if 2 * p + 1 > n:
                    raise ValueError(f"LocalIntegralConv2d: a periodic grid of {tuple(x.shape[2:])} points is "
                                     f"smaller than the kernel's {2 * p + 1} pixels (radius={self.radius:g})")

    def spacing(self, shape: Sequence[int]) -> tuple[float, float]:
        return (self.domain[0] / shape[0], self.domain[1] / shape[1])

    def half_widths(self, shape: Sequence[int]) -> list[int]:
        return [math.floor(self.radius / h * (1 + 1e-12)) for h in self.spacing(shape)]

    def pixel_basis(self, shape: Sequence[int], device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """The discretised basis on a grid of ``shape``: ``(K, kh, kw)``, cached per grid, device and dtype."""
        return basis_on_grid(self.kernel_shape, self.basis, self.radius, self.spacing(tuple(shape)),
                             self.normalization, device, dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        basis = LocalIntegralConv2d.pixel_basis
        if torch.compiler.is_compiling():
            basis = _eager(basis)
        psi = basis(self, tuple(int(n) for n in x.shape[2:]), x.device, self.weight.dtype)
        if psi.shape[1] * psi.shape[2] <= DIRECT_MAX_PIXELS:
            kernel = torch.einsum("oik,khw->oihw", self.weight, psi)
            p0, p1 = psi.shape[1] // 2, psi.shape[2] // 2
            x = F.pad(x, (p1, p1, p0, p0), mode="circular" if self.periodic else "constant")
            return F.conv2d(x, kernel, self.bias)
        out = fft_correlate(x, self.weight, psi, self.periodic)
        return out if self.bias is None else out + self.bias[:, None, None].to(out.dtype)


@functools.lru_cache(maxsize=256)
def basis_on_grid(kernel_shape: tuple[int, ...], basis: str, radius: float, spacing: tuple[float, float],
                  normalization: str, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """:func:`discretised_basis` on ``device`` in ``dtype``: copied there once, not at every call."""
    return discretised_basis(kernel_shape, basis, radius, spacing, normalization).to(device=device, dtype=dtype)


# Above this many kernel pixels the convolution runs through FFTs: a direct one costs kernel pixels per output
# point, and im2col memory grows with them (a 97 x 97 kernel on 512 x 512 asks for tens of GB).
DIRECT_MAX_PIXELS = 81


def fft_correlate(x: torch.Tensor, weight: torch.Tensor, psi: torch.Tensor, periodic: bool) -> torch.Tensor:
    """``F.conv2d(pad(x), einsum("oik,khw->oihw", weight, psi))`` (cross-correlation, 'same' size, odd kernel)
    through real FFTs: circular padding when ``periodic``, zeros otherwise (the grid is extended by the kernel's
    half width, so nothing wraps).

    The weights are applied to the input's spectrum before the basis functions' spectra, so memory grows with
    ``batch * out_channels * K`` spectra rather than with the ``out_channels * in_channels`` pixel kernels.
    Under autocast the FFTs run in float32 and the output comes in the autocast dtype, as the direct path's.
    """
    out_dtype = autocast_output_dtype(x)
    if x.shape[0] == 0:  # MKL's FFT refuses empty batches
        return x.new_zeros(0, weight.shape[0], *x.shape[2:], dtype=out_dtype)
    with torch.autocast(x.device.type, enabled=False):
        x = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
        psi = psi.to(x.dtype)
        (n0, n1), (k0, k1) = x.shape[2:], psi.shape[1:]
        p0, p1 = k0 // 2, k1 // 2
        size = (n0, n1) if periodic else (n0 + p0, n1 + p1)
        # Each flipped basis function at offsets -z (mod size): correlation becomes a circular convolution.
        rows = torch.arange(-p0, p0 + 1, device=x.device) % size[0]
        cols = torch.arange(-p1, p1 + 1, device=x.device) % size[1]
        placed = psi.new_zeros(*size, psi.shape[0]).index_put(
            (rows[:, None], cols[None, :]), psi.flip(-2, -1).permute(1, 2, 0), accumulate=True).permute(2, 0, 1)
        x_hat = torch.fft.rfft2(x, s=size)
        mixed = torch.einsum("bixy,oik->bokxy", x_hat, weight.to(x_hat.dtype))
        spectrum = torch.einsum("bokxy,kxy->boxy", mixed, torch.fft.rfft2(placed))
        out = torch.fft.irfft2(spectrum, s=size)[..., :n0, :n1]
    return out.to(out_dtype)
