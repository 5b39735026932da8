r"""Gaunt tensor products: the spherical-harmonic coefficients of the product of two spherical functions.

For coefficient vectors ``x`` (degrees up to :math:`L_1`) and ``y`` (up to :math:`L_2`) in e3nn's real layout
(:mod:`kernelnn.layers.spherical_harmonics`), with :math:`f = \sum x_{lm} Y_{lm}` and :math:`g = \sum y_{lm}
Y_{lm}`, the Gaunt product is

.. math::
    z_{l_3 m_3} = \int_{S^2} f\, g\, Y_{l_3 m_3}\, d\Omega = \sum x_{l_1 m_1} y_{l_2 m_2} G^{l_1 l_2 l_3}_{m_1 m_2 m_3},
    \qquad G = \int Y_{l_1 m_1} Y_{l_2 m_2} Y_{l_3 m_3}\, d\Omega,

for :math:`l_3 \le L_{out}`. :math:`G` vanishes unless :math:`l_1 + l_2 + l_3` is even and the triangle
inequality holds, so the product is O(3)-equivariant for features that transform like functions on the sphere
(irreps ``0e + 1o + 2e + 3o + ...``): Luo et al., "Enabling Efficient Equivariant Operations in the Fourier Basis
via Gaunt Tensor Products" (ICLR 2024).

Three methods compute the same numbers:

* ``"dense"``: contraction with :math:`G` (the reference; :math:`O(L^6)` per product);
* ``"grid"``: both functions evaluated on a Gauss-Legendre x uniform grid just fine enough for the degree-
  :math:`(L_1 + L_2 + L_{out})` integrand to be integrated exactly, multiplied point-wise and projected back by
  that quadrature;
* ``"fourier"``: Luo et al.'s route: harmonics -> 2-D Fourier coefficients in :math:`(\theta, \varphi)` (each
  :math:`Y_{lm}` continued to :math:`\theta \in [0, 2\pi)` is a trigonometric polynomial of degree :math:`l`),
  the product as a 2-D convolution by FFT, and an exact projection back to harmonics.

All three are exact up to floating-point rounding (tested to 1e-10 relative in float64).
``normalization="component"`` takes and returns coefficients of the harmonics times :math:`\sqrt{4\pi}` (e3nn's
default for layers): the product's coefficients in that basis are :math:`\sqrt{4\pi}` times the integral-basis
formula applied to the same numbers.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

from kernelnn.layers.spherical_harmonics import (
    NORMALIZATIONS,
    degree_of_dim,
    sh_dim,
    spherical_harmonics_on_angles,
)

METHODS = ("auto", "dense", "grid", "fourier")


# ---------------------------------------------------------------------------------------------- precomputation
def quadrature_grid(degree: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Nodes ``theta (n_theta,)``, ``phi (n_phi,)`` and weights ``(n_theta, n_phi)`` (float64) of a
    Gauss-Legendre (in :math:`\cos\theta`) x uniform (in :math:`\varphi`) rule that integrates every spherical
    polynomial of degree ``<= degree`` exactly."""
    n_theta, n_phi = degree // 2 + 1, degree + 1
    nodes, weights = np.polynomial.legendre.leggauss(n_theta)
    theta = torch.from_numpy(np.arccos(nodes))
    phi = torch.arange(n_phi, dtype=torch.float64) * (2 * math.pi / n_phi)
    return theta, phi, torch.from_numpy(weights)[:, None].expand(n_theta, n_phi) * (2 * math.pi / n_phi)


def _grid_harmonics(L: int, theta: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
    """``(n_theta * n_phi, (L+1)^2)`` harmonics on the grid, float64."""
    return spherical_harmonics_on_angles(L, theta[:, None], phi[None, :]).reshape(-1, sh_dim(L))


@lru_cache(maxsize=64)
def _grid_plan(L1: int, L2: int, L_out: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Synthesis matrices of both inputs and the weighted projection, float64 CPU."""
    theta, phi, weights = quadrature_grid(L1 + L2 + L_out)
    projection = (_grid_harmonics(L_out, theta, phi) * weights.reshape(-1, 1)).T.contiguous()
    return _grid_harmonics(L1, theta, phi), _grid_harmonics(L2, theta, phi), projection


@lru_cache(maxsize=64)
def gaunt_coefficients(L1: int, L2: int, L_out: int) -> torch.Tensor:
    r""":math:`G^{l_1 l_2 l_3}_{m_1 m_2 m_3} = \int Y_{l_1 m_1} Y_{l_2 m_2} Y_{l_3 m_3} d\Omega` as a float64
    tensor ``((L1+1)^2, (L2+1)^2, (L_out+1)^2)``, by the exact quadrature of :func:`quadrature_grid`; entries
    that the selection rules set to zero (parity, triangle, m) are exactly zero."""
    b1, b2, projection = _grid_plan(L1, L2, L_out)
    g = torch.einsum("ni,nj,kn->ijk", b1, b2, projection)
    l1, l2, l3 = (torch.repeat_interleave(torch.arange(L + 1), 2 * torch.arange(L + 1) + 1) for L in (L1, L2, L_out))
    allowed = (((l1[:, None, None] + l2[None, :, None] + l3[None, None, :]) % 2 == 0)
               & ((l1[:, None, None] - l2[None, :, None]).abs() <= l3[None, None, :])
               & (l3[None, None, :] <= l1[:, None, None] + l2[None, :, None]))
    g = torch.where(allowed & (g.abs() > 1e-13), g, torch.zeros((), dtype=g.dtype))
    return g


def _torus_coefficients(L: int, extra_sin_power: int = 0) -> torch.Tensor:
    r"""2-D Fourier coefficients of each :math:`Y_{lm}` (times :math:`\sin\theta` if ``extra_sin_power``)
    continued to the torus: complex ``((L+1)^2, n, n)`` with ``n = 2 (L + extra) + 1``, frequencies
    :math:`u` (in :math:`\theta`) and :math:`v` (in :math:`\varphi`) centred (index ``L + extra`` is zero)."""
    degree = L + extra_sin_power
    n = 2 * degree + 1
    angles = torch.arange(n, dtype=torch.float64) * (2 * math.pi / n)
    samples = spherical_harmonics_on_angles(L, angles[:, None], angles[None, :])  # (n, n, (L+1)^2)
    if extra_sin_power:
        samples = samples * torch.sin(angles)[:, None, None] ** extra_sin_power
    coefficients = torch.fft.fft2(samples.permute(2, 0, 1)) / n**2
    return torch.fft.fftshift(coefficients, dim=(-2, -1))


@lru_cache(maxsize=64)
def _fourier_plan(L1: int, L2: int, L_out: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""``T1 ((L1+1)^2, n1*n1)``, ``T2`` (harmonics -> torus Fourier coefficients) and ``K (n*n, (L_out+1)^2)``
    (torus Fourier coefficients of the product, ``n = 2 (L1 + L2) + 1``, -> harmonic coefficients), complex128.

    ``K[(u, v), (l, m)] = int_0^pi int_0^2pi e^{i(u theta + v phi)} Y_lm sin(theta) dphi dtheta``: the
    :math:`\varphi` integral picks ``v = -m'`` terms of :math:`Y_{lm}`'s own expansion, the :math:`\theta` integral
    of :math:`e^{ik\theta}` over :math:`[0, \pi]` is :math:`\pi` (k = 0), 0 (k even) or :math:`2i/k` (k odd).
    """
    t1 = _torus_coefficients(L1).reshape(sh_dim(L1), -1)
    t2 = _torus_coefficients(L2).reshape(sh_dim(L2), -1)
    D = L1 + L2
    y_sin = _torus_coefficients(L_out, extra_sin_power=1)  # (d_out, 2(L_out+1)+1, same): Y_lm sin(theta)
    half = L_out + 1
    k = torch.arange(-D - half, D + half + 1)
    zero = torch.zeros((), dtype=torch.complex128)
    odd = torch.where(k % 2 == 1, 2j / k.to(torch.complex128), zero)
    integral = torch.where(k == 0, torch.tensor(math.pi, dtype=torch.complex128), odd)
    u = torch.arange(-D, D + 1)
    p = torch.arange(-half, half + 1)
    # theta: sum_p c[p] * int e^{i(u + p) theta}; phi: 2 pi * c[.., q] at q = -v.
    theta_part = integral[(u[:, None] + p[None, :]) + D + half]  # (2D+1, 2 half + 1) over (u, p)
    kernel = torch.zeros(2 * D + 1, 2 * D + 1, sh_dim(L_out), dtype=torch.complex128)
    for v in range(-min(D, half), min(D, half) + 1):
        # y_sin[:, p, q] with q = -v (index half - v)
        kernel[:, v + D, :] = 2 * math.pi * theta_part @ y_sin[:, :, half - v].T
    return t1, t2, kernel.reshape(-1, sh_dim(L_out))


# ---------------------------------------------------------------------------------------------- the product
# Plans are built once per sizes (cached) and are constants to torch.compile, not traced (numpy inside).
_gaunt_constant = torch.compiler.assume_constant_result(lambda L1, L2, L_out: gaunt_coefficients(L1, L2, L_out))
_grid_constant = torch.compiler.assume_constant_result(lambda L1, L2, L_out: _grid_plan(L1, L2, L_out))
_fourier_constant = torch.compiler.assume_constant_result(lambda L1, L2, L_out: _fourier_plan(L1, L2, L_out))


def _plan_tensor(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    if t.is_complex():
        dtype = torch.complex128 if like.dtype == torch.float64 else torch.complex64
        return t.to(device=like.device, dtype=dtype)
    return t.to(device=like.device, dtype=like.dtype)


def _dense(x, y, L1, L2, L_out):
    g = _plan_tensor(_gaunt_constant(L1, L2, L_out), x)
    return torch.einsum("...i,...j,ijk->...k", x, y, g)


def sphere_grid_plan(L1: int, L2: int, L_out: int, like: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The grid method's matrices in ``like``'s dtype and device: synthesis ``(G, (L1+1)^2)`` and
    ``(G, (L2+1)^2)`` (coefficients -> values at the ``G`` grid points) and the projection ``((L_out+1)^2, G)``
    (quadrature weights folded in), integral normalisation. For models that sum products on the grid before
    projecting once (a point convolution: the projection is linear)."""
    return tuple(_plan_tensor(t, like) for t in _grid_constant(L1, L2, L_out))


def _grid(x, y, L1, L2, L_out):
    b1, b2, projection = sphere_grid_plan(L1, L2, L_out, x)
    values = (x @ b1.T) * (y @ b2.T)
    return values @ projection.T


def _fourier(x, y, L1, L2, L_out):
    t1, t2, kernel = (_plan_tensor(t, x) for t in _fourier_constant(L1, L2, L_out))
    n1, n2, n = 2 * L1 + 1, 2 * L2 + 1, 2 * (L1 + L2) + 1
    f = (x.to(t1.dtype) @ t1).unflatten(-1, (n1, n1))
    g = (y.to(t2.dtype) @ t2).unflatten(-1, (n2, n2))
    # Linear 2-D convolution of the coefficient arrays by FFT (size n = n1 + n2 - 1: no wrap-around).
    product = torch.fft.ifft2(torch.fft.fft2(f, s=(n, n)) * torch.fft.fft2(g, s=(n, n)))
    return (product.flatten(-2) @ kernel).real


_IMPLEMENTATIONS = {"dense": _dense, "grid": _grid, "fourier": _fourier}


def choose_method(L1: int, L2: int, L_out: int, device: torch.device) -> str:
    """The method ``"auto"`` uses. ``benchmarks/bench_gaunt.py`` on CPU (L = 1..10, 1 and 32 channels) found
    ``"grid"`` the fastest at every size, 1.8-15x ahead of ``"dense"`` and further ahead of ``"fourier"``
    (whose change of basis here is a dense matmul); no GPU has been measured yet, so it is the choice there too."""
    return "grid"


def gaunt_tensor_product(x: torch.Tensor, y: torch.Tensor, L_out: int, *, normalization: str = "integral",
                         method: str = "auto") -> torch.Tensor:
    """Gaunt tensor product of ``x (..., (L1+1)^2)`` and ``y (..., (L2+1)^2)`` (leading dims broadcast):
    ``(..., (L_out+1)^2)``, the coefficients of the point-wise product of the two spherical functions up to degree
    ``L_out`` (module docstring). Any float dtype; any degrees."""
    L1 = degree_of_dim(x.shape[-1], "gaunt_tensor_product", "x")
    L2 = degree_of_dim(y.shape[-1], "gaunt_tensor_product", "y")
    if isinstance(L_out, bool) or not isinstance(L_out, int) or L_out < 0:
        raise ValueError(f"gaunt_tensor_product: L_out={L_out!r} must be an int >= 0")
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"gaunt_tensor_product: normalization={normalization!r}; valid: {', '.join(NORMALIZATIONS)}")
    if method not in METHODS:
        raise ValueError(f"gaunt_tensor_product: method={method!r}; valid: {', '.join(METHODS)}")
    if not (x.is_floating_point() and y.is_floating_point()):
        raise ValueError(f"gaunt_tensor_product: x and y must be floating point, got {x.dtype} and {y.dtype}")
    dtype = torch.promote_types(x.dtype, y.dtype)
    x, y = x.to(dtype), y.to(dtype)
    if method == "auto":
        method = choose_method(L1, L2, L_out, x.device)
    out = _IMPLEMENTATIONS[method](x, y, L1, L2, L_out)
    return out * math.sqrt(4 * math.pi) if normalization == "component" else out
