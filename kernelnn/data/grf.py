"""Gaussian random fields, the random inputs of the FNO paper's PDE benchmarks."""

from __future__ import annotations

import math

import torch


def periodic_grf(
    n: int, size: int, dim: int, alpha: float, tau: float, sigma: float, generator: torch.Generator,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    r"""Samples of :math:`N(0, \sigma^2 (-\Delta + \tau^2 I)^{-\alpha})` on the torus ``[0, 1)^dim``, zero mean.

    Drawn in Fourier space: each real Fourier mode :math:`k \neq 0` gets an independent normal coefficient of
    variance :math:`\sigma^2 (4\pi^2 |k|^2 + \tau^2)^{-\alpha}` on an orthonormal basis. Returns
    ``(n, *[size] * dim)`` on the uniform grid ``x_i = i / size``.
    """
    freqs = [torch.fft.fftfreq(size, 1.0 / size, dtype=dtype)] * (dim - 1) + [
        torch.fft.rfftfreq(size, 1.0 / size, dtype=dtype)
    ]
    k2 = sum(f**2 for f in torch.meshgrid(*freqs, indexing="ij"))
    sqrt_eig = sigma * (4 * math.pi**2 * k2 + tau**2) ** (-alpha / 2)
    sqrt_eig.view(-1)[0] = 0.0  # zero mean
    shape = (n, *sqrt_eig.shape)
    noise = torch.complex(
        torch.randn(shape, generator=generator, dtype=dtype), torch.randn(shape, generator=generator, dtype=dtype)
    )
    # With norm="forward", u = sum_k c_k e^{2 pi i k x}; a real orthonormal mode pair (sqrt2 cos, sqrt2 sin)
    # with N(0, lam) coefficients needs c_k = sqrt(lam) (a - i b) / sqrt(2); irfftn keeps the real part.
    coeffs = sqrt_eig * noise / math.sqrt(2)
    return torch.fft.irfftn(coeffs, s=(size,) * dim, dim=tuple(range(1, dim + 1)), norm="forward")


def neumann_grf_2d(
    n: int, points: torch.Tensor, alpha: float, tau: float, n_terms: int, generator: torch.Generator
) -> torch.Tensor:
    r"""Samples of :math:`N(0, (-\Delta + \tau^2 I)^{-\alpha})` on ``[0, 1]^2`` with Neumann boundary.

    Cosine series :math:`\sum_{k_1,k_2 < n\_terms} \tau^{\alpha-1}(\pi^2|k|^2+\tau^2)^{-\alpha/2} \xi_k
    \cos(\pi k_1 x)\cos(\pi k_2 y)` without the constant term, as the FNO paper's Darcy generator. A fixed
    ``n_terms`` makes the field the same function at every resolution; ``points`` are the 1-D grid
    coordinates in ``[0, 1]``. Returns ``(n, len(points), len(points))``.
    """
    k = torch.arange(n_terms, dtype=points.dtype)
    k1, k2 = torch.meshgrid(k, k, indexing="ij")
    coef = tau ** (alpha - 1) * (math.pi**2 * (k1**2 + k2**2) + tau**2) ** (-alpha / 2)
    coef[0, 0] = 0.0
    xi = torch.randn(n, n_terms, n_terms, generator=generator, dtype=points.dtype)
    basis = torch.cos(math.pi * points[:, None] * k[None, :])  # (N, K)
    return torch.einsum("ik,nkl,jl->nij", basis, coef * xi, basis)
