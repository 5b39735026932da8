import numpy as np
import pytest
import torch

from kernelnn.data import make_darcy, solve_darcy
from kernelnn.data.darcy import darcy_coefficients


def apply_stencil(a: np.ndarray, u: np.ndarray) -> np.ndarray:
    """-div(a grad u) at interior nodes, written out face by face (independent of the sparse assembly)."""
    n = a.shape[0] - 1
    h = 1.0 / n
    c = a[1:-1, 1:-1]
    flux = np.zeros_like(c)
    for shift in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        nb = (slice(1 + shift[0], n + shift[0]), slice(1 + shift[1], n + shift[1]))
        face = 0.5 * (c + a[nb])
        flux += face * (u[1:-1, 1:-1] - u[nb])
    return flux / h**2


@pytest.mark.parametrize("n", [16, 33])
def test_solution_satisfies_discrete_equations(n):
    gen = torch.Generator().manual_seed(3)
    a = darcy_coefficients(3, n, (12.0, 3.0), 2.0, 3.0, 32, gen).numpy()
    assert set(np.unique(a)) == {3.0, 12.0}
    for sample in a:
        u = solve_darcy(sample)
        assert np.all(u[0] == 0) and np.all(u[-1] == 0) and np.all(u[:, 0] == 0) and np.all(u[:, -1] == 0)
        residual = apply_stencil(sample, u) - 1.0
        assert np.abs(residual).max() <= 1e-8


def test_solver_matches_constant_coefficient_limit():
    """For a = 1 the scheme is the 5-point Laplacian; its solution approaches the series solution of -lap u = 1."""
    n = 64
    u = solve_darcy(np.ones((n + 1, n + 1)))
    # Centre value of -lap u = 1 on the unit square with zero boundary: 0.0736713532814...
    assert abs(u[n // 2, n // 2] - 0.07367135328) < 1e-4


def test_bundle_shapes_subsampling_and_cache(tmp_path):
    kw = dict(resolution=8, test_resolutions=[8, 16], n_train=5, n_val=2, n_test=3, cache_dir=str(tmp_path))
    bundle = make_darcy(**kw)
    assert bundle.train.tensors[0].shape == (5, 1, 8, 8)
    assert bundle.val.tensors[1].shape == (2, 1, 8, 8)
    assert set(bundle.tests) == {"test_8", "test_16"}
    coarse, fine = bundle.tests["test_8"].tensors, bundle.tests["test_16"].tensors
    torch.testing.assert_close(coarse[0], fine[0][..., ::2, ::2])  # same samples, exact subsample
    torch.testing.assert_close(coarse[1], fine[1][..., ::2, ::2])
    assert len(list(tmp_path.glob("darcy-*.pt"))) == 1
    again = make_darcy(**kw)  # from the cache: identical
    torch.testing.assert_close(again.train.tensors[1], bundle.train.tensors[1], rtol=0, atol=0)
    fresh = make_darcy(**{**kw, "cache": False})  # regenerated: deterministic given the seed
    torch.testing.assert_close(fresh.train.tensors[1], bundle.train.tensors[1], rtol=0, atol=0)
    other = make_darcy(**{**kw, "seed": 1})
    assert not torch.equal(other.train.tensors[0], bundle.train.tensors[0])


def test_corrupt_cache_is_regenerated(tmp_path):
    kw = dict(resolution=8, test_resolutions=[8], n_train=2, n_val=0, n_test=1, cache_dir=str(tmp_path))
    good = make_darcy(**kw)
    (cache_file,) = tmp_path.glob("darcy-*.pt")
    cache_file.write_bytes(b"not a checkpoint")
    torch.testing.assert_close(make_darcy(**kw).train.tensors[0], good.train.tensors[0])


def test_bad_parameters():
    with pytest.raises(ValueError, match=r"data.solve_resolution=24 .* \[16\] do not"):
        make_darcy(resolution=8, test_resolutions=[8, 16], solve_resolution=24, cache=False)
    with pytest.raises(ValueError, match="data.n_train=0"):
        make_darcy(n_train=0, cache=False)
    with pytest.raises(ValueError, match="data.resolution=2"):
        make_darcy(resolution=2, cache=False)
