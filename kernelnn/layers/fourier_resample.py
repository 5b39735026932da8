r"""Fourier (band-limited) resampling of periodic grids: the resolution change of a neural operator.

A field on an ``n``-point grid is read as the trigonometric polynomial through its samples; resampling it to
``n'`` points evaluates that polynomial on the new grid after keeping the frequencies both grids hold,
``|k| < ceil(min(n, n') / 2)`` per axis (the Nyquist frequency of an even grid is dropped: it is not a real
function's coefficient on the other grid). Downsampling is therefore an ideal low-pass filter, upsampling is exact
for band-limited fields, and a field sampled at any resolution maps to the same coarse grid up to the aliasing of
its frequencies above the coarse band. This is what Berner, Liu-Schiaffini, Kossaifi et al. (2025, "Principled
approaches for extending neural architectures to function spaces") put in place of pooling and strided
convolution, and of interpolation in the decoder.

Grids are kernelnn's: points ``i / n`` of a unit-period axis. The spectrum is normalised by ``1 / n``
(``norm="forward"``), so coefficients, and with them the resampled values, do not depend on ``n``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from kernelnn.layers.input_checks import check_float_tensor, check_positive_ints


def _kept(n_in: int, n_out: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of the frequencies ``|k| < ceil(min / 2)`` in an ``n_in``- and an ``n_out``-point FFT."""
    m = (min(n_in, n_out) + 1) // 2
    k = torch.cat([torch.arange(m, device=device), torch.arange(-(m - 1), 0, device=device)])
    return k % n_in, k % n_out


def fourier_resample(x: torch.Tensor, size: Sequence[int] | int) -> torch.Tensor:
    """Resample the last ``len(size)`` axes of ``x`` to ``size`` points each by Fourier interpolation.

    Parameters
    ----------
    x : torch.Tensor
        ``(..., *spatial)`` real floating-point values on periodic grids (points ``i / n``).
    size : int or sequence of int
        Points per axis of the new grid (an int: the last axis only).

    Returns
    -------
    torch.Tensor
        ``(..., *size)`` in ``x``'s dtype (the FFTs run in float32 at least, so it works under autocast). An axis
        whose size does not change is returned as it was, not filtered.
    """
    check_float_tensor(x, "fourier_resample", "x")
    size = [size] if isinstance(size, int) else list(size)
    check_positive_ints("fourier_resample", **{f"size[{i}]": n for i, n in enumerate(size)})
    d = len(size)
    if x.dim() < d:
        raise ValueError(f"fourier_resample: x has {x.dim()} axes, fewer than the {d} of size={size}")
    spatial = list(x.shape[x.dim() - d:])
    if spatial == size:
        return x
    if x.numel() == 0:  # MKL's FFT refuses empty batches ("Inconsistent configuration parameters")
        return x.new_zeros(*x.shape[:x.dim() - d], *size)
    dtype = x.dtype
    with torch.autocast(x.device.type, enabled=False):
        x = x.float() if dtype in (torch.float16, torch.bfloat16) else x
        dims = list(range(-d, 0))
        spectrum = torch.fft.rfftn(x, dim=dims, norm="forward")
        for axis, (n_in, n_out) in enumerate(zip(spatial, size, strict=True)):
            if n_in == n_out:
                continue
            ax = axis - d
            if axis == d - 1:  # the real FFT's half axis: frequencies 0 .. m - 1
                m = (min(n_in, n_out) + 1) // 2
                idx_in = idx_out = torch.arange(m, device=x.device)
                n_out = n_out // 2 + 1
            else:
                idx_in, idx_out = _kept(n_in, n_out, x.device)
            kept = spectrum.index_select(ax, idx_in)
            shape = list(kept.shape)
            shape[ax] = n_out
            spectrum = kept.new_zeros(shape).index_copy(ax, idx_out, kept)
        out = torch.fft.irfftn(spectrum, s=size, dim=dims, norm="forward")
    return out.to(dtype)
