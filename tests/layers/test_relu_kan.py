"""ReLU-KAN against the paper's formula, the authors' grid and parameter count, and its errors (the registry
tests add gradcheck, autocast, compile, state_dict and the input harness)."""

import pytest
import torch

from kernelnn.layers import ReLUKANLinear


def paper_basis(x, start, end):
    """R_i(x) = [relu(e_i - x) relu(x - s_i)]^2 16 / (e_i - s_i)^4, straight from the paper."""
    x = x[..., None]
    return (torch.relu(end - x) * torch.relu(x - start)) ** 2 * 16 / (end - start) ** 4


def test_the_basis_is_the_paper_s_on_the_authors_grid():
    grid, k = 4, 2
    layer = ReLUKANLinear(3, 2, grid_size=grid, order=k, grid_range=(0.0, 1.0)).double()
    # The authors' phases on [0, 1]: s_i = (i - k) / G, e_i = s_i + (k + 1) / G, i = 0 .. G + k - 1.
    start = (torch.arange(grid + k, dtype=torch.float64) - k) / grid
    torch.testing.assert_close(layer.start, start.expand(3, -1))
    torch.testing.assert_close(layer.end, start.expand(3, -1) + (k + 1) / grid)
    x = torch.rand(50, 3, dtype=torch.float64)
    torch.testing.assert_close(layer.basis(x), paper_basis(x, layer.start, layer.end))
    # Each bump peaks at 1 in the middle of its support; k + 1 bumps are non-zero inside the range.
    middle = ((layer.start + layer.end) / 2)[:, 3]  # the middle of bump 3 of each input
    torch.testing.assert_close(layer.basis(middle[None])[0, :, 3], torch.ones(3, dtype=torch.float64))
    assert ((layer.basis(x) > 0).sum(-1) == k + 1).float().mean() > 0.99
    # The output is one linear map of the flattened (input, bump) matrix with a bias.
    expected = layer.basis(x).flatten(1) @ layer.linear.weight.T + layer.linear.bias
    torch.testing.assert_close(layer(x), expected)


def test_parameter_count_matches_the_authors():
    """O D n + O + 2 D n per layer: the authors' 784-64-10 network at G = 3, k = 3 has 315,146."""
    layers = [ReLUKANLinear(784, 64, grid_size=3, order=3), ReLUKANLinear(64, 10, grid_size=3, order=3)]
    assert sum(p.numel() for layer in layers for p in layer.parameters()) == 315_146


def test_phases_train_or_stay():
    x = torch.rand(20, 2) * 2 - 1
    for train in (True, False):
        layer = ReLUKANLinear(2, 3, train_phases=train)
        layer(x).square().sum().backward()
        assert (layer.start.grad is not None and layer.start.grad.abs().sum() > 0) == train
        assert (layer.end.grad is not None) == train


def test_fits_a_bumpy_function():
    """The layer learns sin(5 pi x) on [0, 1] (the authors' fitting example) to small error."""
    torch.manual_seed(0)
    x = torch.rand(512, 1)
    y = torch.sin(5 * torch.pi * x)
    layer = ReLUKANLinear(1, 1, grid_size=10, order=3, grid_range=(0.0, 1.0))
    optimizer = torch.optim.Adam(layer.parameters(), 3e-3)
    for _ in range(400):
        optimizer.zero_grad()
        loss = (layer(x) - y).square().mean()
        loss.backward()
        optimizer.step()
    assert loss.item() < 1e-3  # 1.2e-4 here; the target's variance is 0.5


@pytest.mark.parametrize(("build", "message"), [
    (lambda: ReLUKANLinear(0, 3), r"ReLUKANLinear: in_features=0 must be a positive int"),
    (lambda: ReLUKANLinear(2, 3, grid_size=2.5), r"ReLUKANLinear: grid_size=2.5 must be a positive int"),
    (lambda: ReLUKANLinear(2, 3, order=-1), r"ReLUKANLinear: order=-1 must be an int >= 0"),
    (lambda: ReLUKANLinear(2, 3, grid_range=(1, 1)), r"ReLUKANLinear: grid_range=\(1, 1\) must be \(low, high\)"),
    (lambda: ReLUKANLinear(2, 3, grid_range="ab"), r"ReLUKANLinear: grid_range='ab' must be \(low, high\)"),
    (lambda: ReLUKANLinear(2, 3)(torch.rand(4, 5)),
     r"ReLUKANLinear: input must have shape \(\.\.\., 2\), got \(4, 5\)"),
])
def test_bad_arguments_are_named(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_a_kan_of_relu_kan_layers():
    from kernelnn.models import KAN

    model = KAN([2, 4, 1], layer="relu_kan", layer_options={"grid_size": 3})
    assert all(isinstance(layer, ReLUKANLinear) for layer in model.layers)
    assert model(torch.rand(5, 2)).shape == (5, 1)


@pytest.mark.parametrize("compiled", ["1", "0"])
def test_the_fused_bumps_match_autograd_of_the_formula(compiled, monkeypatch):
    """The custom backward (saving only x and the phases) against autograd of the eager formula, in x and in both
    phases, with a point on a knot; compiled kernels and the eager fallback alike."""
    monkeypatch.setenv("KERNELNN_COMPILE_BASIS", compiled)
    torch.manual_seed(0)
    layer = ReLUKANLinear(3, 2, grid_size=4, order=2).double()
    with torch.no_grad():
        layer.start.add_(0.05 * torch.randn_like(layer.start))
    x = torch.rand(40, 3, dtype=torch.float64) * 2.4 - 1.2
    x[0] = layer.start[:, 2].detach()  # exactly on a knot
    x.requires_grad_()
    grad = torch.randn(40, 3, layer.n_basis, dtype=torch.float64)
    got = torch.autograd.grad((layer.basis(x) * grad).sum(), [x, layer.start, layer.end])
    # The constant stays at the initial width once the phases move (the authors' r): autograd of the same formula.
    eager = (torch.relu(x[..., None] - layer.start) * torch.relu(layer.end - x[..., None]) * layer.scale) ** 2
    expected = torch.autograd.grad((eager * grad).sum(), [x, layer.start, layer.end])
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b)
