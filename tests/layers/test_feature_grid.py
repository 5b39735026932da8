"""Feature grids: (bi/tri)linear reads of node values, exact on linear functions, and named bad input."""

import pytest
import torch

from kernelnn.layers import FeatureGrid
from kernelnn.testing import assert_gradcheck


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_linear_node_values_are_read_exactly_anywhere(dim):
    """Node values a + b . x (x the node's coordinates in [-1, 1]^d) interpolate to a + b . x at every point."""
    torch.manual_seed(0)
    grid = FeatureGrid(dim, resolutions=(3, 6), channels=(1, 2)).double()
    a, b = torch.randn(3, dtype=torch.float64), torch.randn(3, dim, dtype=torch.float64)
    with torch.no_grad():
        start = 0
        for level, r in zip(grid.levels, grid.resolutions, strict=True):
            axes = torch.meshgrid(*[torch.linspace(-1, 1, r, dtype=torch.float64)] * dim, indexing="ij")
            nodes = torch.stack(axes, -1)  # (r, ..., r, dim)
            values = a[start:start + level.shape[1]] + nodes @ b[start:start + level.shape[1]].T
            level.copy_(values.movedim(-1, 0).reshape(level.shape))
            start += level.shape[1]
    x = torch.rand(50, dim, dtype=torch.float64) * 2 - 1
    torch.testing.assert_close(grid(x), a + x @ b.T)


def test_gradcheck_and_leading_dims():
    torch.manual_seed(0)
    grid = FeatureGrid(2, resolutions=(3, 4), channels=2).double()
    x = (torch.rand(5, 2, dtype=torch.float64) * 1.8 - 0.9)
    assert_gradcheck(grid, x)
    assert grid(torch.zeros(3, 4, 2, dtype=torch.float64)).shape == (3, 4, 4)


@pytest.mark.parametrize(("build", "x", "message"), [
    (lambda: FeatureGrid(4), None, r"FeatureGrid: dim=4 must be 1, 2 or 3"),
    (lambda: FeatureGrid(2, resolutions=(8, 1)), None, r"every level needs at least 2 nodes"),
    (lambda: FeatureGrid(2, resolutions=(8, 16), channels=(2,)), None, r"must be non-empty and of equal length"),
    (lambda: FeatureGrid(2), torch.tensor([[0.5, 1.5]]),
     r"FeatureGrid: input coordinate 1.5 is outside the domain \[-1, 1\]\^2 the field is built on \(1 of 1 points\)"),
    (lambda: FeatureGrid(2), torch.zeros(4, 3), r"FeatureGrid: input must have shape \(\.\.\., 2\)"),
])
def test_bad_arguments_and_input_are_named(build, x, message):
    with pytest.raises(ValueError, match=message):
        build()(x)
