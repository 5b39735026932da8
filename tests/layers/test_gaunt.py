"""Gaunt tensor products: dense reference, grid and 2-D Fourier methods, equivariance, errors."""

import math

import numpy as np
import pytest
import torch

from kernelnn.layers.gaunt import choose_method, gaunt_coefficients, gaunt_tensor_product
from kernelnn.layers.spherical_harmonics import spherical_harmonics
from tests.layers.test_spherical_harmonics import scipy_real_harmonics

TRIPLES = [(1, 1, 2), (2, 3, 4), (4, 4, 4), (4, 4, 8), (6, 6, 12)]
METHODS = ["grid", "sht", "fourier"]


def inputs(L1, L2, batch=(6,), dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(*batch, (L1 + 1) ** 2, generator=gen, dtype=dtype),
            torch.randn(*batch, (L2 + 1) ** 2, generator=gen, dtype=dtype))


def relative_error(a, b):
    return ((a - b).norm() / b.norm()).item()


@pytest.mark.parametrize(("L1", "L2", "L_out"), [(2, 3, 4), (4, 4, 8)])
def test_dense_coefficients_match_an_independent_quadrature(L1, L2, L_out):
    """G by our quadrature vs a different exact rule: Gauss-Legendre about the +z axis with extra nodes and a
    shifted azimuth grid, harmonics from scipy's Legendre functions."""
    degree = L1 + L2 + L_out
    nodes, weights = np.polynomial.legendre.leggauss(degree // 2 + 4)
    n_phi = degree + 5
    phi = (np.arange(n_phi) + 0.37) * 2 * np.pi / n_phi
    s = np.sqrt(1 - nodes**2)
    points = np.stack([np.outer(s, np.cos(phi)), np.outer(s, np.sin(phi)), np.outer(nodes, np.ones(n_phi))],
                      -1).reshape(-1, 3)
    w = np.outer(weights, np.full(n_phi, 2 * np.pi / n_phi)).reshape(-1)
    y1, y2, y3 = (scipy_real_harmonics(L, points) for L in (L1, L2, L_out))
    expected = np.einsum("n,ni,nj,nk->ijk", w, y1, y2, y3)
    np.testing.assert_allclose(gaunt_coefficients(L1, L2, L_out).numpy(), expected, rtol=0, atol=1e-13)


def test_selection_rules():
    g = gaunt_coefficients(3, 3, 6)
    degree = torch.repeat_interleave(torch.arange(7), 2 * torch.arange(7) + 1)
    l1, l2, l3 = degree[:16, None, None], degree[None, :16, None], degree[None, None, :]
    assert (g[(l1 + l2 + l3) % 2 == 1] == 0).all()
    assert (g[(l3 > l1 + l2) | (l3 < (l1 - l2).abs())] == 0).all()
    assert g[0, 0, 0] == pytest.approx(1 / math.sqrt(4 * math.pi))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("L1", "L2", "L_out"), TRIPLES)
def test_methods_match_dense(method, L1, L2, L_out):
    x, y = inputs(L1, L2)
    reference = gaunt_tensor_product(x, y, L_out, method="dense")
    assert relative_error(gaunt_tensor_product(x, y, L_out, method=method), reference) <= 1e-10
    x32, y32 = x.float(), y.float()
    out32 = gaunt_tensor_product(x32, y32, L_out, method=method)
    assert out32.dtype == torch.float32
    assert relative_error(out32.double(), reference) <= 1e-5


@pytest.mark.parametrize("method", ["dense", *METHODS])
def test_pointwise_product_identity_at_random_points(method):
    x, y = inputs(3, 4)
    z = gaunt_tensor_product(x, y, 7, method=method)
    points = torch.randn(25, 3, dtype=torch.float64)
    f = x @ spherical_harmonics(3, points).T
    g = y @ spherical_harmonics(4, points).T
    torch.testing.assert_close(z @ spherical_harmonics(7, points).T, f * g, rtol=1e-10, atol=1e-12)


def test_component_normalization():
    x, y = inputs(2, 2)
    z = gaunt_tensor_product(x, y, 4, normalization="component")
    points = torch.randn(20, 3, dtype=torch.float64)
    f, g = (v @ spherical_harmonics(2, points, "component").T for v in (x, y))
    torch.testing.assert_close(z @ spherical_harmonics(4, points, "component").T, f * g)


@pytest.mark.parametrize("method", ["dense", *METHODS])
def test_degrees_above_twelve(method):
    x, y = inputs(8, 7, batch=(2,))
    z = gaunt_tensor_product(x, y, 15, method=method)
    points = torch.randn(10, 3, dtype=torch.float64)
    torch.testing.assert_close(z @ spherical_harmonics(15, points).T,
                               (x @ spherical_harmonics(8, points).T) * (y @ spherical_harmonics(7, points).T),
                               rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("method", ["dense", *METHODS])
def test_leading_dimensions_broadcast(method):
    x, _ = inputs(2, 2, batch=(4, 1))
    _, y = inputs(2, 2, batch=(1, 3), seed=1)
    out = gaunt_tensor_product(x, y, 3, method=method)
    assert out.shape == (4, 3, 16)
    torch.testing.assert_close(out[2, 1], gaunt_tensor_product(x[2, 0], y[0, 1], 3, method="dense"))


# ------------------------------------------------------------------------------------------------ equivariance
def random_rotation(seed: int, dtype=torch.float64) -> torch.Tensor:
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(seed), dtype=dtype))
    q = q * torch.sign(torch.diagonal(r))
    return q if torch.det(q) > 0 else -q


def wigner_d_from_harmonics(L: int, matrix: torch.Tensor) -> torch.Tensor:
    """The representation of an orthogonal matrix on degree <= L harmonics: Y(M v) = D Y(v), solved by least
    squares on random points (exact: the harmonics span the space). Parity (-1)^l comes with det M = -1."""
    points = torch.randn(4 * (L + 1) ** 2, 3, dtype=torch.float64)
    before, after = spherical_harmonics(L, points), spherical_harmonics(L, points @ matrix.T)
    return torch.linalg.lstsq(before, after).solution.T


def e3nn_wigner_d(L: int, matrix: torch.Tensor) -> torch.Tensor:
    o3 = pytest.importorskip("e3nn.o3")
    irreps = o3.Irreps([(1, (l, (-1) ** l)) for l in range(L + 1)])
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # e3nn builds its generators in the default dtype
    try:
        return irreps.D_from_matrix(matrix)
    finally:
        torch.set_default_dtype(default)


def odd_path(x, y):
    """A product with an l1 + l2 + l3 odd path injected: the cross product of the l = 1 parts, into l = 1."""
    z = gaunt_tensor_product(x, y, 2)
    return torch.cat([z[..., :1], z[..., 1:4] + torch.linalg.cross(x[..., 1:4], y[..., 1:4]), z[..., 4:]], -1)


def equivariance_error(product, L1, L2, L_out, matrix, wigner) -> float:
    x, y = inputs(L1, L2)
    d1, d2, d3 = (wigner(L, matrix) for L in (L1, L2, L_out))
    return relative_error(product(x @ d1.T, y @ d2.T), product(x, y) @ d3.T)


@pytest.mark.parametrize("wigner", [wigner_d_from_harmonics, e3nn_wigner_d])
@pytest.mark.parametrize("method", ["dense", *METHODS])
@pytest.mark.parametrize("improper", [False, True])
def test_equivariance_under_rotations_and_rotoinversions(wigner, method, improper):
    for seed in range(3):
        matrix = random_rotation(seed) * (-1 if improper else 1)
        error = equivariance_error(lambda x, y: gaunt_tensor_product(x, y, 6, method=method), 3, 4, 6, matrix,
                                   wigner)
        assert error <= 1e-10


@pytest.mark.parametrize("wigner", [wigner_d_from_harmonics, e3nn_wigner_d])
def test_an_odd_parity_path_fails_the_rotoinversion_check(wigner):
    matrix = random_rotation(0)
    assert equivariance_error(odd_path, 1, 1, 2, matrix, wigner) <= 1e-10  # rotations cannot tell
    assert equivariance_error(odd_path, 1, 1, 2, -matrix, wigner) > 1e-2


def test_float32_equivariance():
    matrix = -random_rotation(1)
    d1, d3 = wigner_d_from_harmonics(4, matrix), wigner_d_from_harmonics(8, matrix)
    x, y = inputs(4, 4, dtype=torch.float32)
    for method in ["dense", *METHODS]:
        out = gaunt_tensor_product(x @ d1.float().T, y @ d1.float().T, 8, method=method)
        expected = gaunt_tensor_product(x, y, 8, method=method) @ d3.float().T
        assert relative_error(out, expected) <= 1e-5


# ------------------------------------------------------------------------------------------------ autograd etc.
@pytest.mark.parametrize("method", ["dense", *METHODS])
def test_gradcheck(method):
    x, y = inputs(2, 2, batch=(3,))
    assert torch.autograd.gradcheck(lambda a, b: gaunt_tensor_product(a, b, 3, method=method),
                                    (x.requires_grad_(), y.requires_grad_()))


@pytest.mark.parametrize("method", ["dense", *METHODS])
def test_torch_compile(method):
    x, y = inputs(3, 3, dtype=torch.float32)
    compiled = torch.compile(lambda a, b: gaunt_tensor_product(a, b, 4, method=method), fullgraph=True)
    torch.testing.assert_close(compiled(x, y), gaunt_tensor_product(x, y, 4, method=method), rtol=1e-5, atol=1e-5)


def test_errors():
    x, y = inputs(2, 2)
    with pytest.raises(ValueError, match="gaunt_tensor_product: x has last dimension 8, which is not"):
        gaunt_tensor_product(x[..., :8], y, 2)
    with pytest.raises(ValueError, match="gaunt_tensor_product: y has last dimension 10"):
        gaunt_tensor_product(x, torch.randn(6, 10), 2)
    with pytest.raises(ValueError, match="L_out=-1 must be an int >= 0"):
        gaunt_tensor_product(x, y, -1)
    with pytest.raises(ValueError, match="method='fft'"):
        gaunt_tensor_product(x, y, 2, method="fft")
    with pytest.raises(ValueError, match="normalization='norm'"):
        gaunt_tensor_product(x, y, 2, normalization="norm")
    with pytest.raises(TypeError, match="must be floating point"):
        gaunt_tensor_product(x.long(), y, 2)


def test_separable_transform_is_exact_at_high_degree():
    """The O(L^3) route ("sht") against the dense-grid one at degrees where "auto" picks it (float64, 1e-10)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 29 ** 2, generator=g, dtype=torch.float64)
    y = torch.randn(3, 21 ** 2, generator=g, dtype=torch.float64)
    expected = gaunt_tensor_product(x, y, 30, method="grid")
    torch.testing.assert_close(gaunt_tensor_product(x, y, 30, method="sht"), expected, atol=1e-10 *
                               float(expected.abs().max()), rtol=0)
    assert choose_method(28, 20, 30, torch.device("cpu")) == "sht" and choose_method(8, 8, 8, x.device) == "grid"
