import pytest
import torch

from kernelnn.data import random_rotations
from kernelnn.data.tetris import SHAPES, tetris_shapes
from kernelnn.layers import gaunt_tensor_product
from kernelnn.models import EquivariantNet
from kernelnn.models.equivariant import Edges
from kernelnn.testing import (
    assert_autocast,
    assert_equivariant,
    assert_gradcheck,
    assert_state_dict_round_trip,
    equivariance_error,
    harmonic_irreps,
)


def energy_net(**kwargs):
    options = dict(output="energy_forces", L=2, channels=8, layers=2, parities="sphere", cutoff=3.0,
                   avg_neighbors=6.0)
    return EquivariantNet(1, **{**options, **kwargs})


def cluster(batch=4, n=7, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return (1.2 * torch.randn(batch, n, 3, generator=g, dtype=torch.float64)).to(dtype)


def rotations(n, seed=1, dtype=torch.float32):
    return random_rotations(n, torch.Generator().manual_seed(seed), dtype)


def split(out, n):
    return out[:, 0], out[:, 1:].reshape(len(out), n, 3)


def test_shapes():
    x = cluster()
    assert EquivariantNet(5, L=1, channels=4, layers=1)(x).shape == (4, 5)
    assert energy_net()(x).shape == (4, 1 + 3 * 7)
    assert energy_net(forces=False)(x).shape == (4, 1)


@pytest.mark.parametrize("parities", ["sphere", "all"])
def test_invariant_output_under_rotation_translation_permutation_float32(parities):
    torch.manual_seed(0)
    net = EquivariantNet(6, L=2, channels=8, layers=2, parities=parities, avg_neighbors=4.0)
    x = cluster()
    R = rotations(len(x))
    moved = x @ R.transpose(1, 2) + torch.randn(len(x), 1, 3)
    moved = moved[:, torch.randperm(x.shape[1])]
    out = net(x)
    assert out.abs().max() > 1e-2
    assert (net(moved) - out).abs().max() / out.abs().max() < 1e-5


def test_energy_invariant_and_forces_equivariant_float32():
    torch.manual_seed(0)
    net = energy_net(energy_shift=-2.5, energy_scale=4.0)
    x = cluster()
    R = rotations(len(x))
    energy, forces = split(net(x), 7)
    energy_r, forces_r = split(net(x @ R.transpose(1, 2) + 0.7), 7)
    assert (energy_r - energy).abs().max() / energy.abs().max() < 1e-5
    expected = forces @ R.transpose(1, 2)
    assert forces.abs().max() > 1e-2
    assert (forces_r - expected).abs().max() / forces.abs().max() < 1e-5


def test_forces_are_minus_the_energy_gradient_float64():
    torch.manual_seed(0)
    net = energy_net().double()
    x = cluster(batch=2, dtype=torch.float64)
    _, forces = split(net(x), 7)
    eps = 1e-6
    for atom, axis in [(0, 0), (3, 1), (6, 2)]:
        step = torch.zeros_like(x)
        step[:, atom, axis] = eps
        e_plus, e_minus = net(x + step)[:, 0], net(x - step)[:, 0]
        torch.testing.assert_close(-(e_plus - e_minus) / (2 * eps), forces[:, atom, axis], rtol=1e-6, atol=1e-8)


def test_forces_are_differentiable_in_training_and_plain_under_no_grad():
    net = energy_net()
    x = cluster()
    out = net(x)
    assert out.requires_grad  # the force loss reaches the parameters (double backward)
    out[:, 1:].square().sum().backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)
    with torch.no_grad():
        assert not net(x).requires_grad


def test_pseudo_class_flips_under_inversion_and_features_are_equivariant_under_rotoinversions():
    """Point features: class 0 transforms with D(M) (parity (-1)^l), class 1 with det(M) D(M)."""
    torch.manual_seed(0)
    net = EquivariantNet(3, L=2, channels=6, layers=2, parities="all", avg_neighbors=3.0).double()
    x = cluster(batch=2, n=5, dtype=torch.float64)
    mask = torch.ones(2, 5, dtype=torch.bool)
    h = net.features(x, mask)
    assert h[..., 1, :].abs().max() > 1e-8  # the pseudovector seed makes the pseudo class non-zero
    # Positions are vectors (1o), the mask is left alone; features (..., classes=2, 9) flatten to 18 components.
    assert_equivariant(net.features, ["1o", None], harmonic_irreps(2, classes=2), inputs=(x, mask))


def test_tetris_mirror_images_need_the_pseudo_class():
    shapes, _ = tetris_shapes(torch.float64)
    chiral = shapes[[list(SHAPES).index("chiral_1"), list(SHAPES).index("chiral_2")]]
    # chiral_2 is chiral_1 reflected in the xz-plane: the same up to a rotoinversion, not a rotation.
    mirror = chiral[0] * torch.tensor([1.0, -1.0, 1.0], dtype=torch.float64)
    torch.testing.assert_close(mirror, chiral[1])
    torch.manual_seed(0)
    sphere = EquivariantNet(8, L=2, channels=8, layers=2, parities="sphere", avg_neighbors=3.0).double()
    out = sphere(chiral)
    assert (out[0] - out[1]).abs().max() < 1e-12  # blind to mirror images
    torch.manual_seed(0)
    full = EquivariantNet(8, L=2, channels=8, layers=2, parities="all", avg_neighbors=3.0).double()
    pseudoscalars = full.features(chiral, torch.ones(2, 4, dtype=torch.bool))[..., 1, 0]
    assert pseudoscalars.abs().max() > 1e-9
    torch.testing.assert_close(pseudoscalars[0], -pseudoscalars[1])  # opposite signs: told apart


def test_convolution_equals_sum_of_gaunt_products_over_neighbours():
    torch.manual_seed(0)
    net = energy_net(L=2, L_sh=3, channels=3, layers=1).double()
    conv = net.layers[0].conv
    x = cluster(batch=2, n=4, dtype=torch.float64)
    mask = torch.ones(2, 4, dtype=torch.bool)
    edges = Edges(x, mask, 2, 3, net.basis, net.cutoff)
    h = torch.randn(2, 4, 3, 1, 9, dtype=torch.float64)
    radial = conv.radial(edges.basis).unflatten(-1, (3, 4)) * (edges.weight / conv.avg_neighbors)[..., None, None]
    degrees = torch.repeat_interleave(torch.arange(4), 2 * torch.arange(4) + 1)
    filters = radial[..., degrees] * edges.harmonics[..., None, :]  # (batch, i, j, channels, 16)
    expected = torch.zeros(2, 4, 3, 9, dtype=torch.float64)
    for i in range(4):
        for j in range(4):
            if i != j:
                expected[:, i] += gaunt_tensor_product(h[:, j, :, 0], filters[:, i, j], 2, method="dense",
                                                       normalization="component")
    torch.testing.assert_close(conv(h, edges)[..., 0, :], expected, rtol=1e-10, atol=1e-12)


def test_padding_mask_changes_nothing():
    torch.manual_seed(0)
    net = energy_net()
    x = cluster(batch=2, n=5)
    padded = torch.cat([x, torch.zeros(2, 3, 3)], 1)  # three padding points, all at the origin
    mask = torch.tensor([[True] * 5 + [False] * 3] * 2)
    energy, forces = split(net(x), 5)
    energy_p, forces_p = split(net(padded, mask), 8)
    torch.testing.assert_close(energy_p, energy, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(forces_p[:, :5], forces, rtol=1e-5, atol=1e-5)
    assert torch.isfinite(forces_p).all() and (forces_p[:, 5:] == 0).all()
    invariant = EquivariantNet(4, L=1, channels=4, layers=1)
    torch.testing.assert_close(invariant(padded, mask), invariant(x), rtol=1e-5, atol=1e-6)


def test_coincident_points_and_cutoff_give_finite_values_and_gradients():
    net = energy_net(cutoff=1.0)
    x = torch.tensor([[[0.0, 0, 0], [0, 0, 0], [5.0, 0, 0]]], requires_grad=True)  # two on top; one isolated
    out = net(x)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(x.grad).all()
    assert (out[0, 7:] == 0).all()  # the isolated point feels no force


def test_gradcheck_float64():
    torch.manual_seed(0)
    net = EquivariantNet(2, L=1, channels=2, layers=1, parities="all", radial_hidden=4, readout_hidden=4,
                         num_basis=3, avg_neighbors=2.0).double()
    assert_gradcheck(net, cluster(batch=1, n=3, dtype=torch.float64))
    energy = energy_net(L=1, channels=2, layers=1, radial_hidden=4, readout_hidden=4, num_basis=3).double()
    assert_gradcheck(energy, cluster(batch=1, n=3, dtype=torch.float64))  # through the double backward


def test_torch_compile_matches_eager():
    torch.manual_seed(0)
    x = cluster()
    net = EquivariantNet(4, L=2, channels=4, layers=1)
    torch.testing.assert_close(torch.compile(net, fullgraph=True)(x), net(x), rtol=1e-4, atol=1e-5)
    energy = energy_net(channels=4, layers=1)
    compiled = torch.compile(energy)
    out = compiled(x)
    torch.testing.assert_close(out, energy(x), rtol=1e-4, atol=1e-5)
    out[:, 1:].square().sum().backward()  # a force loss needs a double backward: it runs eagerly, and works
    assert all(p.grad is not None for p in energy.parameters() if p.requires_grad)


def test_autocast_bf16_runs():
    net = energy_net(channels=4, layers=1)
    x = cluster()
    # Energies and forces (an autograd gradient) come out in float32.
    assert_autocast(net, x, output_dtype=(torch.bfloat16, torch.float32), rtol=0.1)


def test_state_dict_round_trip():
    x = cluster()
    assert_state_dict_round_trip(lambda: EquivariantNet(3, L=2, channels=4, layers=2), x)
    assert_state_dict_round_trip(lambda: energy_net(energy_shift=1.5, energy_scale=2.0), x)


def test_errors():
    with pytest.raises(ValueError, match=r"EquivariantNet: positions must have shape \(batch, n_points, 3\)"):
        EquivariantNet(2)(torch.randn(4, 3))
    with pytest.raises(ValueError, match="EquivariantNet: mask must be a bool tensor of shape"):
        EquivariantNet(2)(torch.randn(2, 4, 3), torch.ones(2, 4))
    with pytest.raises(ValueError, match="EquivariantNet: output='energy_forces' predicts one energy"):
        EquivariantNet(3, output="energy_forces")
    with pytest.raises(ValueError, match="EquivariantNet: parities='odd'"):
        EquivariantNet(3, parities="odd")
    with pytest.raises(ValueError, match="EquivariantNet: channels=0 must be an int >= 1"):
        EquivariantNet(3, channels=0)
    with pytest.raises(ValueError, match="EquivariantNet: output='forces'"):
        EquivariantNet(1, output="forces")


@pytest.mark.parametrize("parities", ["sphere", "all"])
@pytest.mark.parametrize("tensor_product", ["cg", "cp"])
def test_clebsch_gordan_and_cp_self_products(tensor_product, parities):
    """The full CG product keeps the net exactly O(3)-equivariant; the CP product up to its fit error."""
    torch.manual_seed(0)
    net = EquivariantNet(3, L=2, channels=4, layers=2, parities=parities, tensor_product=tensor_product).double()
    x = cluster(batch=2, n=5, dtype=torch.float64)
    mask = torch.ones(2, 5, dtype=torch.bool)
    classes = 2 if parities == "all" else 1
    if tensor_product == "cg":
        assert_equivariant(net.features, ["1o", None], harmonic_irreps(2, classes=classes), inputs=(x, mask))
    else:
        assert net.cp_rank is not None and net.layers[0].product.product.cp_error <= 1e-3
        error = equivariance_error(net.features, ["1o", None], harmonic_irreps(2, classes=classes), [x, mask],
                                   n_rotations=3)
        assert 1e-12 < error < 1e-3
    assert net(x).shape == (2, 3)


def test_cg_product_has_odd_paths_the_gaunt_product_lacks():
    """1o x 1o -> 1e (a cross product) is a CG path and not a Gaunt one: with all parities the CG self-product
    fills the pseudo class from sphere-class inputs alone."""
    from kernelnn.models.equivariant import ChannelwiseProduct

    product = ChannelwiseProduct(1, channels=2, classes=2, kind="cg", rank=None).double()
    m = torch.zeros(3, 2, 2, 4, dtype=torch.float64)
    m[..., 0, 1:] = torch.randn(3, 2, 3, dtype=torch.float64)  # vectors only
    out = product(m, m)
    assert out[..., 1, :].abs().max() < 1e-15  # a vector with itself: its cross product is zero
    m2 = m.clone()
    m2[..., 0, 1:] = torch.randn(3, 2, 3, dtype=torch.float64)
    assert product(m, m2)[..., 1, 1:].abs().max() > 1e-3  # two different vectors: a pseudovector


def test_bad_tensor_product_options():
    with pytest.raises(ValueError, match="tensor_product='tfn'; valid: gaunt, cg, cp"):
        EquivariantNet(2, tensor_product="tfn")
    with pytest.raises(ValueError, match="cp_rank=0 must be a positive int"):
        EquivariantNet(2, tensor_product="cp", cp_rank=0)
