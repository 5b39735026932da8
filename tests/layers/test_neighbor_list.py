"""neighbor_list: equal to brute force over images (open, periodic, mixed, triclinic, batched), shifts and
vectors, linear candidate counts, and errors for bad cells, atoms outside the cell and too large cutoffs."""

import itertools

import pytest
import torch

from kernelnn.layers.neighbor_list import edge_vectors, neighbor_list


def brute_force(positions, cutoff, batch=None, cell=None, pbc=None):
    """Every pair of every system over the images -2..2 of each periodic axis: a set of (i, j, shift)."""
    n = positions.shape[0]
    batch = torch.zeros(n, dtype=torch.long) if batch is None else batch
    pairs = set()
    for b in batch.unique().tolist():
        atoms = (batch == b).nonzero().flatten().tolist()
        c = None if cell is None else (cell if cell.dim() == 2 else cell[b])
        p = [False] * 3 if cell is None else ([bool(v) for v in torch.as_tensor(True if pbc is None else pbc)
                                               .expand(3)] if torch.as_tensor(True if pbc is None else pbc).dim() < 2
                                              else [bool(v) for v in pbc[b]])
        ranges = [range(-2, 3) if p[a] else range(0, 1) for a in range(3)]
        for i in atoms:
            for j in atoms:
                for s in itertools.product(*ranges):
                    if i == j and s == (0, 0, 0):
                        continue
                    shift = torch.tensor(s, dtype=positions.dtype)
                    r = positions[j] - positions[i] + (shift @ c if c is not None else 0)
                    if float(r.norm()) < cutoff:
                        pairs.add((i, j, s))
    return pairs


def as_set(nb):
    return {(int(i), int(j), tuple(int(v) for v in s)) for i, j, s in zip(nb.i, nb.j, nb.shift, strict=True)}


def test_open_clusters_of_several_systems():
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(30, 3, generator=g, dtype=torch.float64) * 2,
                   torch.randn(20, 3, generator=g, dtype=torch.float64) * 3 + 100])
    batch = torch.cat([torch.zeros(30, dtype=torch.long), torch.ones(20, dtype=torch.long)])
    nb = neighbor_list(x, 1.7, batch=batch)
    assert as_set(nb) == brute_force(x, 1.7, batch)
    assert bool((batch[nb.i] == batch[nb.j]).all())  # never across systems


@pytest.mark.parametrize("pbc", [True, (True, False, True)])
def test_periodic_triclinic_cells(pbc):
    g = torch.Generator().manual_seed(1)
    cell = torch.tensor([[4.0, 0.0, 0.0], [1.2, 3.8, 0.0], [0.5, -0.7, 4.2]], dtype=torch.float64)
    s = torch.rand(40, 3, generator=g, dtype=torch.float64)
    x = s @ cell
    nb = neighbor_list(x, 1.6, cell=cell, pbc=torch.tensor(pbc))
    assert as_set(nb) == brute_force(x, 1.6, cell=cell, pbc=torch.tensor(pbc))
    r = edge_vectors(x, nb, cell=cell)
    assert float(r.norm(dim=-1).max()) < 1.6


def test_small_cells_with_one_or_two_bins_and_mixed_systems():
    g = torch.Generator().manual_seed(2)
    cells = torch.stack([torch.eye(3, dtype=torch.float64) * 3.0, torch.diag(torch.tensor([5.0, 2.2, 7.0],
                                                                                         dtype=torch.float64))])
    s = torch.rand(25, 3, generator=g, dtype=torch.float64)
    batch = (torch.arange(25) >= 12).long()
    x = torch.einsum("na,nab->nb", s, cells[batch])
    nb = neighbor_list(x, 1.1, batch=batch, cell=cells)
    assert as_set(nb) == brute_force(x, 1.1, batch=batch, cell=cells)


def test_vectors_are_differentiable_and_pairs_symmetric():
    x = (torch.rand(30, 3, dtype=torch.float64) * 4).requires_grad_()
    cell = torch.eye(3, dtype=torch.float64) * 4
    nb = neighbor_list(x, 1.5, cell=cell)
    r = edge_vectors(x, nb, cell=cell)
    r.norm(dim=-1).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    pairs = as_set(nb)
    assert all((j, i, tuple(-v for v in s)) in pairs for i, j, s in pairs)


def test_work_grows_linearly_at_fixed_density():
    """Pairs per atom stay constant as a periodic box grows 8x (the candidate set is local)."""
    g = torch.Generator().manual_seed(3)
    per_atom = []
    for side in (6.0, 12.0):
        n = int(0.5 * side ** 3)
        x = torch.rand(n, 3, generator=g, dtype=torch.float64) * side
        nb = neighbor_list(x, 1.5, cell=torch.eye(3, dtype=torch.float64) * side)
        per_atom.append(nb.i.numel() / n)
    assert abs(per_atom[1] / per_atom[0] - 1) < 0.1


@pytest.mark.parametrize("kwargs, message", [
    ({"cutoff": 2.6, "cell": torch.eye(3) * 5}, "larger than half the periodic cell of system 0 along lattice"),
    ({"cutoff": 1.0, "cell": torch.eye(3) * 5, "positions": torch.tensor([[5.5, 0.0, 0.0]])},
     "atom 0 .* lies outside its periodic cell"),
    ({"cutoff": 0.0}, "cutoff=0.0 must be a finite number > 0"),
    ({"cutoff": 1.0, "cell": torch.zeros(3, 3)}, "zero volume"),
    ({"cutoff": 1.0, "pbc": True}, "pbc needs a cell"),
    ({"cutoff": 1.0, "batch": torch.zeros(2, dtype=torch.long)}, "batch must be a long tensor of shape"),
    ({"cutoff": 1.0, "positions": torch.full((2, 3), float("nan"))}, "NaN or infinite"),
    ({"cutoff": 1.0, "positions": torch.zeros(4, 2)}, r"positions must be a float tensor \(N, 3\)"),
])
def test_bad_input(kwargs, message):
    positions = kwargs.pop("positions", torch.rand(4, 3))
    with pytest.raises(ValueError, match=message):
        neighbor_list(positions, **kwargs)


def test_empty_and_single_atom():
    assert neighbor_list(torch.zeros(0, 3), 1.0).i.numel() == 0
    assert neighbor_list(torch.zeros(1, 3), 1.0).i.numel() == 0
    # One atom in a periodic box sees its own images when the box allows (cutoff <= half the cell).
    nb = neighbor_list(torch.zeros(1, 3), 2.0, cell=torch.eye(3) * 4.0)
    assert nb.i.numel() == 0  # images at distance 4 > 2


def test_float32_positions_wrapped_in_float32_are_accepted():
    g = torch.Generator().manual_seed(4)
    for _ in range(20):
        cell = (torch.eye(3) * 5 + torch.rand(3, 3, generator=g)).float()
        x = torch.randn(30, 3, generator=g) * 10
        x = (x @ torch.linalg.inv(cell)) % 1.0 @ cell  # float32 rounding leaves some just outside [0, 1)
        neighbor_list(x, 1.5, cell=cell)


def test_molecules_with_a_zero_cell_and_one_cell_for_many_systems():
    x = torch.tensor([[0.0, 0, 0], [1.0, 0, 0], [0.0, 0, 0], [0.0, 1.2, 0]], dtype=torch.float64)
    batch = torch.tensor([0, 0, 1, 1])
    nb = neighbor_list(x, 1.5, batch=batch, cell=torch.zeros(3, 3), pbc=False)  # as ASE gives molecules
    assert as_set(nb) == brute_force(x, 1.5, batch)
    cell = torch.eye(3, dtype=torch.float64) * 4
    nb = neighbor_list(x, 1.5, batch=batch, cell=cell)
    torch.testing.assert_close(edge_vectors(x, nb, batch=batch, cell=cell),
                               edge_vectors(x, nb, batch=batch, cell=cell.expand(2, 3, 3)))


def test_absurd_inputs_fail_clearly():
    with pytest.raises(ValueError, match="spread over more than 2\\^40 cutoffs"):
        neighbor_list(torch.tensor([[0.0, 0, 0], [-1e19, 0, 0]], dtype=torch.float64), 1.0)
    with pytest.raises(ValueError, match="number the systems 0..B-1"):
        neighbor_list(torch.zeros(4, 3), 1.0, batch=torch.tensor([0, 0, 0, 2**35]))
    with pytest.raises(ValueError, match="cell contains NaN"):
        neighbor_list(torch.rand(4, 3), 1.0, cell=torch.full((3, 3), float("nan")))
    with pytest.raises(ValueError, match=r"pbc must be a bool, \(3,\) or"):
        neighbor_list(torch.rand(4, 3), 1.0, cell=torch.eye(3) * 3, pbc=torch.tensor([True, False]))
