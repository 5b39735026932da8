r"""Fused GPU kernels (Triton) for the weighted :math:`L^q` distance of :mod:`kernelnn.layers.lp_distance`.

The PyTorch path broadcasts ``p - w`` block by block: correct and bounded in memory, but every element of the
``(samples, channels, taps, positions)`` difference goes through memory several times. Here each kernel is a
"matmul with a different inner operation" (AdderNet's observation): a program owns a tile of the output and
loops over the reduced axis, keeping ``u |p - w|^q`` in registers.

With patches ``P (G, R, I)`` (``R`` = samples x positions, ``I`` taps per group), filters ``W`` and weights
``U (G, O, I)``, and ``D = dout/d(out) (G, R, O)``:

* forward     ``out[g, r, o] = sum_i U[g,o,i] |P[g,r,i] - W[g,o,i]|^q``      (tiles of r x o, loop over i)
* patch grad  ``dP[g, r, i] = sum_o D[g,r,o] U[g,o,i] s(P - W)``              (tiles of r x i, loop over o)
* filter grads ``dW[g, o, i] = -sum_r D U s(P - W)``, ``dU[g, o, i] = sum_r D |P - W|^q`` (tiles of o x i,
  loop over r)

with ``s(t) = q |t|^(q-1) sign(t)``. Accumulation is in float32 (float64 for float64 inputs). The kernels run on
CUDA; with ``TRITON_INTERPRET=1`` set before import they also run (slowly) on CPU tensors, which is how the
tests check them against the PyTorch reference on a machine without a GPU.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import torch

try:
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - triton ships with CUDA builds of torch on Linux
    triton = None


def triton_usable(x: torch.Tensor) -> bool:
    """Whether the fused kernels can run on ``x``: Triton present and ``x`` on CUDA (or the interpreter on)."""
    if triton is None:
        return False
    return x.is_cuda or (x.device.type == "cpu" and os.environ.get("TRITON_INTERPRET") == "1")


if triton is not None:

    @triton.jit
    def _power(diff, q, Q_ONE: tl.constexpr, Q_TWO: tl.constexpr):
        a = tl.abs(diff)
        if Q_ONE:
            return a
        if Q_TWO:
            return a * a
        return tl.where(a > 0, tl.exp2(q * tl.log2(tl.maximum(a, 1e-30))), 0.0)

    @triton.jit
    def _power_grad(diff, q, Q_ONE: tl.constexpr, Q_TWO: tl.constexpr):
        sign = tl.where(diff > 0, 1.0, tl.where(diff < 0, -1.0, 0.0))
        if Q_ONE:
            return sign
        if Q_TWO:
            return 2.0 * diff
        a = tl.abs(diff)
        return tl.where(a > 0, q * tl.exp2((q - 1.0) * tl.log2(tl.maximum(a, 1e-30))), 0.0) * sign

    @triton.jit
    def _tile(ptr, rows, cols, n_rows, n_cols):
        """The ``rows x cols`` tile of a row-major ``(n_rows, n_cols)`` matrix; zero outside it."""
        mask = (rows[:, None] < n_rows) & (cols[None, :] < n_cols)
        return tl.load(ptr + rows[:, None] * n_cols + cols[None, :], mask=mask, other=0.0)

    @triton.jit
    def _forward_kernel(P, W, U, OUT, R, O, I, q,
                        Q_ONE: tl.constexpr, Q_TWO: tl.constexpr,
                        BR: tl.constexpr, BO: tl.constexpr, BI: tl.constexpr):
        pid_r, pid_o, g = tl.program_id(0), tl.program_id(1), tl.program_id(2)
        rows = pid_r * BR + tl.arange(0, BR)
        cols = pid_o * BO + tl.arange(0, BO)
        P += g * R * I
        W += g * O * I
        U += g * O * I
        acc = tl.zeros((BR, BO), dtype=OUT.dtype.element_ty)
        for start in range(0, I, BI):
            taps = start + tl.arange(0, BI)
            p = _tile(P, rows, taps, R, I)
            w = _tile(W, cols, taps, O, I)
            u = _tile(U, cols, taps, O, I)
            diff = p[:, None, :] - w[None, :, :]  # (BR, BO, BI); masked taps have u = 0
            acc += tl.sum(u[None, :, :] * _power(diff, q, Q_ONE, Q_TWO), axis=2)
        tl.store(OUT + g * R * O + rows[:, None] * O + cols[None, :], acc,
                 mask=(rows[:, None] < R) & (cols[None, :] < O))

    @triton.jit
    def _patch_grad_kernel(P, W, U, D, DP, R, O, I, q,
                           Q_ONE: tl.constexpr, Q_TWO: tl.constexpr,
                           BR: tl.constexpr, BO: tl.constexpr, BI: tl.constexpr):
        pid_r, pid_i, g = tl.program_id(0), tl.program_id(1), tl.program_id(2)
        rows = pid_r * BR + tl.arange(0, BR)
        taps = pid_i * BI + tl.arange(0, BI)
        P += g * R * I
        W += g * O * I
        U += g * O * I
        D += g * R * O
        p = _tile(P, rows, taps, R, I)
        acc = tl.zeros((BR, BI), dtype=DP.dtype.element_ty)
        for start in range(0, O, BO):
            cols = start + tl.arange(0, BO)
            w = _tile(W, cols, taps, O, I)
            u = _tile(U, cols, taps, O, I)
            d = _tile(D, rows, cols, R, O)
            diff = p[:, None, :] - w[None, :, :]  # (BR, BO, BI)
            acc += tl.sum(d[:, :, None] * u[None, :, :] * _power_grad(diff, q, Q_ONE, Q_TWO), axis=1)
        tl.store(DP + g * R * I + rows[:, None] * I + taps[None, :], acc,
                 mask=(rows[:, None] < R) & (taps[None, :] < I))

    @triton.jit
    def _filter_grad_kernel(P, W, U, D, DW, DU, R, O, I, q,
                            Q_ONE: tl.constexpr, Q_TWO: tl.constexpr,
                            BR: tl.constexpr, BO: tl.constexpr, BI: tl.constexpr):
        pid_o, pid_i, g = tl.program_id(0), tl.program_id(1), tl.program_id(2)
        cols = pid_o * BO + tl.arange(0, BO)
        taps = pid_i * BI + tl.arange(0, BI)
        P += g * R * I
        W += g * O * I
        U += g * O * I
        D += g * R * O
        wmask = (cols[:, None] < O) & (taps[None, :] < I)
        w = _tile(W, cols, taps, O, I)
        u = _tile(U, cols, taps, O, I)
        acc_w = tl.zeros((BO, BI), dtype=DW.dtype.element_ty)
        acc_u = tl.zeros((BO, BI), dtype=DW.dtype.element_ty)
        for start in range(0, R, BR):
            rows = start + tl.arange(0, BR)
            p = _tile(P, rows, taps, R, I)
            d = _tile(D, rows, cols, R, O)  # masked rows have d = 0
            diff = p[:, None, :] - w[None, :, :]  # (BR, BO, BI)
            acc_w -= tl.sum(d[:, :, None] * _power_grad(diff, q, Q_ONE, Q_TWO), axis=0)
            acc_u += tl.sum(d[:, :, None] * _power(diff, q, Q_ONE, Q_TWO), axis=0)
        offsets = g * O * I + cols[:, None] * I + taps[None, :]
        tl.store(DW + offsets, acc_w * u, mask=wmask)
        tl.store(DU + offsets, acc_u, mask=wmask)


# Tile sizes: small enough that the (BR, BO, BI) difference tile of one program stays in registers.
BLOCK_ROWS, BLOCK_CHANNELS, BLOCK_TAPS = 32, 32, 8


def _flags(q: float) -> dict[str, bool]:
    return {"Q_ONE": q == 1.0, "Q_TWO": q == 2.0}


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    """float64 stays float64 (gradcheck); everything else computes in float32."""
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def _rows(patches: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``(n, g, I, L)`` patches -> ``(g, n L, I)`` contiguous rows."""
    n, g, i, length = patches.shape
    return patches.permute(1, 0, 3, 2).reshape(g, n * length, i).to(dtype).contiguous()


class LpDistanceTriton(torch.autograd.Function):
    """``d = sum_i u |patches(x) - w|^q`` by the fused kernels; the signature of ``LpDistance``."""

    @staticmethod
    def forward(ctx, x, weight, taps, extract, length, q):
        g, o, i = weight.shape
        n = x.shape[0]
        dtype = _compute_dtype(x)
        rows = _rows(extract(x), dtype)
        w, u = weight.to(dtype).contiguous(), taps.to(dtype).contiguous()
        out = torch.empty(g, n * length, o, device=x.device, dtype=dtype)
        grid = (triton.cdiv(n * length, BLOCK_ROWS), triton.cdiv(o, BLOCK_CHANNELS), g)
        _forward_kernel[grid](rows, w, u, out, n * length, o, i, q, **_flags(q),
                              BR=BLOCK_ROWS, BO=BLOCK_CHANNELS, BI=BLOCK_TAPS)
        ctx.save_for_backward(x, weight, taps)  # patches are rebuilt in backward: K^d times smaller to keep
        ctx.extract, ctx.q = extract, q
        # (g, n L, o) -> (n, g o, L)
        return out.view(g, n, length, o).permute(1, 0, 3, 2).reshape(n, g * o, length).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        x, weight, taps = ctx.saved_tensors
        q = ctx.q
        g, o, i = weight.shape
        n, length = x.shape[0], grad_out.shape[-1]
        need_x, need_w, need_u = ctx.needs_input_grad[:3]
        with torch.enable_grad():
            x_in = x.detach().requires_grad_(need_x)
            patches = ctx.extract(x_in)
        dtype = _compute_dtype(x)
        rows = _rows(patches.detach(), dtype)
        w, u = weight.to(dtype).contiguous(), taps.to(dtype).contiguous()
        # (n, g o, L) -> (g, n L, o)
        d = grad_out.reshape(n, g, o, length).permute(1, 0, 3, 2).reshape(g, n * length, o).to(dtype).contiguous()
        r = n * length
        grad_x = grad_weight = grad_taps = None
        if need_x:
            dp = torch.empty_like(rows)
            grid = (triton.cdiv(r, BLOCK_ROWS), triton.cdiv(i, BLOCK_TAPS), g)
            _patch_grad_kernel[grid](rows, w, u, d, dp, r, o, i, q, **_flags(q),
                                     BR=BLOCK_ROWS, BO=BLOCK_CHANNELS, BI=BLOCK_TAPS)
            dp = dp.view(g, n, length, i).permute(1, 0, 3, 2).to(patches.dtype)  # back to (n, g, I, L)
            (grad_x,) = torch.autograd.grad(patches, x_in, dp)
        if need_w or need_u:
            dw, du = torch.empty_like(w), torch.empty_like(u)
            grid = (triton.cdiv(o, BLOCK_CHANNELS), triton.cdiv(i, BLOCK_TAPS), g)
            _filter_grad_kernel[grid](rows, w, u, d, dw, du, r, o, i, q, **_flags(q),
                                      BR=BLOCK_ROWS, BO=BLOCK_CHANNELS, BI=BLOCK_TAPS)
            grad_weight = dw.to(weight.dtype) if need_w else None
            grad_taps = du.to(taps.dtype) if need_u else None
        return grad_x, grad_weight, grad_taps, None, None, None


def lp_distance_triton(x: torch.Tensor, weight: torch.Tensor, taps: torch.Tensor,
                       extract: Callable[[torch.Tensor], torch.Tensor], positions: int,
                       q: float = 1.0) -> torch.Tensor:
    """:func:`kernelnn.layers.lp_distance.lp_distance` by the fused Triton kernels (CUDA, or the interpreter)."""
    if not triton_usable(x):
        raise RuntimeError("lp_distance_triton: needs Triton and a CUDA tensor (or TRITON_INTERPRET=1 on CPU); "
                           f"got a {x.device.type} tensor, triton {'missing' if triton is None else 'present'}")
    return LpDistanceTriton.apply(x, weight, taps, extract, int(positions), float(q))
