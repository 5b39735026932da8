r"""Weighted :math:`L^q` distances between every filter and every patch, in bounded memory.

:math:`d[b, o, l] = \sum_i u[o, i]\, |p[b, i, l] - w[o, i]|^q` has no matmul form for :math:`q \ne 2`, so it
is computed by broadcasting, in blocks of samples and output channels of about ``chunk_elements`` elements,
extracting each block's patches on the fly. :class:`LpDistance` saves only the input, the filters and the
weights for backward (not the ``kernel_size^d`` times larger patches) and rebuilds each block in backward, so
memory stays bounded whatever the batch and layer size. Patches come from a differentiable
extraction (padding, then strided windows); backward maps patch gradients back to the input through it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.autograd.function import once_differentiable

from kernelnn.layers.lp_distance_triton import lp_distance_triton, triton_usable

CHUNK_ELEMENTS = 2**22  # elements of one broadcast (batch, chunk, taps, positions) block: 16 MiB in float32


def _blocks(n: int, n_out: int, per_sample_channel: int, chunk_elements: int) -> list[tuple[slice, list[slice]]]:
    """(sample slice, output-channel slices) blocks whose broadcasts hold about ``chunk_elements`` elements."""
    per_sample = n_out * per_sample_channel
    if per_sample <= chunk_elements:  # whole channel range, several samples per block
        step = max(1, chunk_elements // per_sample)
        return [(slice(b, min(b + step, n)), [slice(0, n_out)]) for b in range(0, n, step)]
    width = max(1, chunk_elements // per_sample_channel)  # one sample per block, channels in chunks
    channels = [slice(o, min(o + width, n_out)) for o in range(0, n_out, width)]
    return [(slice(b, b + 1), channels) for b in range(n)]


def _power(diff: torch.Tensor, q: float) -> torch.Tensor:
    return diff.abs() if q == 1 else diff.abs().pow(q)


def _power_grad(diff: torch.Tensor, q: float) -> torch.Tensor:
    """d|t|^q / dt."""
    return diff.sign() if q == 1 else q * diff.abs().pow(q - 1) * diff.sign()


def _diff(patches: torch.Tensor, weight: torch.Tensor, part: slice) -> torch.Tensor:
    """``p - w`` for a channel chunk: (n, g, 1, I, L) - (1, g, c, I, 1) -> (n, g, c, I, L)."""
    return patches.unsqueeze(2) - weight[:, part].unsqueeze(0).unsqueeze(-1)


class LpDistance(torch.autograd.Function):
    """``d = sum_i u |patches(x) - w|^q`` for grouped filters; see :func:`lp_distance`."""

    @staticmethod
    def forward(ctx, x, weight, taps, extract, length, q, chunk_elements):
        g, o, i = weight.shape
        out = x.new_empty(x.shape[0], g, o, length)
        for samples, channels in _blocks(x.shape[0], o, g * i * length, chunk_elements):
            patches = extract(x[samples])  # (n_b, g, I, L): patches of this block's samples only
            for part in channels:
                weighted = taps[:, part].unsqueeze(0).unsqueeze(-1) * _power(_diff(patches, weight, part), q)
                out[samples, :, part] = weighted.sum(dim=3)
        ctx.save_for_backward(x, weight, taps)
        ctx.extract, ctx.q, ctx.chunk_elements = extract, q, chunk_elements
        return out.flatten(1, 2)

    @staticmethod
    @once_differentiable  # its gradients are computed, not traced: a second derivative is refused, not wrong
    def backward(ctx, grad_out):
        x, weight, taps = ctx.saved_tensors
        q, extract = ctx.q, ctx.extract
        g, o, i = weight.shape
        need_x, need_w, need_u = ctx.needs_input_grad[:3]
        grad_x = torch.zeros_like(x) if need_x else None
        grad_weight = torch.zeros_like(weight) if need_w else None
        grad_taps = torch.zeros_like(taps) if need_u else None
        grad_out = grad_out.unflatten(1, (g, o))
        length = grad_out.shape[-1]
        for samples, channels in _blocks(x.shape[0], o, g * i * length, ctx.chunk_elements):
            with torch.enable_grad():
                x_block = x[samples].detach().requires_grad_(need_x)
                patches = extract(x_block)
            grad_patches = torch.zeros_like(patches) if need_x else None
            p = patches.detach()
            for part in channels:
                diff = _diff(p, weight, part)
                g_out = grad_out[samples, :, part].unsqueeze(3)  # (n_b, g, c, 1, L)
                if need_u:
                    grad_taps[:, part] += (g_out * _power(diff, q)).sum(dim=(0, 4))
                if need_x or need_w:
                    local = g_out * taps[:, part].unsqueeze(0).unsqueeze(-1) * _power_grad(diff, q)
                    if need_x:
                        grad_patches += local.sum(dim=2)
                    if need_w:
                        grad_weight[:, part] -= local.sum(dim=(0, 4))
            if need_x:
                (grad_block,) = torch.autograd.grad(patches, x_block, grad_patches)
                grad_x[samples] = grad_block
        return grad_x, grad_weight, grad_taps, None, None, None, None


BACKENDS = ("auto", "torch", "compiled", "triton")
# "auto" compiles fused CPU kernels from this much work (batch x filters x taps x positions) up: below it the
# one-off compilation (seconds per shape) costs more than it saves.
COMPILE_FROM = 2**24


def lp_distance(x: torch.Tensor, weight: torch.Tensor, taps: torch.Tensor,
                extract: Callable[[torch.Tensor], torch.Tensor], positions: int, q: float = 1.0,
                chunk_elements: int = CHUNK_ELEMENTS, backend: str = "auto") -> torch.Tensor:
    """Weighted :math:`L^q` distance of every filter to every patch, ``(batch, groups * O_g, positions)``.

    ``x`` is the layer input; ``extract(x)`` returns its patches ``(batch, groups, I, positions)`` (``I`` taps
    per group); ``weight`` and ``taps`` are ``(groups, O_g, I)``: the filters ``w`` and positive weights ``u``.
    ``backend``: ``"torch"`` (chunked broadcasting, any device), ``"compiled"`` (fused kernels generated by
    ``torch.compile``, :mod:`kernelnn.layers.lp_distance_compiled`), ``"triton"`` (the hand-written fused kernels
    of :mod:`kernelnn.layers.lp_distance_triton`) or ``"auto"``: Triton on CUDA when installed; on CPU the
    compiled kernels for work of at least ``COMPILE_FROM`` (when a C++ compiler is found and no outer
    ``torch.compile`` is tracing), else torch.
    """
    if backend not in BACKENDS:
        raise ValueError(f"lp_distance: backend={backend!r} must be one of {', '.join(BACKENDS)}")
    if backend == "triton" or (backend == "auto" and x.is_cuda and triton_usable(x)):
        return lp_distance_triton(x, weight, taps, extract, positions, q)
    if backend == "auto" and x.device.type == "cpu" and not torch.compiler.is_compiling() \
            and x.shape[0] * weight.numel() * positions >= COMPILE_FROM:
        from kernelnn.layers import lp_distance_compiled as compiled

        if compiled.compiled_usable():
            backend = "compiled"
    if backend == "compiled":
        from kernelnn.layers.lp_distance_compiled import lp_distance_compiled

        return lp_distance_compiled(x, weight, taps, extract, positions, q, chunk_elements)
    return LpDistance.apply(x, weight, taps, extract, int(positions), float(q), int(chunk_elements))


def lp_distance_reference(patches: torch.Tensor, weight: torch.Tensor, taps: torch.Tensor, q: float) -> torch.Tensor:
    """The same distance by one plain broadcast (for tests; memory ``batch * O * I * positions``)."""
    diff = patches.unsqueeze(2) - weight.unsqueeze(0).unsqueeze(-1)
    out = (taps.unsqueeze(0).unsqueeze(-1) * diff.abs().pow(q)).sum(dim=3)
    return out.flatten(1, 2)
