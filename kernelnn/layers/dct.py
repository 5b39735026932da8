"""The orthonormal discrete cosine transform (DCT-II) and its inverse (DCT-III) over the last dims, through one FFT
each (Makhoul 1980), differentiable and on any device. Equal to ``scipy.fft.dctn(x, type=2, norm="ortho")`` and
``idctn``; torch has no DCT of its own.
"""

from __future__ import annotations

import math

import torch


def _dct(x: torch.Tensor) -> torch.Tensor:
    """Orthonormal DCT-II along the last dim."""
    n = x.shape[-1]
    v = torch.cat([x[..., ::2], x[..., 1::2].flip(-1)], dim=-1)
    k = torch.arange(n, device=x.device, dtype=x.dtype)
    twiddle = torch.polar(torch.ones_like(k), -math.pi * k / (2 * n))
    y = 2 * (torch.fft.fft(v, dim=-1) * twiddle).real  # 2 sum_n x_n cos(pi k (2n + 1) / 2N)
    scale = torch.full_like(k, math.sqrt(1 / (2 * n)))
    scale[0] = math.sqrt(1 / (4 * n))
    return y * scale


def _idct(y: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`_dct` along the last dim (the orthonormal DCT-III)."""
    n = y.shape[-1]
    k = torch.arange(n, device=y.device, dtype=y.dtype)
    scale = torch.full_like(k, math.sqrt(2 * n))
    scale[0] = math.sqrt(4 * n)
    u = y * scale  # back to the unnormalised DCT-II
    u_rev = torch.cat([torch.zeros_like(u[..., :1]), u[..., 1:].flip(-1)], dim=-1)  # u_{N-k}, u_N = 0
    twiddle = torch.polar(torch.ones_like(k), math.pi * k / (2 * n))
    v = torch.fft.ifft(torch.complex(u, -u_rev) * twiddle / 2, dim=-1).real
    half = (n + 1) // 2
    x = torch.empty_like(v)
    x[..., ::2] = v[..., :half]
    x[..., 1::2] = v[..., half:].flip(-1)
    return x


def dctn(x: torch.Tensor, dims: int) -> torch.Tensor:
    """Orthonormal DCT-II over the last ``dims`` dims of a real tensor."""
    for d in range(1, dims + 1):
        x = _dct(x.movedim(-d, -1)).movedim(-1, -d)
    return x


def idctn(y: torch.Tensor, dims: int) -> torch.Tensor:
    """Inverse of :func:`dctn` (orthonormal DCT-III over the last ``dims`` dims)."""
    for d in range(1, dims + 1):
        y = _idct(y.movedim(-d, -1)).movedim(-1, -d)
    return y
