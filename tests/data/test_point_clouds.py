"""Generated point clouds: e3nn's tetris shapes and Lennard-Jones clusters."""

import pytest
import torch

from kernelnn.data import lennard_jones_energy_forces, make_lennard_jones, make_tetris, random_rotations
from kernelnn.data.tetris import SHAPES, tetris_shapes


def sorted_distances(points: torch.Tensor) -> torch.Tensor:
    return torch.cdist(points, points).flatten(-2).sort(-1).values


def test_random_rotations_are_rotations_and_uniform():
    R = random_rotations(20000, torch.Generator().manual_seed(0))
    torch.testing.assert_close(R @ R.transpose(1, 2), torch.eye(3, dtype=torch.float64).expand(20000, 3, 3))
    torch.testing.assert_close(torch.linalg.det(R), torch.ones(20000, dtype=torch.float64))
    # Haar measure: every entry has mean 0 and variance 1/3.
    assert R.mean(0).abs().max() < 0.02
    assert (R.square().mean(0) - 1 / 3).abs().max() < 0.02


def test_tetris_shapes_and_splits():
    shapes, labels = tetris_shapes()
    assert shapes.shape == (8, 4, 3) and labels.tolist() == list(range(8))
    # Four unit cubes each: every point has a neighbour at distance 1.
    d = torch.cdist(shapes, shapes) + 10 * torch.eye(4)
    assert torch.allclose(d.min(-1).values, torch.ones(8, 4))
    bundle = make_tetris(train_copies=2, n_val=16, n_test=40, seed=3)
    assert bundle.task == "classification" and bundle.out_channels == 8 and bundle.geometric
    x, y = bundle.train.tensors
    assert torch.equal(x, shapes.repeat(2, 1, 1)) and torch.equal(y, labels.repeat(2))
    xt, yt = bundle.tests["test"].tensors
    assert xt.shape == (40, 4, 3) and torch.equal(yt, labels.repeat(5))
    # Test copies are rigid motions (and reorderings) of their shape, and are really moved.
    torch.testing.assert_close(sorted_distances(xt), sorted_distances(shapes[yt]), atol=1e-5, rtol=0)
    assert (xt - shapes[yt]).abs().max() > 1
    # The chiral pair: same distances, opposite handedness (sign of a triple product of bond vectors).
    chiral = shapes[[list(SHAPES).index("chiral_1"), list(SHAPES).index("chiral_2")]]
    torch.testing.assert_close(sorted_distances(chiral[0]), sorted_distances(chiral[1]))
    b = chiral[:, 1:] - chiral[:, :1]
    assert (torch.linalg.det(b[0]) * torch.linalg.det(b[1])) < 0
    with pytest.raises(ValueError, match="tetris: data.train_copies=0 must be a positive int"):
        make_tetris(train_copies=0)


def test_lennard_jones_energy_and_forces():
    # Dimer at the pair minimum 2^(1/6): energy -1, no force.
    dimer = torch.tensor([[0.0, 0, 0], [2 ** (1 / 6), 0, 0]], dtype=torch.float64)
    energy, forces = lennard_jones_energy_forces(dimer)
    torch.testing.assert_close(energy, torch.tensor(-1.0, dtype=torch.float64))
    assert forces.abs().max() < 1e-12
    # Forces are minus the gradient.
    x = (1.3 * torch.randn(3, 6, 3, dtype=torch.float64)).requires_grad_()
    energy, forces = lennard_jones_energy_forces(x)
    (grad,) = torch.autograd.grad(energy.sum(), x)
    torch.testing.assert_close(forces, -grad)


def test_lennard_jones_13_icosahedron_energy():
    """The LJ13 global minimum is the Mackay icosahedron, E = -44.326801 (Wales & Doye 1997)."""
    phi = (1 + 5 ** 0.5) / 2
    vertices = torch.tensor([[0, s1, s2 * phi] for s1 in (-1, 1) for s2 in (-1, 1)]
                            + [[s1, s2 * phi, 0] for s1 in (-1, 1) for s2 in (-1, 1)]
                            + [[s2 * phi, 0, s1] for s1 in (-1, 1) for s2 in (-1, 1)], dtype=torch.float64)
    vertices = vertices / vertices.norm(dim=1, keepdim=True)
    radii = torch.linspace(1.0, 1.2, 20001, dtype=torch.float64)
    clusters = torch.cat([torch.zeros(len(radii), 1, 3, dtype=torch.float64), radii[:, None, None] * vertices], 1)
    energy, _ = lennard_jones_energy_forces(clusters)
    assert abs(energy.min().item() - (-44.326801)) < 1e-5


def test_lennard_jones_bundle(tmp_path):
    bundle = make_lennard_jones(n_atoms=6, n_train=24, n_val=4, n_test=8, sweeps=20, cache_dir=tmp_path, seed=1)
    assert bundle.task == "energy_forces" and bundle.geometric
    x, y = bundle.train.tensors
    assert x.shape == (24, 6, 3) and y.shape == (24, 1 + 18)
    energy, forces = lennard_jones_energy_forces(x.double())
    torch.testing.assert_close(y[:, 0].double(), energy, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(y[:, 1:].double(), forces.flatten(1), rtol=1e-4, atol=1e-3)
    # Equilibrated, not overlapping: no pair much closer than sigma, and bound (negative energy).
    d = torch.cdist(x, x) + 10 * torch.eye(6)
    assert d.min() > 0.8 and (y[:, 0] < 0).all()
    torch.testing.assert_close(x.mean(1), torch.zeros(24, 3), atol=1e-5, rtol=0)  # centred
    fill = bundle.model_fill
    assert fill["output"] == "energy_forces"
    assert fill["energy_shift"] == pytest.approx((y[:, 0].double() / 6).mean().item(), rel=1e-6)
    assert fill["energy_scale"] == pytest.approx(y[:, 1:].double().square().mean().sqrt().item(), rel=1e-6)
    again = make_lennard_jones(n_atoms=6, n_train=24, n_val=4, n_test=8, sweeps=20, cache_dir=tmp_path, seed=1,
                          use_cache=False)
    assert torch.equal(again.train.tensors[0], x)  # deterministic for a seed
    with pytest.raises(ValueError, match=r"lennard_jones: temperatures must satisfy 0 < data.t_min <= data.t_max"):
        make_lennard_jones(t_min=0.5, t_max=0.1)
    with pytest.raises(ValueError, match="lennard_jones: data.n_atoms=1 must be an int >= 2"):
        make_lennard_jones(n_atoms=1)
