r"""Neighbour lists within a cutoff by cell lists: O(N) pairs for N atoms at fixed density, periodic cells included.

Atoms of several systems are given together (``batch[i]`` = the system of atom ``i``, as in PyTorch Geometric),
each system with an optional cell (rows are the lattice vectors :math:`a_1, a_2, a_3`) periodic along the axes
``pbc`` says. A pair ``(i, j, S)`` is listed when :math:`r_{ij} = x_j - x_i + S\,\mathrm{cell} ` has
:math:`|r_{ij}| < r_c` (``S`` an integer shift of the image of ``j``; never ``i = j`` with ``S = 0``). Both
directions of a pair are listed.

Method: fractional coordinates :math:`s = x\,\mathrm{cell}^{-1}`; along each axis, bins of width at least
:math:`r_c / w_a` in :math:`s`, with :math:`w_a = V / |a_b \times a_c|` the distance between the cell's faces, so
two atoms closer than :math:`r_c` are in neighbouring bins (their :math:`|\Delta s_a| = |r \cdot b^*_a| \le r_c /
w_a`). Atoms are sorted by bin; each atom looks up the 27 bins around its own (wrapping on periodic axes, where the
wrap gives the shift ``S``) by binary search in the sorted bin keys, so empty space costs nothing. The minimum-image
convention needs :math:`r_c \le w_a / 2` on periodic axes: then each pair has at most one image within the cutoff.

Only integer indices and shifts are returned; :func:`edge_vectors` computes :math:`r_{ij}` differentiably from
the positions and cells (forces, stress).
"""

from __future__ import annotations

import itertools
import numbers
from typing import NamedTuple

import torch

_OFFSETS = torch.tensor(list(itertools.product((-1, 0, 1), repeat=3)), dtype=torch.long)  # (27, 3)


class Neighbors(NamedTuple):
    """Directed pairs: centre ``i (E,)``, neighbour ``j (E,)`` and the integer cell shift of ``j``'s image
    ``shift (E, 3)`` (zeros without periodicity)."""

    i: torch.Tensor
    j: torch.Tensor
    shift: torch.Tensor


def _systems(positions: torch.Tensor, batch: torch.Tensor | None, cell: torch.Tensor | None,
             pbc: torch.Tensor | bool | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """``batch (N,)``, ``cell (B, 3, 3)`` (identity where none), ``pbc (B, 3)`` and ``B``, with clear errors."""
    n = positions.shape[0]
    if batch is None:
        batch = torch.zeros(n, dtype=torch.long, device=positions.device)
    elif not isinstance(batch, torch.Tensor) or batch.shape != (n,) or batch.dtype != torch.long:
        raise ValueError(f"neighbor_list: batch must be a long tensor of shape ({n},), got "
                         f"{getattr(batch, 'dtype', type(batch).__name__)} {tuple(getattr(batch, 'shape', ()))}")
    elif n and int(batch.min()) < 0:
        raise ValueError(f"neighbor_list: batch has a negative system index {int(batch.min())}")
    systems = int(batch.max()) + 1 if n else 0
    if systems > max(n, 1) * 2:
        raise ValueError(f"neighbor_list: batch numbers systems up to {systems - 1} for {n} atoms; number the "
                         "systems 0..B-1")
    if cell is None:
        if pbc is not None and bool(torch.as_tensor(pbc).any()):
            raise ValueError("neighbor_list: pbc needs a cell (rows: the lattice vectors)")
        eye = torch.eye(3, dtype=positions.dtype, device=positions.device)
        return batch, eye.expand(systems, 3, 3), torch.zeros(systems, 3, dtype=torch.bool,
                                                             device=positions.device), systems
    cell = torch.as_tensor(cell, dtype=positions.dtype, device=positions.device)
    if cell.shape == (3, 3):
        cell = cell.expand(systems, 3, 3)
    if cell.shape != (systems, 3, 3):
        raise ValueError(f"neighbor_list: cell must have shape (3, 3) or ({systems}, 3, 3) (one per system), got "
                         f"{tuple(cell.shape)}")
    if not bool(torch.isfinite(cell).all()):
        raise ValueError("neighbor_list: cell contains NaN or infinite values")
    pbc = torch.as_tensor(True if pbc is None else pbc, dtype=torch.bool, device=positions.device)
    if pbc.shape not in ((), (3,), (systems, 3)):
        raise ValueError(f"neighbor_list: pbc must be a bool, (3,) or ({systems}, 3), got shape {tuple(pbc.shape)}")
    pbc = pbc.expand(systems, 3) if pbc.dim() < 2 else pbc
    # A system periodic along no axis needs no cell (ASE gives molecules a zero one): bin it in Cartesian space.
    eye = torch.eye(3, dtype=positions.dtype, device=positions.device)
    cell = torch.where(pbc.any(1)[:, None, None], cell, eye)
    volume = torch.linalg.det(cell.detach()).abs()
    if systems and bool((volume <= 1e-12 * cell.detach().abs().amax((1, 2)).clamp_min(1e-300) ** 3).any()):
        raise ValueError("neighbor_list: a periodic system's cell has (nearly) zero volume: its lattice vectors are "
                         "not independent")
    return batch, cell, pbc, systems


def neighbor_list(positions: torch.Tensor, cutoff: float, *, batch: torch.Tensor | None = None,
                  cell: torch.Tensor | None = None, pbc: torch.Tensor | bool | None = None) -> Neighbors:
    """Directed pairs closer than ``cutoff`` (module docstring).

    Parameters
    ----------
    positions : ``(N, 3)`` float
        Concatenated atoms of all systems.
    cutoff : float
        Strictly positive.
    batch : ``(N,)`` long, optional
        System of each atom (default: one system).
    cell : ``(3, 3)`` or ``(B, 3, 3)``, optional
        Lattice vectors as rows. Atoms of periodic axes must lie inside the cell (fractional coordinates in
        ``[0, 1)``: wrap them first).
    pbc : bool, ``(3,)`` or ``(B, 3)``, optional
        Periodic axes; default: all, when a cell is given.

    Example
    -------
    >>> x = torch.tensor([[0.0, 0, 0], [1.0, 0, 0], [5.0, 0, 0]])
    >>> neighbor_list(x, 1.5).i.tolist()
    [0, 1]
    """
    if not isinstance(positions, torch.Tensor) or not positions.is_floating_point() or positions.dim() != 2 \
            or positions.shape[-1] != 3:
        raise ValueError(f"neighbor_list: positions must be a float tensor (N, 3), got "
                         f"{getattr(positions, 'dtype', type(positions).__name__)} "
                         f"{tuple(getattr(positions, 'shape', ()))}")
    if not isinstance(cutoff, numbers.Real) or isinstance(cutoff, bool) or not 0 < float(cutoff) < float("inf"):
        raise ValueError(f"neighbor_list: cutoff={cutoff!r} must be a finite number > 0")
    cutoff = float(cutoff)
    if not bool(torch.isfinite(positions).all()):
        raise ValueError("neighbor_list: positions contain NaN or infinite values")
    device = positions.device
    batch, cell, pbc, systems = _systems(positions, batch, cell, pbc)
    empty = torch.zeros(0, dtype=torch.long, device=device)
    if positions.shape[0] == 0:
        return Neighbors(empty, empty, torch.zeros(0, 3, dtype=torch.long, device=device))
    x = positions.detach().double()
    cell64 = cell.detach().double()
    inverse = torch.linalg.inv(cell64)  # (B, 3, 3)
    s = torch.einsum("na,nab->nb", x, inverse[batch])  # fractional coordinates
    # Distance between opposite faces of each cell: V / |a_b x a_c| = 1 / |row a of inv(cell)^T|.
    widths = 1.0 / inverse.transpose(1, 2).norm(dim=-1)  # (B, 3)
    # Fractional coordinates of wrapped atoms can land a few rounding errors outside [0, 1): tolerate them.
    tolerance = 64 * torch.finfo(positions.dtype).eps
    periodic_atom = pbc[batch]
    outside = periodic_atom & ((s < -tolerance) | (s >= 1 + tolerance))
    if bool(outside.any()):
        atom = int(outside.any(1).nonzero()[0])
        raise ValueError(f"neighbor_list: atom {atom} (system {int(batch[atom])}) lies outside its periodic cell "
                         f"(fractional coordinates {[round(float(v), 6) for v in s[atom]]}); wrap the positions into "
                         "the cell first")
    too_small = pbc & (cutoff > widths / 2 + 1e-12)
    if bool(too_small.any()):
        system, axis = (int(v) for v in too_small.nonzero()[0])
        raise ValueError(f"neighbor_list: cutoff={cutoff} is larger than half the periodic cell of system {system} "
                         f"along lattice vector {axis} (half its face distance: {float(widths[system, axis]) / 2:.6g});"
                         " the minimum-image convention needs cutoff <= half the cell: use a larger (super)cell")
    # Bins: periodic axes n = floor(w / rc) bins over [0, 1); open axes bins of width rc / w from the system's min.
    s = torch.where(periodic_atom, s.clamp(0.0, 1.0 - 1e-15), s)
    periodic_bins = torch.clamp((widths / cutoff).floor(), min=1).long()  # (B, 3)
    lowest = torch.full((systems, 3), float("inf"), dtype=torch.float64, device=device)
    lowest = lowest.scatter_reduce(0, batch[:, None].expand(-1, 3), s, "amin")
    scaled = torch.where(periodic_atom, s * periodic_bins[batch], (s - lowest[batch]) * (widths[batch] / cutoff))
    if bool((scaled > 2.0**40).any()):
        raise ValueError(f"neighbor_list: the atoms of a system spread over more than 2^40 cutoffs "
                         f"({float(scaled.max()):.3g}); is a coordinate wrong?")
    bins = scaled.floor().long()  # (N, 3)
    open_bins = torch.zeros(systems, 3, dtype=torch.long, device=device)
    open_bins = open_bins.scatter_reduce(0, batch[:, None].expand(-1, 3), bins + 1, "amax")
    n_bins = torch.where(pbc, periodic_bins, open_bins)  # (B, 3)
    size = n_bins.amax(0)  # one key space for all systems
    bins = torch.minimum(bins, n_bins[batch] - 1)

    def key(system: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return ((system * size[0] + b[..., 0]) * size[1] + b[..., 1]) * size[2] + b[..., 2]

    keys = key(batch, bins)
    order = torch.argsort(keys, stable=True)
    sorted_keys = keys[order]
    # The 27 neighbouring bins of every atom, wrapped on periodic axes (the wrap is the image shift).
    offsets = _OFFSETS.to(device)
    target = bins[:, None, :] + offsets[None]  # (N, 27, 3)
    n_atom = n_bins[batch][:, None, :]
    shift = torch.div(target, n_atom, rounding_mode="floor")
    wrapped = target - shift * n_atom
    periodic_pair = periodic_atom[:, None, :]
    valid = torch.where(periodic_pair, True, (target >= 0) & (target < n_atom)).all(-1)  # (N, 27)
    shift = torch.where(periodic_pair, shift, torch.zeros_like(shift))
    query = key(batch[:, None].expand(-1, 27), wrapped)
    start = torch.searchsorted(sorted_keys, query)
    stop = torch.searchsorted(sorted_keys, query, right=True)
    counts = torch.where(valid, stop - start, torch.zeros_like(start)).reshape(-1)
    # Expand every (atom, bin) into its candidate neighbours without a Python loop.
    source = torch.repeat_interleave(torch.arange(counts.numel(), device=device), counts)
    first = torch.cumsum(counts, 0) - counts
    rank = torch.arange(source.numel(), device=device) - first[source]
    i = torch.div(source, 27, rounding_mode="floor")
    j = order[start.reshape(-1)[source] + rank]
    shifts = shift.reshape(-1, 3)[source]
    r = x[j] - x[i] + torch.einsum("ea,eab->eb", shifts.double(), cell64[batch[i]])
    keep = (r.square().sum(-1) < cutoff * cutoff) & ~((i == j) & (shifts == 0).all(-1))
    i, j, shifts = i[keep], j[keep], shifts[keep]
    order = torch.argsort(i * (positions.shape[0] + 1) + j, stable=True)  # deterministic: by centre, neighbour
    return Neighbors(i[order], j[order], shifts[order])


def edge_vectors(positions: torch.Tensor, neighbors: Neighbors, *, batch: torch.Tensor | None = None,
                 cell: torch.Tensor | None = None) -> torch.Tensor:
    r""":math:`r_{ij} = x_j - x_i + S\,\mathrm{cell}` ``(E, 3)``, differentiable in ``positions`` and ``cell``."""
    r = positions[neighbors.j] - positions[neighbors.i]
    if cell is None:
        return r
    cell = torch.as_tensor(cell, dtype=positions.dtype, device=positions.device)
    cell = cell if cell.dim() == 3 else cell[None]
    one_cell = batch is None or cell.shape[0] == 1
    system = torch.zeros_like(neighbors.i) if one_cell else batch[neighbors.i]
    return r + torch.einsum("ea,eab->eb", neighbors.shift.to(positions.dtype), cell.to(positions.dtype)[system])
