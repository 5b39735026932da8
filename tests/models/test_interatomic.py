"""InteratomicPotential: symmetry (rotations, translations, permutations, periodic images), forces and stress
against finite differences, padding-free batching, the three tensor products, and errors."""

import io

import pytest
import torch

from kernelnn.models.interatomic import InteratomicPotential
from kernelnn.testing import assert_equivariant, random_rotation


def small(tensor_product="cg", **kwargs):
    torch.manual_seed(0)
    options = dict(L=2, channels=4, layers=2, cutoff=2.0, tensor_product=tensor_product)
    return InteratomicPotential(2, **{**options, **kwargs}).double()


def atoms(n=16, side=4.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, generator=g, dtype=torch.float64) * side, torch.randint(2, (n,), generator=g)


@pytest.mark.parametrize("tensor_product", ["cg", "gaunt"])
def test_energy_invariant_forces_equivariant_exactly(tensor_product):
    model = small(tensor_product)
    x, z = atoms()
    energy = model(x, z)["energy"]
    assert_equivariant(lambda p: model(p, z, forces=False)["energy"], "1o", "0e", inputs=(x,))
    assert_equivariant(lambda p: model(p, z)["forces"], "1o", "1o", inputs=(x,))
    perm = torch.randperm(16)
    torch.testing.assert_close(model(x[perm] + 3.0, z[perm])["energy"], energy)


def test_cp_product_is_equivariant_to_its_fit():
    model = small("cp")
    x, z = atoms()
    r = random_rotation(torch.Generator().manual_seed(5))
    with torch.no_grad():  # forces are still computed (inside the model), but returned detached
        out, moved = model(x, z), model(x @ r.T, z)
    assert model.cp_rank is not None
    assert float((moved["energy"] - out["energy"]).abs() / out["energy"].abs()) < 1e-4
    assert float((moved["forces"] - out["forces"] @ r.T).norm() / out["forces"].norm()) < 1e-3


def test_forces_and_stress_are_derivatives_of_the_energy():
    model = small("gaunt")
    x, z = atoms(n=12, side=3.5)
    cell = torch.eye(3, dtype=torch.float64) * 4.5 + torch.tensor([[0, 0.3, 0], [0, 0, 0], [0.2, 0, 0]],
                                                                   dtype=torch.float64)
    x = x @ torch.linalg.inv(cell) % 1.0 @ cell  # inside the cell
    out = model(x, z, cell=cell, stress=True)
    eps = 1e-5
    for atom, axis in ((0, 0), (5, 2)):
        d = torch.zeros_like(x)
        d[atom, axis] = eps
        fd = (model(x + d, z, cell=cell, forces=False)["energy"] - model(x - d, z, cell=cell, forces=False)["energy"])
        torch.testing.assert_close(-fd / (2 * eps), out["forces"][atom, axis:axis + 1], rtol=1e-6, atol=1e-9)
    volume = torch.linalg.det(cell).abs()
    for a, b in ((0, 0), (0, 2), (1, 2)):
        strain = torch.zeros(3, 3, dtype=torch.float64)
        strain[a, b] = strain[b, a] = eps / (1 if a == b else 2)
        e = [model(x + s * x @ strain, z, cell=cell + s * cell @ strain, forces=False)["energy"] for s in (1, -1)]
        torch.testing.assert_close((e[0] - e[1]) / (2 * eps) / volume, out["stress"][:, a, b], rtol=1e-6, atol=1e-9)


def test_periodic_images_count_translation_wraps():
    model = small("cg")
    x, z = atoms(n=10, side=4.0)
    cell = torch.eye(3, dtype=torch.float64) * 4.0
    out = model(x, z, cell=cell)
    moved = (x + torch.tensor([1.3, -0.4, 2.2], dtype=torch.float64)) % 4.0
    torch.testing.assert_close(model(moved, z, cell=cell)["energy"], out["energy"])
    assert not torch.allclose(model(x, z)["energy"], out["energy"])  # the images matter


def test_systems_batched_without_padding_equal_one_at_a_time():
    model = small("cg")
    (x1, z1), (x2, z2) = atoms(n=9, seed=1), atoms(n=14, seed=2)
    cells = torch.stack([torch.eye(3, dtype=torch.float64) * 4.0, torch.eye(3, dtype=torch.float64) * 4.5])
    batch = torch.cat([torch.zeros(9, dtype=torch.long), torch.ones(14, dtype=torch.long)])
    together = model(torch.cat([x1, x2]), torch.cat([z1, z2]), batch=batch, cell=cells, stress=True)
    for k, (x, z) in enumerate(((x1, z1), (x2, z2))):
        alone = model(x, z, cell=cells[k], stress=True)
        torch.testing.assert_close(together["energy"][k:k + 1], alone["energy"])
        torch.testing.assert_close(together["stress"][k:k + 1], alone["stress"])
        torch.testing.assert_close(together["forces"][batch == k], alone["forces"])


@pytest.mark.parametrize("tensor_product", ["cg", "gaunt", "cp"])
def test_edges_in_chunks_give_the_same_energy_forces_stress_and_training_gradient(tensor_product):
    x, z = atoms(n=20, side=4.0)
    cell = torch.eye(3, dtype=torch.float64) * 4.0
    results = []
    for chunk in (None, 7):  # 7 edges at a time: many chunks, the last one short
        model = small(tensor_product, edge_chunk=chunk)
        out = model(x, z, cell=cell, stress=True)
        (grad,) = torch.autograd.grad(out["forces"].square().sum(), model.layers[0].conv.radial[0].weight)
        results.append((out["energy"], out["forces"], out["stress"], grad))
    for whole, chunked in zip(*results, strict=True):
        torch.testing.assert_close(chunked, whole, rtol=1e-12, atol=1e-12)


def test_state_dict_round_trip_and_float32():
    x, z = atoms()
    def energies(model):
        return lambda positions, species: model(positions, species)["energy"]

    torch.manual_seed(0)
    a = InteratomicPotential(2, L=1, channels=4, layers=1, cutoff=2.0, energy_shift=[0.5, -1.0])
    b = InteratomicPotential(2, L=1, channels=4, layers=1, cutoff=2.0)
    buffer = io.BytesIO()
    torch.save(a.state_dict(), buffer)
    buffer.seek(0)
    b.load_state_dict(torch.load(buffer, weights_only=True))
    torch.testing.assert_close(energies(b)(x.float(), z), energies(a)(x.float(), z), rtol=0, atol=0)
    out = InteratomicPotential(2, L=1, channels=4, layers=1, cutoff=2.0)(x.float(), z)
    assert out["energy"].dtype == torch.float32 and out["forces"].shape == (16, 3)


@pytest.mark.parametrize("call, message", [
    (lambda m, x, z: m(x, torch.full_like(z, 2)), r"unknown species indices \[2\]; this model knows 0..1"),
    (lambda m, x, z: m(x[:, :2], z), r"positions must have shape \(N, 3\)"),
    (lambda m, x, z: m(x, z[:3]), r"species must have shape \(16,\)"),
    (lambda m, x, z: m(x, z, stress=True), "stress=True needs the cells"),
    (lambda m, x, z: m(x * 0.7, z, cell=torch.eye(3, dtype=torch.float64) * 3.0), "larger than half the periodic cell"),
    (lambda m, x, z: m(x + 10, z, cell=torch.eye(3, dtype=torch.float64) * 5.0), "outside its periodic cell"),
])
def test_bad_input(call, message):
    model = small("cg")
    x, z = atoms()
    with pytest.raises(ValueError, match=message):
        call(model, x, z)


@pytest.mark.parametrize("kwargs, message", [({"tensor_product": "tfn"}, "tensor_product='tfn'"),
                                             ({"species": 0}, "species=0"), ({"cutoff": -1.0}, "cutoff=-1.0"),
                                             ({"energy_shift": [1.0]}, "energy_shift needs 2 values"),
                                             ({"edge_chunk": 0}, "edge_chunk=0")])
def test_bad_construction(kwargs, message):
    options = {"species": 2, **kwargs}
    with pytest.raises(ValueError, match=message):
        InteratomicPotential(**options)


@pytest.mark.parametrize("tensor_product", ["cg", "gaunt"])
def test_isolated_atoms_have_zero_forces(tensor_product):
    model = small(tensor_product)
    one = model(torch.zeros(1, 3, dtype=torch.float64), torch.zeros(1, dtype=torch.long))
    assert one["energy"].shape == (1,) and bool((one["forces"] == 0).all())
    far = model(torch.tensor([[0.0, 0, 0], [9.0, 0, 0]], dtype=torch.float64), torch.zeros(2, dtype=torch.long))
    assert bool((far["forces"] == 0).all())


def test_checkpoints_carry_the_settings_the_weights_need():
    a = InteratomicPotential(1, L=1, channels=4, layers=1, cutoff=2.0)
    buffer = io.BytesIO()
    torch.save(a.state_dict(), buffer)
    buffer.seek(0)
    other = InteratomicPotential(1, L=1, channels=4, layers=1, cutoff=2.5, avg_neighbors=3.0)
    with pytest.raises(ValueError, match=r"cutoff: checkpoint 2.0, this model 2.5.*avg_neighbors"):
        other.load_state_dict(torch.load(buffer, weights_only=True))


def test_wrong_types_are_type_errors():
    model = small("cg")
    x, z = atoms()
    with pytest.raises(TypeError, match="species must be a long"):
        model(x, z.float())
    with pytest.raises(TypeError, match="positions must be a floating-point tensor, got list"):
        model(x.tolist(), z)


def test_clear_errors_for_dtype_and_inference_mode():
    model = InteratomicPotential(1, L=1, channels=4, layers=1, cutoff=2.0)
    with pytest.raises(TypeError, match="positions dtype torch.float64 does not match"):
        model(torch.zeros(2, 3, dtype=torch.float64), torch.zeros(2, dtype=torch.long))
    with torch.inference_mode(), pytest.raises(RuntimeError, match="under torch.no_grad"):
        model(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long))
    with torch.inference_mode():
        assert model(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), forces=False)["energy"].shape == (1,)
