r"""Contractions of an input block with a CP or tensor-train spectral weight that keep less for backward than
autograd would.

Autograd keeps every intermediate an einsum chain makes. Two of them are cheap to rebuild and expensive to keep,
so these functions keep only what their gradients cannot do without:

- **CP** (:func:`cp_contract`): :math:`y = B\,[(A^\top x) \odot C]`. Autograd keeps both :math:`t_1 = A^\top x` and
  :math:`t_2 = t_1 \odot C` (each ``batch x rank x modes``); here only the inputs are kept and both are rebuilt in
  backward (one contraction of the input with :math:`A`).
- **Tensor train** (:func:`tt_contract`): :math:`y = P\,(G_0^\top x)`. Autograd keeps :math:`x`, :math:`t = G_0^\top x`
  and :math:`P`; here :math:`t` is rebuilt from :math:`x` in backward (one small contraction), so the factorized
  path never keeps more than the reconstructed one.

Gradients follow PyTorch's convention for complex tensors (the conjugate Wirtinger derivative: ``grad_a = grad_y *
conj(dy/da)`` for holomorphic ``y``). Backward is written in differentiable operations on the kept inputs, so
double backward is exact; ``jvp`` gives forward mode and ``generate_vmap_rule`` lets ``torch.func`` (vmap, jacrev)
through. The tests gradcheck and gradgradcheck both in complex float64 and compare ``torch.func`` with plain
einsums.
"""

from __future__ import annotations

import torch


class CPContraction(torch.autograd.Function):
    """``x (b, i, M)``, ``A (i, r)``, ``C (r, M)``, ``B (o, r)`` -> ``(b, o, M)``, modes flattened to ``M``."""

    generate_vmap_rule = True  # torch.func (vmap, jacrev) works through forward and backward alike

    @staticmethod
    def forward(x, a, c, b):
        return torch.einsum("brm,or->bom", torch.einsum("bim,ir->brm", x, a) * c, b)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(*inputs)
        ctx.save_for_forward(*inputs)

    @staticmethod
    def backward(ctx, grad):
        x, a, c, b = ctx.saved_tensors
        need_x, need_a, need_c, need_b = ctx.needs_input_grad
        grad_x = grad_a = grad_c = grad_b = None
        # A^T x is rebuilt from the kept inputs (differentiably, so double backward is exact)
        t1 = torch.einsum("bim,ir->brm", x, a)
        g2 = torch.einsum("bom,or->brm", grad, b.conj())  # gradient of t2 = t1 * c
        if need_b:
            grad_b = torch.einsum("bom,brm->or", grad, (t1 * c).conj())
        if need_c:
            grad_c = (g2 * t1.conj()).sum(0)  # an element-wise product summed over the batch, not a batched matmul
        if need_x or need_a:
            g1 = g2 * c.conj()
            if need_x:
                grad_x = torch.einsum("brm,ir->bim", g1, a.conj())
            if need_a:
                grad_a = torch.einsum("bim,brm->ir", x.conj(), g1)
        return grad_x, grad_a, grad_c, grad_b

    @staticmethod
    def jvp(ctx, dx, da, dc, db):
        x, a, c, b = ctx.saved_for_forward
        t1 = torch.einsum("bim,ir->brm", x, a)
        dt1 = 0
        if dx is not None:
            dt1 = dt1 + torch.einsum("bim,ir->brm", dx, a)
        if da is not None:
            dt1 = dt1 + torch.einsum("bim,ir->brm", x, da)
        dt2 = dt1 * c
        if dc is not None:
            dt2 = dt2 + t1 * dc
        out = torch.einsum("brm,or->bom", dt2, b) if torch.is_tensor(dt2) else 0
        if db is not None:
            out = out + torch.einsum("brm,or->bom", t1 * c, db)
        return out


class TTContraction(torch.autograd.Function):
    """``x (b, i, M)``, ``G0 (i, a)``, ``P (a, o, M)`` -> ``(b, o, M)``."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x, g0, p):
        return torch.einsum("bam,aom->bom", torch.einsum("bim,ia->bam", x, g0), p)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(*inputs)
        ctx.save_for_forward(*inputs)

    @staticmethod
    def backward(ctx, grad):
        x, g0, p = ctx.saved_tensors
        need_x, need_g0, need_p = ctx.needs_input_grad
        grad_x = grad_g0 = grad_p = None
        if need_p:
            t = torch.einsum("bim,ia->bam", x, g0)  # rebuilt, not kept
            grad_p = torch.einsum("bam,bom->aom", t.conj(), grad)
        if need_x or need_g0:
            gt = torch.einsum("bom,aom->bam", grad, p.conj())
            if need_x:
                grad_x = torch.einsum("bam,ia->bim", gt, g0.conj())
            if need_g0:
                grad_g0 = torch.einsum("bim,bam->ia", x.conj(), gt)
        return grad_x, grad_g0, grad_p

    @staticmethod
    def jvp(ctx, dx, dg0, dp):
        x, g0, p = ctx.saved_for_forward
        out = 0
        if dx is not None:
            out = out + torch.einsum("bam,aom->bom", torch.einsum("bim,ia->bam", dx, g0), p)
        if dg0 is not None:
            out = out + torch.einsum("bam,aom->bom", torch.einsum("bim,ia->bam", x, dg0), p)
        if dp is not None:
            out = out + torch.einsum("bam,aom->bom", torch.einsum("bim,ia->bam", x, g0), dp)
        return out


def _flat(t: torch.Tensor, lead: int) -> torch.Tensor:
    return t.flatten(lead) if t.dim() > lead else t


def cp_contract(x: torch.Tensor, factor_in: torch.Tensor, modes: torch.Tensor,
                factor_out: torch.Tensor) -> torch.Tensor:
    """``y[b,o,k] = sum_r B[o,r] C[r,k] sum_i A[i,r] x[b,i,k]`` for mode blocks ``k`` of any rank:
    ``x (b, i, *block)``, ``A (i, r)``, ``C (r, *block)``, ``B (o, r)``."""
    block = x.shape[2:]
    y = CPContraction.apply(_flat(x, 2), factor_in, _flat(modes, 1), factor_out)
    return y.reshape(*y.shape[:2], *block)


def tt_contract(x: torch.Tensor, first: torch.Tensor, rest: torch.Tensor) -> torch.Tensor:
    """``y[b,o,k] = sum_a P[a,o,k] sum_i G0[i,a] x[b,i,k]``: ``x (b, i, *block)``, ``G0 (i, a)``,
    ``P (a, o, *block)``."""
    block = x.shape[2:]
    y = TTContraction.apply(_flat(x, 2), first, _flat(rest, 2))
    return y.reshape(*y.shape[:2], *block)
