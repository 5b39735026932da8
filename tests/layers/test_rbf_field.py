"""Gaussian RBFNet fields: the Gaussians in feature space equal a dense reference, chunking changes nothing, and
the layer has the size of the authors' image model."""

import pytest
import torch

from kernelnn.layers import RBFField
from kernelnn.testing import assert_gradcheck


def dense_reference(field, x):
    """phi_m = exp(-1/2 (h - c_m)^T P_m (h - c_m)) through a (points, kernels, features) tensor, then the head."""
    h = field.grid(x)
    diff = h[:, None, :] - field.rbf.centers[None]
    p = field.rbf.precision_matrix()  # (M, F, F)
    q = torch.einsum("nmf,mfg,nmg->nm", diff, p, diff)
    return torch.exp(-0.5 * q) @ field.rbf.linear.weight.T + field.rbf.linear.bias


@pytest.mark.parametrize("shape", ["diagonal", "full"])
def test_the_field_is_the_formula(shape):
    torch.manual_seed(0)
    field = RBFField(2, 3, n_kernels=5, shape=shape, grid_resolutions=(3, 4), grid_channels=2).double()
    with torch.no_grad():
        field.rbf.factor.add_(0.3 * torch.randn_like(field.rbf.factor))
    x = torch.rand(20, 2, dtype=torch.float64) * 2 - 1
    torch.testing.assert_close(field(x), dense_reference(field, x))


def test_chunks_give_the_same_values_and_gradients():
    torch.manual_seed(0)
    field = RBFField(2, 3, n_kernels=7, grid_resolutions=(4, 8), grid_channels=2).double()
    x = torch.rand(100, 2, dtype=torch.float64) * 2 - 1
    whole = field(x)
    grads = torch.autograd.grad(whole.square().sum(), list(field.parameters()))
    field.chunk_size = 16  # 7 chunks, each checkpointed
    torch.testing.assert_close(field(x), whole)
    for a, b in zip(torch.autograd.grad(field(x).square().sum(), list(field.parameters())), grads, strict=True):
        torch.testing.assert_close(a, b)


def test_gradcheck_and_the_authors_size():
    torch.manual_seed(0)
    field = RBFField(2, 2, n_kernels=3, shape="full", grid_resolutions=(3,), grid_channels=2).double()
    assert_gradcheck(field, torch.rand(6, 2, dtype=torch.float64) * 1.8 - 0.9)
    # GNF's image model: grids 32..128 in six levels of 4, 4, 4, 2, 2, 2 features and 64 Gaussians with diagonal
    # precisions: 108,537 parameters (the authors' 108,601 include 64 unused "shifts").
    assert sum(p.numel() for p in RBFField(2, 3).parameters()) == 108_537


@pytest.mark.parametrize(("kwargs", "x", "message"), [
    ({"in_features": 4}, None, r"RBFField: in_features=4 must be 1, 2 or 3"),
    ({"shape": "scalar"}, None, r"RBFField: shape='scalar' is not one of \['diagonal', 'full'\]"),
    ({}, torch.tensor([[0.0, -1.01]]), r"RBFField: input coordinate -1.01 is outside the domain \[-1, 1\]\^2"),
    ({"grid_channels": (2, 2)}, None, r"RBFField: grid_resolutions=\[4\] and grid_channels=\[2, 2\] must be"),
])
def test_bad_arguments_and_input_are_named(kwargs, x, message):
    with pytest.raises(ValueError, match=message):
        RBFField(**{"in_features": 2, "out_features": 1, "n_kernels": 4, "grid_resolutions": (4,), "grid_channels": 2,
                    **kwargs})(x)
