r"""Weighted :math:`L^q` distances between every filter and every patch, in bounded memory.

:math:`d[b, o, l] = \sum_i u[o, i]\, |p[b, i, l] - w[o, i]|^q` has no matmul form for :math:`q \ne 2`, so it
is computed by broadcasting, a chunk of output channels at a time. :class:`LpDistance` saves only the input,
the filters and the weights for backward (not the ``kernel_size^d`` times larger patches) and rebuilds each
chunk in backward, so memory stays bounded whatever the layer size. Patches come from a differentiable
extraction (padding, then strided windows); backward maps patch gradients back to the input through it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

CHUNK_ELEMENTS = 2**24  # elements of one broadcast (batch, chunk, taps, positions) block: 64 MiB in float32


def _chunks(n_out: int, per_channel: int, chunk_elements: int) -> list[slice]:
    size = max(1, chunk_elements // max(1, per_channel))
    return [slice(start, min(start + size, n_out)) for start in range(0, n_out, size)]


def _power(diff: torch.Tensor, q: float) -> torch.Tensor:
    return diff.abs() if q == 1 else diff.abs().pow(q)


def _power_grad(diff: torch.Tensor, q: float) -> torch.Tensor:
    """d|t|^q / dt."""
    return diff.sign() if q == 1 else q * diff.abs().pow(q - 1) * diff.sign()


class LpDistance(torch.autograd.Function):
    """``d = sum_i u |patches(x) - w|^q`` for grouped filters; see :func:`lp_distance`."""

    @staticmethod
    def forward(ctx, x, weight, taps, extract, groups, q, chunk_elements):
        patches = extract(x)  # (batch, groups, I, L)
        out = _lp_forward(patches, weight, taps, q, chunk_elements)
        ctx.save_for_backward(x, weight, taps)
        ctx.extract, ctx.q, ctx.chunk_elements = extract, q, chunk_elements
        return out

    @staticmethod
    def backward(ctx, grad_out):
        x, weight, taps = ctx.saved_tensors
        q, chunk_elements = ctx.q, ctx.chunk_elements
        with torch.enable_grad():
            x_leaf = x.detach().requires_grad_(ctx.needs_input_grad[0])
            patches = ctx.extract(x_leaf)
        n, g, i, length = patches.shape
        o = weight.shape[1]
        grad_out = grad_out.reshape(n, g, o, length)
        grad_patches = torch.zeros_like(patches) if ctx.needs_input_grad[0] else None
        grad_weight = torch.zeros_like(weight) if ctx.needs_input_grad[1] else None
        grad_taps = torch.zeros_like(taps) if ctx.needs_input_grad[2] else None
        p = patches.detach()
        for part in _chunks(o, n * i * length, chunk_elements):
            # (n, g, 1, i, L) - (1, g, c, i, 1)
            diff = p.unsqueeze(2) - weight[:, part].unsqueeze(0).unsqueeze(-1)
            g_out = grad_out[:, :, part].unsqueeze(3)  # (n, g, c, 1, L)
            u = taps[:, part].unsqueeze(0).unsqueeze(-1)  # (1, g, c, i, 1)
            if grad_taps is not None:
                grad_taps[:, part] = (g_out * _power(diff, q)).sum(dim=(0, 4))
            if grad_patches is not None or grad_weight is not None:
                local = g_out * u * _power_grad(diff, q)  # d out / d patch, (n, g, c, i, L)
                if grad_patches is not None:
                    grad_patches += local.sum(dim=2)
                if grad_weight is not None:
                    grad_weight[:, part] = -local.sum(dim=(0, 4))
        grad_x = None
        if grad_patches is not None:
            (grad_x,) = torch.autograd.grad(patches, x_leaf, grad_patches)
        return grad_x, grad_weight, grad_taps, None, None, None, None


def _lp_forward(patches: torch.Tensor, weight: torch.Tensor, taps: torch.Tensor, q: float,
                chunk_elements: int) -> torch.Tensor:
    n, g, i, length = patches.shape
    o = weight.shape[1]
    out = patches.new_empty(n, g, o, length)
    for part in _chunks(o, n * i * length, chunk_elements):
        diff = patches.unsqueeze(2) - weight[:, part].unsqueeze(0).unsqueeze(-1)
        out[:, :, part] = (taps[:, part].unsqueeze(0).unsqueeze(-1) * _power(diff, q)).sum(dim=3)
    return out.reshape(n, g * o, length)


def lp_distance(x: torch.Tensor, weight: torch.Tensor, taps: torch.Tensor,
                extract: Callable[[torch.Tensor], torch.Tensor], q: float = 1.0,
                chunk_elements: int = CHUNK_ELEMENTS) -> torch.Tensor:
    """Weighted :math:`L^q` distance of every filter to every patch, ``(batch, groups * O_g, positions)``.

    ``x`` is the layer input; ``extract(x)`` returns its patches ``(batch, groups, I, positions)`` (``I`` taps
    per group); ``weight`` and ``taps`` are ``(groups, O_g, I)``: the filters ``w`` and positive weights ``u``.
    """
    return LpDistance.apply(x, weight, taps, extract, weight.shape[0], float(q), int(chunk_elements))


def lp_distance_reference(patches: torch.Tensor, weight: torch.Tensor, taps: torch.Tensor, q: float) -> torch.Tensor:
    """The same distance by one plain broadcast (for tests; memory ``batch * O * I * positions``)."""
    diff = patches.unsqueeze(2) - weight.unsqueeze(0).unsqueeze(-1)
    out = (taps.unsqueeze(0).unsqueeze(-1) * diff.abs().pow(q)).sum(dim=3)
    return out.flatten(1, 2)
