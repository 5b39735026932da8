"""Compress a trained dense FNO into a TFNO: Tucker factorization of each spectral weight by HOSVD, then ALS.

Kossaifi et al. (MG-TFNO, TMLR 2023) train Tucker-factorized spectral weights from scratch; :func:`tfno_from_fno`
gets a TFNO from a dense model already trained. Each layer's weight ``W`` (``C_in x C_out x modes``, complex) is
replaced by ``G x_1 U_1 x_2 U_2 ...``: the truncated higher-order SVD (De Lathauwer et al., 2000) takes each
``U_n`` as the leading left singular vectors of the mode-``n`` unfolding of ``W``; optional alternating least
squares (higher-order orthogonal iteration) then refines the factors one mode at a time, which never raises the
fit error. The core is ``W x_n U_n^H``, the least-squares core for orthonormal factors.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import torch
from torch import nn

from kernelnn.layers.spectral import SpectralConv
from kernelnn.layers.spectral_weights import TuckerWeight, as_complex, tucker_ranks


def mode_product(t: torch.Tensor, matrix: torch.Tensor, axis: int) -> torch.Tensor:
    """``t x_axis matrix``: ``out[..., j, ...] = sum_i matrix[j, i] t[..., i, ...]`` along ``axis``."""
    return torch.tensordot(t, matrix, dims=([axis], [1])).movedim(-1, axis)


def _leading_left_vectors(t: torch.Tensor, axis: int, rank: int) -> torch.Tensor:
    unfolded = t.movedim(axis, 0).reshape(t.shape[axis], -1)
    u, _, _ = torch.linalg.svd(unfolded, full_matrices=False)
    return u[:, :rank]


def tucker_core(t: torch.Tensor, factors: Sequence[torch.Tensor]) -> torch.Tensor:
    """``t x_1 U_1^H x_2 U_2^H ...``: the best core for orthonormal factors."""
    for axis, u in enumerate(factors):
        t = mode_product(t, u.conj().T, axis)
    return t


def tucker_reconstruct(core: torch.Tensor, factors: Sequence[torch.Tensor]) -> torch.Tensor:
    for axis, u in enumerate(factors):
        core = mode_product(core, u, axis)
    return core


def feasible_ranks(ranks: Sequence[int]) -> tuple[int, ...]:
    """The largest ranks at most ``ranks`` that a Tucker core can have: each ``r_n`` at most the product of the others
    (the mode-``n`` unfolding of a core of the others' ranks has no more independent rows)."""
    ranks = list(ranks)
    changed = True
    while changed:
        changed = False
        for n, r in enumerate(ranks):
            cap = math.prod(ranks[:n] + ranks[n + 1:])
            if r > cap:
                ranks[n], changed = cap, True
    return tuple(ranks)


def tucker_decompose(t: torch.Tensor, ranks: Sequence[int], als_iterations: int = 0
                     ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Truncated HOSVD of ``t`` at ``ranks`` (one per dim), then ``als_iterations`` sweeps of HOOI.

    Returns ``(core, factors)`` with ``factors[n]`` of shape ``(t.shape[n], ranks[n])``, orthonormal columns.
    """
    if len(ranks) != t.dim():
        raise ValueError(f"tucker_decompose: {len(ranks)} ranks for a tensor of {t.dim()} dims")
    if any(not 1 <= r <= n for r, n in zip(ranks, t.shape, strict=True)) or feasible_ranks(ranks) != tuple(ranks):
        raise ValueError(f"tucker_decompose: ranks={list(ranks)} do not fit a tensor of shape {list(t.shape)}: each "
                         f"rank must be between 1 and its dim and at most the product of the other ranks "
                         f"(feasible: {list(feasible_ranks(min(r, n) for r, n in zip(ranks, t.shape, strict=True)))})")
    factors = [_leading_left_vectors(t, axis, r) for axis, r in enumerate(ranks)]
    for _ in range(als_iterations):
        for axis, r in enumerate(ranks):
            projected = t
            for other, u in enumerate(factors):
                if other != axis:
                    projected = mode_product(projected, u.conj().T, other)
            factors[axis] = _leading_left_vectors(projected, axis, r)
    return tucker_core(t, factors), factors


def _dense_weight(conv: SpectralConv) -> torch.Tensor:
    """The layer's complex weight in float64, with never-used slots (neuraloperator's ``+M / 2``) zeroed so they
    take no rank."""
    w = as_complex(conv.weight.weight.detach(), torch.float64)
    for axis, unused in enumerate(conv._unused_slot):
        if unused:
            w.select(2 + axis, conv.weight.n_modes[axis] - 1).zero_()
    return w


@torch.no_grad()
def tfno_from_fno(model: nn.Module, factorization: str = "tucker", rank: int | float | Sequence[int] = 0.1,
                  als_iterations: int = 0) -> nn.Module:
    """A copy of ``model`` whose dense spectral convolutions are Tucker-factorized (a TFNO); ``model`` is unchanged.

    Parameters
    ----------
    model : nn.Module
        Any module holding dense :class:`~kernelnn.layers.SpectralConv` layers (an :class:`~kernelnn.models.FNO`,
        a space-time FNO, ...). Layers already factorized are left as they are.
    factorization : str
        ``"tucker"`` (the only one: HOSVD has no CP or TT counterpart with its guarantees).
    rank : int, float or sequence of int
        Tucker ranks as :class:`~kernelnn.layers.spectral_weights.TuckerWeight` takes them: a fraction of each
        layer's dense parameters, one int for every dim, or one int per dim ``(r_in, r_out, *r_modes)``.
    als_iterations : int
        Sweeps of alternating least squares (HOOI) after the HOSVD; 0 keeps the HOSVD.

    Returns
    -------
    The compressed copy. Ranks no Tucker core can have (one above the product of the others) are lowered to the
    largest that can; ``layer.weight.ranks`` holds those used. Rebuild it from a state dict with the same model,
    ``factorization="tucker"`` and ``rank=`` those per-dim ranks.
    """
    if factorization != "tucker":
        raise ValueError(f"tfno_from_fno: factorization={factorization!r} is not supported; 'tucker' (HOSVD + ALS)")
    if not isinstance(als_iterations, int) or als_iterations < 0:
        raise ValueError(f"tfno_from_fno: als_iterations={als_iterations!r} must be an int >= 0")
    dense = [m for m in model.modules() if isinstance(m, SpectralConv) and m.factorization == "dense"]
    if not dense:
        raise ValueError(f"tfno_from_fno: {type(model).__name__} has no dense SpectralConv to compress")
    compressed = copy.deepcopy(model)
    for conv in (m for m in compressed.modules() if isinstance(m, SpectralConv) and m.factorization == "dense"):
        old = conv.weight
        w = _dense_weight(conv)
        ranks = feasible_ranks(tucker_ranks("tucker", tuple(w.shape), rank, old.dense_size))
        core, factors = tucker_decompose(w, ranks, als_iterations)
        new = TuckerWeight(old.in_channels, old.out_channels, old.n_modes, rank=ranks)
        dtype = old.weight.dtype
        new.core.copy_(torch.view_as_real(core).to(dtype))
        new.factor_in.copy_(torch.view_as_real(factors[0]).to(dtype))
        new.factor_out.copy_(torch.view_as_real(factors[1]).to(dtype))
        for param, factor in zip(new.factor_modes, factors[2:], strict=True):
            param.copy_(torch.view_as_real(factor).to(dtype))
        conv.weight = new.to(old.weight.device)
        conv.factorization = "tucker"
    return compressed
