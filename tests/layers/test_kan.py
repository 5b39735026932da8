import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from kernelnn.layers import KANConv1d, KANConv2d, KANLinear
from kernelnn.layers.bspline import bspline_basis, uniform_grid
from kernelnn.testing import assert_autocast, assert_compiles, assert_gradcheck, assert_state_dict_round_trip


def smooth(layer):
    """Smooth spline coefficients and per-edge scales far from 1: a trained-looking layer whose every term
    matters (a grid update that forgets the scale, as efficient-kan's does, changes it by ~100%)."""
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        w = layer.spline_weight
        j = torch.arange(layer.n_basis, dtype=w.dtype).view(1, 1, -1, *([1] * (w.dim() - 3)))
        phase = 6 * torch.rand(*w.shape[:2], 1, *w.shape[3:], generator=generator, dtype=w.dtype)
        w.copy_(torch.sin(0.8 * j + phase))
        if layer.spline_scaler is not None:
            layer.spline_scaler.copy_(0.2 + 2.8 * torch.rand(layer.spline_scaler.shape, generator=generator))
    return layer


def relative_change(a, b):
    return ((a - b).norm() / b.norm()).item()


def test_basis_is_a_partition_of_unity_and_matches_a_finite_difference_derivative():
    grid = uniform_grid(3, 5, 3, -1.0, 1.0).double()
    x = (torch.rand(200, 3, dtype=torch.float64) * 2 - 1).requires_grad_()
    basis = bspline_basis(x, grid, 3)
    assert basis.shape == (200, 3, 8)
    torch.testing.assert_close(basis.sum(-1), torch.ones(200, 3, dtype=torch.float64))
    assert (basis >= 0).all()
    assert torch.autograd.gradcheck(lambda t: bspline_basis(t, grid, 3), (x[:5].detach().requires_grad_(),))


@pytest.mark.parametrize("lead", [(), (4,), (2, 3)])
def test_shapes_with_leading_dims(lead):
    layer = KANLinear(5, 7)
    assert layer(torch.rand(*lead, 5)).shape == (*lead, 7)


def test_linear_is_a_sum_of_per_edge_functions():
    # out_o = sum_i [w_oi silu(x_i) + s_oi sum_j c_oij B_j(x_i)], evaluated edge by edge
    layer = smooth(KANLinear(3, 2))
    x = torch.rand(6, 3) * 2 - 1
    basis = bspline_basis(x, layer.grid, 3)  # (6, 3, 8)
    expected = torch.zeros(6, 2)
    for o in range(2):
        for i in range(3):
            spline = (basis[:, i] * layer.spline_weight[o, i]).sum(-1) * layer.spline_scaler[o, i]
            expected[:, o] += layer.base_weight[o, i] * torch.nn.functional.silu(x[:, i]) + spline
    torch.testing.assert_close(layer(x), expected)


@pytest.mark.parametrize("scaler", [True, False])
def test_update_grid_keeps_the_function_with_and_without_the_spline_scaler(scaler):
    torch.manual_seed(0)
    layer = smooth(KANLinear(3, 4, spline_scaler=scaler))
    x = torch.rand(2000, 3) * 2 - 1
    before = layer(x)
    old_grid = layer.grid.clone()
    layer.update_grid(x)
    assert not torch.equal(layer.grid, old_grid)
    assert relative_change(layer(x), before) <= 1e-2
    if scaler:  # what efficient-kan stores: the refitted s*c as c, so s is applied twice
        bugged = smooth(KANLinear(3, 4, spline_scaler=True))
        coefficients = bugged._edge_coefficients().detach()
        bugged.update_grid(x)
        bugged.spline_weight.data = bugged.spline_weight.data * bugged.spline_scaler.data.unsqueeze(-1)
        assert relative_change(bugged(x), before) > 0.3
        assert coefficients.abs().sum() > 0


def test_update_grid_follows_skewed_data():
    layer = KANLinear(1, 1, grid_size=4)
    x = torch.rand(1000, 1) ** 3  # mass near 0
    layer.update_grid(x)
    inner = layer.grid[0, 3:-3]
    assert inner[0] < 0 and inner[-1] > 0.99 and inner[2] < 0.3  # range covers the samples; knots crowd at 0


@pytest.mark.parametrize("new_size", [10, 7])
def test_refine_keeps_the_function(new_size):
    layer = smooth(KANLinear(3, 4))
    layer.update_grid(torch.rand(500, 3) * 1.6 - 0.8)  # a non-uniform grid first
    x = torch.rand(300, 3) * 1.6 - 0.8
    before = layer(x)
    assert layer.refine(new_size) is layer
    assert layer.grid_size == new_size and layer.spline_weight.shape == (4, 3, new_size + 3)
    tolerance = 1e-5 if new_size % 5 == 0 else 1e-2  # a multiple keeps every old knot: exact
    assert relative_change(layer(x), before) <= tolerance


def test_gradcheck_float64():
    layer = smooth(KANLinear(2, 3, grid_size=3)).double()
    x = (torch.rand(4, 2, dtype=torch.float64) * 1.8 - 0.9).requires_grad_()
    assert_gradcheck(layer, x)


def test_compile_fullgraph_autocast_and_state_dict_after_refinement():
    layer = smooth(KANLinear(4, 3))
    x = torch.rand(8, 4) * 2 - 1
    assert_compiles(layer, x, fullgraph=True, rtol=1e-5, atol=1e-5)
    assert_autocast(layer, x)

    def refined():
        torch.manual_seed(0)
        return smooth(KANLinear(4, 3)).refine(9)

    assert_state_dict_round_trip(refined, x)
    fresh = KANLinear(4, 3)  # a constructor-sized layer adopts the refined grid from the state dict
    fresh.load_state_dict(refined().state_dict())
    assert fresh.grid_size == 9
    torch.testing.assert_close(fresh(x), refined()(x))


def test_regularization_is_an_upper_bound_of_the_papers_l1_and_has_gradients():
    layer = smooth(KANLinear(3, 4, regularize_l1=1.0, regularize_entropy=0.5))
    x = torch.rand(256, 3) * 2 - 1
    layer(x)
    # the paper's |phi_oi|_1 = mean_s |phi_oi(x_s)|, by explicit per-edge evaluation
    basis = bspline_basis(x, layer.grid, 3)
    phi = torch.einsum("nij,oij->nio", basis, layer.scaled_spline_weight()) + torch.nn.functional.silu(x)[
        ..., None] * layer.base_weight.T
    exact = phi.abs().mean(0)
    bound = layer.edge_l1()
    assert (bound >= exact - 1e-6).all()
    reg = layer.regularization()
    reg.backward()
    assert layer.spline_weight.grad.abs().sum() > 0 and layer.base_weight.grad.abs().sum() > 0
    with pytest.raises(RuntimeError, match="run a training forward pass"):
        KANLinear(3, 4, regularize_l1=1.0).regularization()


def test_bad_arguments():
    with pytest.raises(ValueError, match="KANLinear: grid_size=0 must be an int >= 1"):
        KANLinear(2, 3, grid_size=0)
    with pytest.raises(ValueError, match="KANLinear: spline_order=-1 must be an int >= 0"):
        KANLinear(2, 3, spline_order=-1)
    with pytest.raises(ValueError, match=r"KANLinear: input must have shape \(\.\.\., 2\), got \(4, 3\)"):
        KANLinear(2, 3)(torch.rand(4, 3))
    with pytest.raises(ValueError, match="grid_range=\\(1.0, -1.0\\) must be \\(low, high\\)"):
        KANLinear(2, 3, grid_range=(1.0, -1.0))
    with pytest.raises(ValueError, match="KANLinear: base_activation='swish' is not a known activation"):
        KANLinear(2, 3, base_activation="swish")
    with pytest.raises(ValueError, match="KANLinear.refine: new_grid_size=0"):
        KANLinear(2, 3).refine(0)


# ---------------------------------------------------------------------------------------------- KANConv
def test_conv_is_a_kan_on_every_padded_patch():
    torch.manual_seed(0)
    conv = smooth(KANConv2d(2, 3, 3, stride=2, padding=1, padding_mode="reflect"))
    x = torch.rand(2, 2, 7, 6) * 2 - 1
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1), mode="reflect")
    patches = padded.unfold(2, 3, 2).unfold(3, 3, 2)  # (n, c, ho, wo, 3, 3)
    ho, wo = patches.shape[2:4]
    values = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, 2 * 9)  # (n ho wo, c * taps)
    dense = KANLinear(18, 3)
    with torch.no_grad():  # the same edges, laid out as a dense KAN on flattened patches
        dense.grid.copy_(conv.grid.repeat_interleave(9, dim=0))
        dense.base_weight.copy_(conv.base_weight.flatten(1))
        dense.spline_weight.copy_(conv.spline_weight.permute(0, 1, 3, 4, 2).reshape(3, 18, -1))
        dense.spline_scaler.copy_(conv.spline_scaler.flatten(1))
    expected = dense(values).reshape(2, ho, wo, 3).permute(0, 3, 1, 2)
    torch.testing.assert_close(conv(x), expected, rtol=1e-5, atol=1e-5)


def test_conv_grid_update_refine_groups_and_gradcheck():
    conv = smooth(KANConv1d(4, 6, 3, padding=1, groups=2))
    x = torch.rand(3, 4, 50) * 2 - 1
    before = conv(x)
    conv.update_grid(x)
    assert relative_change(conv(x), before) <= 1e-2
    mid = conv(x)
    conv.refine(10)
    assert relative_change(conv(x), mid) <= 1e-2
    small = smooth(KANConv1d(2, 2, 3, padding=1, grid_size=3)).double()
    inp = (torch.rand(2, 2, 5, dtype=torch.float64) * 1.8 - 0.9).requires_grad_()
    assert_gradcheck(small, inp)
    with pytest.raises(ValueError, match=r"KANConv2d: input must have shape \(batch, 3, n, n\)"):
        KANConv2d(3, 4, 3)(torch.rand(1, 2, 5, 5))


# ---------------------------------------------------------------------------------------------- DDP
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, port: int, results):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        torch.manual_seed(0)  # same initial layer everywhere
        layer = smooth(KANLinear(3, 2))
        generator = torch.Generator().manual_seed(100 + rank)  # different data on every rank
        x = (torch.rand(300 + 50 * rank, 3, generator=generator) * (1 + rank)) - 1
        layer.update_grid(x)
        results[rank] = (layer.grid.clone(), layer.spline_weight.detach().clone())
    finally:
        dist.destroy_process_group()


@pytest.mark.distributed
def test_grid_update_agrees_across_ddp_ranks():
    manager = mp.Manager()
    results = manager.dict()
    mp.spawn(_ddp_worker, args=(_free_port(), results), nprocs=2, join=True)
    (grid0, w0), (grid1, w1) = results[0], results[1]
    assert torch.equal(grid0, grid1) and torch.equal(w0, w1)
    # and the grid saw both ranks' samples: rank 1's reach up to 1, rank 0's only to 0
    assert grid0[:, -4].min() > 0.95


@pytest.mark.parametrize("order", [1, 2, 3])
def test_compiled_basis_and_its_backward_match_the_eager_recursion(order):
    from kernelnn.layers.bspline import _basis, adaptive_grid

    grid = adaptive_grid(torch.rand(300, 3, dtype=torch.float64) ** 2, 6, order, 0.02, 0.01)
    x = (torch.rand(50, 3, dtype=torch.float64) * 3 - 1.5).requires_grad_()  # some outside the grid
    weights = torch.arange(grid.shape[1] - 1 - order, dtype=torch.float64)
    fast = bspline_basis(x, grid, order)
    (fast_grad,) = torch.autograd.grad((fast * weights).sum(), x)
    x_eager = x.detach().requires_grad_()
    eager = _basis(x_eager, grid, order)  # plain autograd through the recursion
    (eager_grad,) = torch.autograd.grad((eager * weights).sum(), x_eager)
    torch.testing.assert_close(fast, eager)
    torch.testing.assert_close(fast_grad, eager_grad)


def test_update_grid_refuses_non_finite_samples_and_keeps_the_grid():
    layer = KANLinear(2, 3)
    grid = layer.grid.clone()
    x = torch.randn(10, 2)
    x[3, 0] = float("nan")
    with pytest.raises(ValueError, match=r"KANLinear.update_grid: the samples hold 1 non-finite value"):
        layer.update_grid(x)
    assert torch.equal(layer.grid, grid)
