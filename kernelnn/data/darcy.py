r"""Darcy flow :math:`-\nabla\cdot(a \nabla u) = f` in :math:`(0,1)^2`, :math:`u = 0` on the boundary.

The coefficient :math:`a` is a thresholded Gaussian random field (two values, 12 and 3, as in the FNO
paper), :math:`f = 1`. The equation is discretised by the standard five-point finite-volume scheme on a
uniform grid of spacing :math:`h = 1/N` with face coefficients the arithmetic mean of the two nodes,

.. math:: \frac{1}{h^2}\sum_{\text{nb}} a_{\text{face}}\,(u_{ij} - u_{\text{nb}}) = f_{ij},

and solved exactly with ``scipy.sparse.linalg.spsolve``. The learning data live on the nodes
``x_i = i / N, i = 0..N-1`` of each axis (the boundary at ``x = 0`` is included, the one at ``x = 1`` is
not), so a coarser data set is an exact subsample ``[::s, ::s]`` of a finer one: the same functions at
several resolutions for zero-shot super-resolution.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

from kernelnn.data.bundle import DataBundle, cached, check_resolutions, resolution_splits
from kernelnn.data.grf import neumann_grf_2d


def darcy_matrix(a: np.ndarray) -> sp.csr_matrix:
    """Sparse matrix of the scheme on the interior nodes of an ``(N+1, N+1)`` nodal coefficient ``a``."""
    n = a.shape[0] - 1
    h2 = (1.0 / n) ** 2
    m = n - 1  # interior nodes per axis
    idx = np.arange(m * m).reshape(m, m)
    a_in = a[1:-1, 1:-1]
    faces = {  # face coefficient towards each neighbour, and the neighbour's index (or -1 on the boundary)
        (1, 0): (0.5 * (a_in + a[2:, 1:-1])),
        (-1, 0): (0.5 * (a_in + a[:-2, 1:-1])),
        (0, 1): (0.5 * (a_in + a[1:-1, 2:])),
        (0, -1): (0.5 * (a_in + a[1:-1, :-2])),
    }
    rows, cols, vals = [idx.ravel()], [idx.ravel()], [sum(faces.values()).ravel() / h2]
    for (di, dj), coeff in faces.items():
        # Neighbours that are interior nodes become off-diagonal entries; boundary neighbours are u = 0.
        src = idx[max(0, -di): m - max(0, di), max(0, -dj): m - max(0, dj)]
        dst = idx[max(0, di): m - max(0, -di), max(0, dj): m - max(0, -dj)]
        c = coeff[max(0, -di): m - max(0, di), max(0, -dj): m - max(0, dj)]
        rows.append(src.ravel())
        cols.append(dst.ravel())
        vals.append(-c.ravel() / h2)
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(m * m, m * m)
    )


def solve_darcy(a: np.ndarray, f: float | np.ndarray = 1.0) -> np.ndarray:
    """Solve the scheme for a nodal coefficient ``a`` of shape ``(N+1, N+1)``; returns ``u`` on all nodes."""
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] < 3:
        raise ValueError(f"solve_darcy: a must be a square (N+1, N+1) array with N >= 2, got shape {a.shape}")
    if np.any(a <= 0):
        raise ValueError("solve_darcy: the coefficient a must be positive everywhere")
    m = a.shape[0] - 2
    rhs = np.broadcast_to(np.asarray(f, dtype=np.float64), a.shape)[1:-1, 1:-1].ravel()
    u = np.zeros_like(a)
    u[1:-1, 1:-1] = spla.spsolve(darcy_matrix(a).tocsc(), rhs).reshape(m, m)
    return u


def darcy_coefficients(
    n: int, solve_resolution: int, values: tuple[float, float], alpha: float, tau: float, grf_terms: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """Thresholded GRF coefficients on all ``(N+1)^2`` nodes: ``values[0]`` where psi >= 0, else ``values[1]``."""
    nodes = torch.linspace(0.0, 1.0, solve_resolution + 1, dtype=torch.float64)
    psi = neumann_grf_2d(n, nodes, alpha, tau, grf_terms, generator)
    high, low = (torch.tensor(v, dtype=psi.dtype) for v in values)
    return torch.where(psi >= 0, high, low)


def make_darcy(
    resolution: int = 32,
    test_resolutions: list[int] | None = (32, 64),
    n_train: int = 1000,
    n_val: int = 100,
    n_test: int = 200,
    solve_resolution: int | None = None,
    coefficient_values: tuple[float, float] = (12.0, 3.0),
    alpha: float = 2.0,
    tau: float = 3.0,
    grf_terms: int = 32,
    seed: int = 0,
    cache_dir: str | None = None,
    cache: bool = True,
    name: str = "darcy",
) -> DataBundle:
    """Generated Darcy flow data: input ``a`` and solution ``u``, both ``(n, 1, R, R)``.

    Training and validation sets are at ``resolution``; one test set ``test_<R>`` per entry of
    ``test_resolutions``, all the same samples. Everything is solved once at ``solve_resolution``
    (default: the finest resolution asked for) and subsampled.
    """
    tests, solve = check_resolutions("darcy", resolution, test_resolutions, solve_resolution)
    for key, value in (("n_train", n_train), ("n_test", n_test)):
        if value < 1:
            raise ValueError(f"darcy: data.{key}={value} must be positive")
    if n_val < 0:
        raise ValueError(f"darcy: data.n_val={n_val} must be >= 0")
    values = tuple(float(v) for v in coefficient_values)
    if len(values) != 2 or min(values) <= 0:
        raise ValueError(f"darcy: data.coefficient_values={list(values)} must be two positive numbers")
    params = dict(n=n_train + n_val + n_test, solve_resolution=solve, values=values, alpha=alpha, tau=tau,
                  grf_terms=grf_terms, seed=seed)

    def build() -> dict[str, torch.Tensor]:
        gen = torch.Generator().manual_seed(seed)
        a = darcy_coefficients(params["n"], solve, values, alpha, tau, grf_terms, gen)
        u = np.stack([solve_darcy(sample) for sample in a.numpy()])
        # Keep nodes 0..N-1 (drop x = 1) so that subsampling by integer strides is exact.
        return {"a": a[:, :solve, :solve].float(), "u": torch.from_numpy(u[:, :solve, :solve]).float()}

    data = cached("darcy", params, build, cache_dir, cache)
    a, u = data["a"].unsqueeze(1), data["u"].unsqueeze(1)

    return DataBundle(
        name=name, task="operator", **resolution_splits(a, u, solve, resolution, tests, n_train, n_val, n_test),
        in_channels=1, out_channels=1, dim=2, periodic=False, info={"solve_resolution": solve},
    )
