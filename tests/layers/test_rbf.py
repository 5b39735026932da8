import pytest
import torch

from kernelnn.layers import RBFLayer, plot_rbf_interpretation
from kernelnn.testing import assert_autocast, assert_compiles, assert_gradcheck, assert_state_dict_round_trip

VARIANTS = [("full", True, None), ("diagonal", True, None), ("scalar", True, None), ("full", False, None),
            ("full", False, 2), ("diagonal", False, None), ("scalar", False, None)]


def randomized(layer, seed=0):
    """Non-trivial precisions, so every entry of L matters."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        layer.factor.add_(0.3 * torch.randn(layer.factor.shape, generator=generator))
    return layer


@pytest.mark.parametrize("precision, shared, rank", VARIANTS)
def test_basis_is_the_gaussian_of_the_quadratic_form(precision, shared, rank):
    torch.manual_seed(0)
    layer = randomized(RBFLayer(5, 7, precision=precision, shared=shared, rank=rank, chunk_size=3)).double()
    x = torch.randn(11, 5, dtype=torch.float64)
    p = layer.precision_matrix()
    diff = x[:, None, :] - layer.centers[None]  # the (samples, centres, dims) reference the layer never builds
    quadratic = torch.einsum("nmd,de,nme->nm" if shared else "nmd,mde,nme->nm", diff, p, diff)
    torch.testing.assert_close(layer(x), torch.exp(-0.5 * quadratic))
    if precision == "full" and rank is None:  # P = L L^T with L lower-triangular
        factor = layer.cholesky_factor()
        assert torch.equal(factor, factor.tril())
        if not shared:  # chunked == one chunk
            layer.chunk_size = 7
            torch.testing.assert_close(layer(x), torch.exp(-0.5 * quadratic))


def test_weighted_sum_and_leading_dims():
    layer = RBFLayer(4, 6, out_features=3, bias=True)
    x = torch.randn(2, 5, 4)
    basis = RBFLayer(4, 6)
    basis.load_state_dict({k: v for k, v in layer.state_dict().items() if not k.startswith("linear")})
    torch.testing.assert_close(layer(x), basis(x) @ layer.linear.weight.T + layer.linear.bias)
    assert layer(x).shape == (2, 5, 3)


@pytest.mark.parametrize("shared", [True, False])
def test_gradcheck(shared):
    layer = randomized(RBFLayer(3, 4, out_features=2, shared=shared, chunk_size=3)).double()
    assert_gradcheck(layer, torch.randn(5, 3, dtype=torch.float64))  # input and every parameter


def test_state_dict_compile_autocast():
    assert_state_dict_round_trip(lambda: randomized(RBFLayer(4, 6, out_features=2)), torch.randn(3, 4))
    layer = randomized(RBFLayer(4, 6, out_features=2))
    x = torch.randn(8, 4)
    assert_compiles(layer, x, rtol=1e-5, atol=1e-6)
    assert_autocast(layer, x, rtol=2e-2)


def test_eigen_decomposition_and_feature_importance():
    layer = randomized(RBFLayer(5, 3)).double()
    values, vectors = layer.active_subspace(2)
    p = layer.precision_matrix()
    torch.testing.assert_close(p @ vectors, vectors * values)
    assert values[0] >= values[1] >= torch.linalg.eigvalsh(p)[-3]
    importance = layer.feature_importance()
    all_values, all_vectors = layer.active_subspace()
    torch.testing.assert_close(importance, all_vectors.abs() @ all_values / (all_vectors.abs() @ all_values).sum())
    torch.testing.assert_close(importance.sum(), torch.tensor(1.0, dtype=torch.float64))


def test_recovers_a_planted_active_subspace(tmp_path):
    """f(x) = sin(2 a.x) varies only along a: P's leading eigenvector must align with a, and the inputs a
    weights most must rank first."""
    torch.manual_seed(0)
    a = torch.tensor([0.8, -0.6, 0.0, 0.0, 0.0, 0.0])
    x = torch.rand(512, 6) * 2 - 1
    y = torch.sin(2 * x @ a)[:, None]
    layer = RBFLayer(6, n_centers=24, out_features=1)
    layer.init_centers(x)
    optimizer = torch.optim.Adam(layer.parameters(), lr=2e-2)
    for _ in range(300):
        optimizer.zero_grad()
        loss = (layer(x) - y).square().mean()
        loss.backward()
        optimizer.step()
    assert loss < 0.02
    _, vectors = layer.active_subspace(1)
    assert torch.abs(vectors[:, 0] @ a) > 0.99
    assert set(torch.argsort(layer.feature_importance(), descending=True)[:2].tolist()) == {0, 1}
    assert plot_rbf_interpretation(layer, tmp_path / "rbf.png").stat().st_size > 0


def test_init_centers_and_fixed_centers():
    x = torch.cat([torch.randn(50, 2) * 0.1 + 5, torch.randn(50, 2) * 0.1 - 5])
    layer = RBFLayer(2, 2, trainable_centers=False)
    layer.init_centers(x)
    assert "centers" not in dict(layer.named_parameters()) and "centers" in layer.state_dict()
    found = sorted(layer.centers[:, 0].tolist())
    assert found[0] == pytest.approx(-5, abs=0.1) and found[1] == pytest.approx(5, abs=0.1)
    gap = (layer.centers[0] - layer.centers[1]).norm()  # the width is fitted to the centre spacing
    torch.testing.assert_close(layer.precision_matrix(), torch.eye(2) / gap**2)
    again = RBFLayer(2, 2)
    again.init_centers(x)
    torch.testing.assert_close(again.centers.data, layer.centers)  # seeded: the same centres every time
    random = RBFLayer(2, 3)
    random.init_centers(x, method="random")
    assert all(any(torch.equal(c, row) for row in x) for c in random.centers.data)


def test_regularization_is_the_papers_unsquared_norms():
    layer = randomized(RBFLayer(3, 4, out_features=2, regularization_weights=(0.1, 0.2, 0.3)))
    expected = (0.1 * layer.cholesky_factor().norm() + 0.2 * layer.linear.weight.norm()
                + 0.3 * layer.centers.norm())
    torch.testing.assert_close(layer.regularization(), expected)


def test_bad_arguments():
    with pytest.raises(ValueError, match="RBFLayer: precision='cholesky' is not one of"):
        RBFLayer(3, 4, precision="cholesky")
    with pytest.raises(ValueError, match="RBFLayer: n_centers=0 must be a positive int"):
        RBFLayer(3, 0)
    with pytest.raises(ValueError, match="rank=2 is for per-centre full precisions"):
        RBFLayer(3, 4, rank=2)
    with pytest.raises(ValueError, match=r"RBFLayer: input must have shape \(\.\.\., 3\), got \(2, 4\)"):
        RBFLayer(3, 4)(torch.randn(2, 4))
    with pytest.raises(ValueError, match="2 samples cannot place 4 centres"):
        RBFLayer(3, 4).init_centers(torch.randn(2, 3))
    with pytest.raises(ValueError, match="k=5 must be in 1..3"):
        RBFLayer(3, 4).active_subspace(5)
