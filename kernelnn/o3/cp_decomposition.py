r"""CP (CANDECOMP/PARAFAC) decomposition of a three-way tensor by alternating least squares.

:math:`T_{ijk} \approx \sum_{r=1}^R A_{ir} B_{jr} C_{kr}`. Each sweep solves for one factor with the other two
fixed, a linear least-squares problem with the normal equations
:math:`A = T_{(1)} (C \odot B)\, [(B^\top B) * (C^\top C) + \lambda I]^{-1}` (``*`` element-wise, :math:`\odot`
the Khatri-Rao product), and the same for ``B`` and ``C`` (Kolda and Bader, "Tensor Decompositions and
Applications", SIAM Review 2009, section 3.4). A small ridge :math:`\lambda` keeps the solves well posed when
components become collinear; several random starts are tried and the best fit kept.
"""

from __future__ import annotations

import torch


def cp_reconstruct(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """:math:`\\sum_r a_{ir} b_{jr} c_{kr}`: ``(I, J, K)`` from factors ``(I, R)``, ``(J, R)``, ``(K, R)``."""
    return torch.einsum("ir,jr,kr->ijk", a, b, c)


def cp_als(tensor: torch.Tensor, rank: int, iterations: int = 500, restarts: int = 3, tol: float = 1e-12,
           ridge: float = 1e-12, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """Rank-``rank`` CP factors of ``tensor`` ``(I, J, K)`` by ALS (module docstring), float64.

    Returns ``(A, B, C, relative_error)`` with ``relative_error = ||T - [[A, B, C]]||_F / ||T||_F`` of the best of
    ``restarts`` seeded random starts, each run for at most ``iterations`` sweeps or until the error improves by
    less than ``tol`` (relative) in a sweep. The factors are balanced (equal column norms across the three).
    """
    if tensor.dim() != 3:
        raise ValueError(f"cp_als: tensor must have 3 dims, got shape {tuple(tensor.shape)}")
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise ValueError(f"cp_als: rank={rank!r} must be a positive int")
    t = tensor.to(torch.float64)
    norm = float(torch.linalg.norm(t))
    if norm == 0:
        zeros = [t.new_zeros(n, rank) for n in t.shape]
        return zeros[0], zeros[1], zeros[2], 0.0
    i, j, k = t.shape
    unfold = (t.reshape(i, j * k), t.permute(1, 0, 2).reshape(j, i * k), t.permute(2, 0, 1).reshape(k, i * j))
    eye = torch.eye(rank, dtype=torch.float64)
    best = None
    for start in range(restarts):
        g = torch.Generator().manual_seed(seed + start)
        factors = [torch.randn(n, rank, generator=g, dtype=torch.float64) for n in t.shape]
        previous = float("inf")
        for _ in range(iterations):
            for mode in range(3):
                p, q = (factors[m] for m in range(3) if m != mode)  # in tensor order: matches the unfolding
                khatri_rao = (p[:, None, :] * q[None, :, :]).reshape(-1, rank)
                gram = (p.T @ p) * (q.T @ q) + ridge * norm * eye
                factors[mode] = torch.linalg.solve(gram, (unfold[mode] @ khatri_rao).T).T
            error = float(torch.linalg.norm(t - cp_reconstruct(*factors))) / norm
            if previous - error < tol * max(error, 1e-300) or error < 1e-14:
                break
            previous = error
        if best is None or error < best[3]:
            best = (*factors, error)
    a, b, c, error = best
    # Balance the column norms so no factor carries the whole scale (better conditioned in low precision).
    scale = (a.norm(dim=0) * b.norm(dim=0) * c.norm(dim=0)).clamp_min(1e-300) ** (1 / 3)
    a, b, c = (f / f.norm(dim=0).clamp_min(1e-300) * scale for f in (a, b, c))
    return a, b, c, error
