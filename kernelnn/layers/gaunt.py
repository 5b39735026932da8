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

Four methods compute the same numbers:

* ``"dense"``: contraction with :math:`G` (the reference; :math:`O(L^6)` per product);
* ``"grid"``: both functions evaluated on a Gauss-Legendre x uniform grid just fine enough for the degree-
  :math:`(L_1 + L_2 + L_{out})` integrand to be integrated exactly, multiplied point-wise and projected back by
  that quadrature, each transform one dense matrix (:math:`O(L^4)` per product);
* ``"sht"``: the same grid and quadrature with separable transforms, :math:`O(L^3)`: a real harmonic is
  :math:`Y_{l,\pm k}(\theta, \varphi) = \Lambda_{lk}(\theta)\, \{\cos, \sin\}(k\varphi)` (with
  :math:`\Lambda_{lk}(\theta) = Y_{lk}(\theta, 0)`, the normalised associated Legendre function), so synthesis
  is one Legendre sum per order :math:`k` and ring (:math:`O(L^3)`) followed by one sum over orders per grid point
  (:math:`O(L^3)`), and the projection is the same two steps transposed, with the quadrature weights;
* ``"fourier"``: Luo et al.'s route: harmonics -> 2-D Fourier coefficients in :math:`(\theta, \varphi)` (each
  :math:`Y_{lm}` continued to :math:`\theta \in [0, 2\pi)` is a trigonometric polynomial of degree :math:`l`),
  the product as a 2-D convolution by FFT, and an exact projection back to harmonics. Both changes of basis are
  block-sparse: :math:`Y_{l,\pm k}` has :math:`\varphi`-frequencies :math:`\pm k` only, so each order
  :math:`k` is one small matrix (:math:`O(L^3)` per product in all, :math:`O(L^2 \log L)` for the FFTs).

All four are exact up to floating-point rounding (tested to 1e-10 relative in float64).
``normalization="component"`` takes and returns coefficients of the harmonics times :math:`\sqrt{4\pi}` (e3nn's
default for layers): the product's coefficients in that basis are :math:`\sqrt{4\pi}` times the integral-basis
formula applied to the same numbers.
"""

from __future__ import annotations

import contextlib
import functools
import math

import numpy as np
import torch

from kernelnn.layers.spherical_harmonics import (
    NORMALIZATIONS,
    degree_of_dim,
    degrees_of,
    sh_dim,
    spherical_harmonics_on_angles,
)

METHODS = ("auto", "dense", "grid", "sht", "fourier")


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


def _plan_cache(fn):
    """``functools.lru_cache`` for the plans, computed as real tensors even inside a trace with fake tensors
    (``torch.export``'s non-strict tracing runs this Python code under a fake-tensor mode): a first call there would
    otherwise cache fake tensors that every later eager call returns."""
    cached = functools.lru_cache(maxsize=64)(fn)

    @functools.wraps(fn)
    def plan(*args):
        with _real_tensors():
            return cached(*args)

    plan.cache_info, plan.cache_clear = cached.cache_info, cached.cache_clear
    return plan


def _real_tensors():
    from torch._subclasses import fake_tensor  # private, stable since torch 2.1; nothing to undo without it

    unset = getattr(fake_tensor, "unset_fake_temporarily", None)
    return unset() if unset is not None else contextlib.nullcontext()


def _grid_harmonics(L: int, theta: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
    """``(n_theta * n_phi, (L+1)^2)`` harmonics on the grid, float64."""
    return spherical_harmonics_on_angles(L, theta[:, None], phi[None, :]).reshape(-1, sh_dim(L))


@_plan_cache
def _grid_plan(L1: int, L2: int, L_out: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Synthesis matrices of both inputs and the weighted projection, float64 CPU."""
    theta, phi, weights = quadrature_grid(L1 + L2 + L_out)
    projection = (_grid_harmonics(L_out, theta, phi) * weights.reshape(-1, 1)).T.contiguous()
    return _grid_harmonics(L1, theta, phi), _grid_harmonics(L2, theta, phi), projection


@_plan_cache
def _separable_plan(L1: int, L2: int, L_out: int) -> tuple[torch.Tensor, ...]:
    r"""The ``"sht"`` method's tables (float64 / long, CPU). Per degree ``L`` in ``(L1, L2, L_out)``: the gather of
    coefficients into ``(order k, l, cos | sin)`` slots (a zero pad where there is none) and its inverse, and the
    Legendre table ``(k, ring, l)`` (:math:`\Lambda_{lk}(\theta_t)`, zero for ``l < k``; for ``L_out`` times the
    ring's quadrature weight); then the azimuthal tables ``(n_phi, 2 (L+1))`` of the inputs (columns ``(k, cos |
    sin)``) and the transposed one of the output."""
    theta, phi, weights = quadrature_grid(L1 + L2 + L_out)
    tables = []
    for L, weighted in ((L1, False), (L2, False), (L_out, True)):
        blocks, _ = _order_blocks(L)  # (k, sign, l) -> coefficient index, (L+1)^2 where none
        slots = blocks.permute(0, 2, 1).reshape(-1)  # (k, l, sign) order: batch-last matmuls need no permutes
        where = torch.empty(sh_dim(L), dtype=torch.long)
        present = slots < sh_dim(L)
        where[slots[present]] = torch.arange(slots.numel())[present]
        on_meridian = spherical_harmonics_on_angles(L, theta, torch.zeros_like(theta))  # (rings, (L+1)^2)
        legendre = torch.zeros(L + 1, theta.shape[0], L + 1, dtype=torch.float64)
        for k in range(L + 1):
            for l in range(k, L + 1):
                legendre[k, :, l] = on_meridian[:, l * l + l + k]
        if weighted:
            legendre = legendre * weights[:, 0][None, :, None]  # uniform in phi: one weight per ring and point
        tables += [slots, where, legendre.contiguous()]
    for L in (L1, L2, L_out):
        k = torch.arange(L + 1, dtype=torch.float64)
        azimuthal = torch.stack([torch.cos(phi[:, None] * k), torch.sin(phi[:, None] * k)], -1)  # (n_phi, k, 2)
        tables.append(azimuthal.reshape(phi.shape[0], 2 * (L + 1)).contiguous())
    return tuple(tables)


@_plan_cache
def gaunt_coefficients(L1: int, L2: int, L_out: int) -> torch.Tensor:
    r""":math:`G^{l_1 l_2 l_3}_{m_1 m_2 m_3} = \int Y_{l_1 m_1} Y_{l_2 m_2} Y_{l_3 m_3} d\Omega` as a float64
    tensor ``((L1+1)^2, (L2+1)^2, (L_out+1)^2)``, by the exact quadrature of :func:`quadrature_grid`; entries
    that the selection rules set to zero (parity, triangle, m) are exactly zero."""
    b1, b2, projection = _grid_plan(L1, L2, L_out)
    g = torch.einsum("ni,nj,kn->ijk", b1, b2, projection)
    l1, l2, l3 = (degrees_of(L) for L in (L1, L2, L_out))
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


def _dense_fourier_plan(L1: int, L2: int, L_out: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""``T1 ((L1+1)^2, n1, n1)``, ``T2`` (harmonics -> torus Fourier coefficients) and ``K (n, n, (L_out+1)^2)``
    (torus Fourier coefficients of the product, ``n = 2 (L1 + L2) + 1``, -> harmonic coefficients), complex128.

    ``K[(u, v), (l, m)] = int_0^pi int_0^2pi e^{i(u theta + v phi)} Y_lm sin(theta) dphi dtheta``: the
    :math:`\varphi` integral picks ``v = -m'`` terms of :math:`Y_{lm}`'s own expansion, the :math:`\theta` integral
    of :math:`e^{ik\theta}` over :math:`[0, \pi]` is :math:`\pi` (k = 0), 0 (k even) or :math:`2i/k` (k odd).
    """
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
    return _torus_coefficients(L1), _torus_coefficients(L2), kernel


def _order_blocks(L: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Coefficient index of each (k = |m|, sign, l) slot, ``(L+1, 2, L+1)`` (``(L+1)^2`` = a zero pad where no
    coefficient exists: l < k, or sign 1 at k = 0), and for each coefficient its slot in that array, flattened."""
    slots = torch.full((L + 1, 2, L + 1), sh_dim(L))
    where = torch.empty(sh_dim(L), dtype=torch.long)
    for k in range(L + 1):
        for sign, m in ((0, k), (1, -k)):
            if k == 0 and sign == 1:
                continue
            for l in range(k, L + 1):
                slots[k, sign, l] = l * l + l + m
                where[l * l + l + m] = (k * 2 + sign) * (L + 1) + l
    return slots, where


def _analysis_plan(L: int, D: int, torus: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Block-sparse harmonics -> half spectrum of the torus coefficients, in FFT order for size ``n = 2D + 1``.

    :math:`Y_{l,\pm k}` has :math:`\varphi`-frequencies :math:`\pm k` only, and a real function's coefficients
    satisfy :math:`c_{-u,-v} = \bar c_{u,v}`, so column ``v = k >= 0`` of the array is all that is needed, and it
    comes from order ``k``'s ``2(L+1-k)`` coefficients alone: one ``(2(L+1), 2n)`` real matrix (to the column's
    re and im parts) per ``k``, :math:`O(L^3)` per product instead of a dense :math:`O(L^4)` change of basis.
    Returns the gather of ``x`` (zero-padded) into (k, sign, l) slots and the blocks ``(L+1, 2(L+1), 2n)``."""
    n_L, K, n = 2 * L + 1, L + 1, 2 * D + 1
    slots, _ = _order_blocks(L)
    padded = torch.cat([torus, torch.zeros(1, n_L, n_L, dtype=torus.dtype)])  # the zero pad coefficient
    blocks = torch.stack([padded[slots[k]][..., L + k] for k in range(K)])  # (K, 2 sign, L+1, n_L): column v = k
    u = torch.arange(-L, L + 1) % n  # FFT index of each frequency
    placed = torch.zeros(K, 2, L + 1, n, dtype=blocks.dtype)
    placed[..., u] = blocks
    matrix = torch.cat([placed.real, placed.imag], -1).reshape(K, 2 * (L + 1), 2 * n)
    return slots.reshape(-1), matrix.contiguous()


def _synthesis_plan(L1: int, L2: int, L_out: int, kernel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Half spectrum ``(n, D+1)`` of the product (FFT order) -> harmonics up to ``L_out``. Column ``-k`` is the
    conjugate of column ``k`` mirrored in ``u``, so :math:`\mathrm{Re}\sum_u (P_{u,k} K_{u,k} + P_{u,-k}
    K_{u,-k}) = \mathrm{Re}\sum_u P_{u,k} (K_{u,k} + \bar K_{-u,-k})`: one ``(2n, 2(L_out+1))`` real matrix
    per order ``k <= min(D, L_out)``. Returns the blocks and, per output coefficient, its place in their output
    (one zero slot at the end for orders above ``D``)."""
    D = L1 + L2
    n, K = 2 * D + 1, min(D, L_out) + 1
    slots, where = _order_blocks(L_out)
    padded = torch.cat([kernel, torch.zeros(n, n, 1, dtype=kernel.dtype)], -1)  # centred (u, v) + zero coefficient
    u = torch.arange(n)
    u = torch.where(u <= D, u, u - n)  # FFT index -> signed frequency
    blocks = []
    for k in range(K):
        block = padded[u + D, D + k]  # (n, coefficients)
        if k > 0:
            block = block + padded[-u + D, D - k].conj()
        blocks.append(block[:, slots[k]])  # (n, 2 sign, L_out+1)
    blocks = torch.stack(blocks)
    # Re(P K) = P_re K_re - P_im K_im: stack [K_re; -K_im] against [P_re; P_im].
    matrix = torch.stack([blocks.real, -blocks.imag], 1).reshape(K, 2 * n, 2 * (L_out + 1))
    k_of = torch.div(where, 2 * (L_out + 1), rounding_mode="floor")
    return matrix.contiguous(), torch.where(k_of < K, where, K * 2 * (L_out + 1))


@_plan_cache
def _fourier_plan(L1: int, L2: int, L_out: int) -> tuple[torch.Tensor, ...]:
    """Both analysis plans and the synthesis plan (float64 / long, CPU)."""
    t1, t2, kernel = _dense_fourier_plan(L1, L2, L_out)
    D = L1 + L2
    return (*_analysis_plan(L1, D, t1), *_analysis_plan(L2, D, t2), *_synthesis_plan(L1, L2, L_out, kernel))


# ---------------------------------------------------------------------------------------------- the product
def _assume_constant_result(fn):
    """``torch.compiler.assume_constant_result(fn)`` without importing ``torch._dynamo`` (about a second) when
    kernelnn is imported: that decorator does nothing but set this attribute, which dynamo reads when it meets
    ``fn`` (tests/test_import_time.py checks that it still does; tests/layers/test_gaunt.py compiles the product
    with fullgraph=True)."""
    fn._dynamo_marked_constant = True
    return fn


# Plans are built once per sizes (cached) and are constants to torch.compile, not traced (numpy inside).
_gaunt_constant = _assume_constant_result(lambda L1, L2, L_out: gaunt_coefficients(L1, L2, L_out))
_grid_constant = _assume_constant_result(lambda L1, L2, L_out: _grid_plan(L1, L2, L_out))
_fourier_constant = _assume_constant_result(lambda L1, L2, L_out: _fourier_plan(L1, L2, L_out))
_separable_constant = _assume_constant_result(lambda L1, L2, L_out: _separable_plan(L1, L2, L_out))


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


def _sht(x, y, L1, L2, L_out):
    """Batch-last throughout: every step is a matrix product with the batch as its long dimension (module
    docstring, "sht")."""
    (slots1, _, legendre1, slots2, _, legendre2, _, where, legendre_out, azimuthal1, azimuthal2,
     azimuthal_out) = (u.to(x.device) if not u.is_floating_point() else _plan_tensor(u, x)
                       for u in _separable_constant(L1, L2, L_out))
    lead = torch.broadcast_shapes(x.shape[:-1], y.shape[:-1])
    x, y = x.expand(*lead, x.shape[-1]).reshape(-1, x.shape[-1]), y.expand(*lead, y.shape[-1]).reshape(-1, y.shape[-1])
    batch = x.shape[0]

    def synthesis(c, L, slots, legendre, azimuthal):
        # index_select, not advanced indexing: its backward is an index_add, much cheaper on CPU than index_put.
        c = torch.nn.functional.pad(c, (0, 1)).index_select(-1, slots)  # (B, (k, l, sign))
        c = c.T.reshape(L + 1, L + 1, 2 * batch)
        rings = torch.bmm(legendre, c)  # (k, ring, (sign, B)): the Legendre sum per order
        rings = rings.unflatten(-1, (2, batch)).transpose(0, 1).reshape(-1, 2 * (L + 1), batch)
        return azimuthal @ rings  # (ring, n_phi, B): the sum over orders per grid point

    values = synthesis(x, L1, slots1, legendre1, azimuthal1) * synthesis(y, L2, slots2, legendre2, azimuthal2)
    rings = azimuthal_out.T @ values  # (ring, (k, sign), B)
    K = L_out + 1
    rings = rings.unflatten(1, (K, 2)).transpose(0, 1).reshape(K, -1, 2 * batch)  # (k, ring, (sign, B))
    coefficients = torch.bmm(legendre_out.transpose(1, 2), rings)  # (k, l, (sign, B))
    coefficients = coefficients.reshape(-1, batch).T  # (B, (k, l, sign))
    out = torch.nn.functional.pad(coefficients, (0, 1)).index_select(-1, where)
    return out.reshape(*lead, out.shape[-1])


def _half_spectrum(x: torch.Tensor, L: int, D: int, slots, matrix) -> torch.Tensor:
    """``(..., n, D+1)`` complex: the FFT-ordered half spectrum of ``x``'s function continued to the torus."""
    # index_select, not advanced indexing: its backward is an index_add, much cheaper on CPU than index_put.
    gathered = torch.nn.functional.pad(x, (0, 1)).index_select(-1, slots).unflatten(-1, (L + 1, 2 * (L + 1)))
    columns = torch.einsum("...ka,kab->...kb", gathered, matrix)  # (..., L+1 columns, re | im)
    n = 2 * D + 1
    half = torch.complex(columns[..., :n], columns[..., n:]).transpose(-1, -2)  # (..., n, L+1)
    return torch.nn.functional.pad(half, (0, D - L))


def _fourier(x, y, L1, L2, L_out):
    slots1, a1, slots2, a2, synthesis, where = (
        t.to(x.device) if not t.is_floating_point() else _plan_tensor(t, x) for t in _fourier_constant(L1, L2, L_out))
    D = L1 + L2
    n = 2 * D + 1
    f = _half_spectrum(x, L1, D, slots1, a1)
    g = _half_spectrum(y, L2, D, slots2, a2)
    # The product's coefficients are the 2-D linear convolution of f and g (size n = n1 + n2 - 1: no wrap-
    # around): multiply the real torus functions' values on the n x n grid (real FFTs of the half spectra).
    values = torch.fft.irfft2(f, s=(n, n)) * torch.fft.irfft2(g, s=(n, n))
    product = torch.fft.rfft2(values) * n**2  # (..., n, D+1)
    K = synthesis.shape[0]
    picked = product[..., :K].transpose(-1, -2)  # (..., K, n)
    stacked = torch.cat([picked.real, picked.imag], -1)  # (..., K, 2n)
    z = torch.einsum("...kb,kba->...ka", stacked, synthesis).flatten(-2)
    return torch.nn.functional.pad(z, (0, 1)).index_select(-1, where)


_IMPLEMENTATIONS = {"dense": _dense, "grid": _grid, "sht": _sht, "fourier": _fourier}


def choose_method(L1: int, L2: int, L_out: int, device: torch.device) -> str:
    """The method ``"auto"`` uses. ``benchmarks/bench_gaunt.py`` on CPU (L = 1..10, 1 and 32 channels, two runs)
    found ``"grid"`` the fastest at every size there, 1.7-15x ahead of ``"dense"`` and further ahead of
    ``"fourier"`` (whose FFTs of (4L+1)^2 complex arrays dominate). Its dense transforms cost O(L^4); the separable
    ``"sht"`` (O(L^3)) overtakes it at high degree (batch 1024, L = 8..32: from L = 12 with 1 channel, between
    L = 24 and 32 with 32 channels, 1.8x ahead at L = 32): ``"sht"`` from degree 28. No GPU has been measured
    yet, so the same rule holds there."""
    return "sht" if max(L1, L2, L_out) >= 28 else "grid"


def gaunt_tensor_product(x: torch.Tensor, y: torch.Tensor, L_out: int, *, normalization: str = "integral",
                         method: str = "auto") -> torch.Tensor:
    """Gaunt tensor product of ``x (..., (L1+1)^2)`` and ``y (..., (L2+1)^2)`` (leading dims broadcast):
    ``(..., (L_out+1)^2)``, the coefficients of the point-wise product of the two spherical functions up to degree
    ``L_out`` (module docstring). Any float dtype (the ``"fourier"`` method computes float16 / bfloat16 in
    float32, MKL's FFT having no half types, and returns the input dtype); any degrees."""
    for name, t in (("x", x), ("y", y)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"gaunt_tensor_product: {name} must be a torch.Tensor, got {type(t).__name__}")
        if not t.is_floating_point():  # a wrong dtype is a TypeError, as for every layer
            raise TypeError(f"gaunt_tensor_product: {name} must be floating point (float16, bfloat16, float32, "
                            f"float64), got {t.dtype}")
        if t.dim() < 1:
            raise ValueError(f"gaunt_tensor_product: {name} must have shape (..., (L+1)^2), got a 0-d tensor")
    L1 = degree_of_dim(x.shape[-1], "gaunt_tensor_product", "x")
    L2 = degree_of_dim(y.shape[-1], "gaunt_tensor_product", "y")
    if isinstance(L_out, bool) or not isinstance(L_out, int) or L_out < 0:
        raise ValueError(f"gaunt_tensor_product: L_out={L_out!r} must be an int >= 0")
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"gaunt_tensor_product: normalization={normalization!r}; valid: {', '.join(NORMALIZATIONS)}")
    if method not in METHODS:
        raise ValueError(f"gaunt_tensor_product: method={method!r}; valid: {', '.join(METHODS)}")
    try:
        lead = torch.broadcast_shapes(x.shape[:-1], y.shape[:-1])
    except RuntimeError:
        raise ValueError(f"gaunt_tensor_product: the leading dims of x {tuple(x.shape[:-1])} and y "
                         f"{tuple(y.shape[:-1])} do not broadcast") from None
    dtype = torch.promote_types(x.dtype, y.dtype)
    if math.prod(lead) == 0:  # MKL's FFT refuses empty arrays; every method returns this
        return x.new_zeros(*lead, (L_out + 1) ** 2, dtype=dtype)
    if method == "auto":
        method = choose_method(L1, L2, L_out, x.device)
    compute = torch.float32 if method == "fourier" and dtype in (torch.float16, torch.bfloat16) else dtype
    x, y = x.to(compute), y.to(compute)
    out = _IMPLEMENTATIONS[method](x, y, L1, L2, L_out).to(dtype)
    return out * math.sqrt(4 * math.pi) if normalization == "component" else out
