"""DeepONet: the paper's form (branch x trunk + bias), its variants, queries at any points, clear errors."""

import math

import pytest
import torch

from kernelnn.models import DeepONet
from kernelnn.models.deeponet import interpolate, resample
from kernelnn.models.fno import grid_coordinates


def test_the_output_is_the_sum_of_branch_times_trunk_plus_bias():
    torch.manual_seed(0)
    model = DeepONet(16, 1, in_channels=2, out_channels=3, width=5, branch_depth=2, trunk_depth=2)
    u, y = torch.randn(4, 2, 16), torch.rand(1, 7, 1)
    b = model.branch(u.flatten(1)).view(4, 3, 5)
    t = model.trunk_activation(model.trunk(y))[0]  # (7, 5)
    expected = torch.einsum("bck,qk->bqc", b, t) + model.bias
    torch.testing.assert_close(model(u, y), expected)


def test_stacked_has_one_branch_net_per_term():
    model = DeepONet(16, 1, out_channels=2, width=3, variant="stacked")
    assert len(model.branches) == 3 and not hasattr(model, "branch")
    u = torch.randn(2, 1, 16)
    b = torch.stack([net(u.flatten(1)) for net in model.branches], -1)
    torch.testing.assert_close(model.coefficients(u), b)


def test_a_grid_input_is_answered_on_its_grid_and_at_any_resolution():
    torch.manual_seed(0)
    model = DeepONet(64, 2, width=8).double()
    u = torch.randn(3, 1, 16, 16, dtype=torch.float64)
    coarse = model(u[..., ::2, ::2])  # the sensor grid itself
    fine = model(u)  # subsampled onto the sensors: the same branch input, the trunk on the finer grid
    torch.testing.assert_close(fine[..., ::2, ::2], coarse)
    queries = grid_coordinates((16, 16), u).flatten(1).T[None]
    torch.testing.assert_close(model(u, queries).transpose(1, 2).reshape(3, 1, 16, 16), fine)


def test_queries_may_differ_per_sample():
    model = DeepONet(8, 1, width=4)
    u, y = torch.randn(2, 1, 8), torch.rand(2, 5, 1)
    out = model(u, y)
    torch.testing.assert_close(out[1:], model(u[1:], y[1:]))


def test_pod_modes_reproduce_training_outputs_spanned_by_them():
    """With as many modes as training samples, the POD basis spans every centred training output: the branch
    coefficients that reproduce them exist (least squares finds them to round-off)."""
    torch.manual_seed(0)
    y = torch.randn(6, 1, 8, 8, dtype=torch.float64)
    model = DeepONet(64, 2, width=6, variant="pod").double()
    assert model.fit_output_basis(y)
    basis = model.basis[0].flatten(1)  # (p, P)
    torch.testing.assert_close(basis @ basis.T / 64, torch.eye(6, dtype=torch.float64), atol=1e-10, rtol=0)
    centred = (y - model.mean).flatten(1)
    coeffs = torch.linalg.lstsq(basis.T, centred.T).solution.T
    torch.testing.assert_close(coeffs @ basis, centred, atol=1e-10, rtol=0)
    assert not DeepONet(64, 2, width=4).fit_output_basis(y)  # only the POD variant has a basis


def test_pod_on_another_grid_interpolates_the_modes():
    torch.manual_seed(0)
    model = DeepONet(16, 1, width=3, variant="pod").double()
    x = torch.arange(16, dtype=torch.float64) / 16
    model.fit_output_basis(torch.stack([torch.sin(2 * math.pi * k * x) for k in (1, 2, 3, 4)])[:, None])
    u = torch.randn(2, 1, 16, dtype=torch.float64)
    fine = model(torch.repeat_interleave(u, 2, dim=-1))  # sensors read every other point: the same coefficients
    torch.testing.assert_close(fine[..., ::2], model(u))


def test_interpolation_is_exact_on_linear_functions():
    for shape in ((8,), (6, 8), (4, 5, 6)):
        grid = grid_coordinates(shape, torch.zeros(1, dtype=torch.float64))
        f = 1 + sum((i + 1) * grid[i] for i in range(len(shape)))
        q = torch.rand(30, len(shape), dtype=torch.float64) * torch.tensor([(n - 1) / n for n in shape])
        torch.testing.assert_close(interpolate(f[None, None], q)[0, 0], 1 + sum((i + 1) * q[:, i] for i in
                                                                                 range(len(shape))))
    u = torch.randn(2, 3, 12, 12)
    torch.testing.assert_close(resample(u, (6, 6)), u[..., ::2, ::2])


@pytest.mark.parametrize(("args", "call", "message"), [
    ({}, lambda m: m(torch.randn(2, 1, 15)), r"DeepONet: u must be \(batch, 1, 64\) at the sensors or a grid "
                                             r"\(batch, 1, n, n\), got \(2, 1, 15\) \(built for n_sensors=64"),
    ({}, lambda m: m(torch.randn(2, 2, 8, 8)), r"got \(2, 2, 8, 8\)"),
    ({}, lambda m: m(torch.randn(2, 1, 8, 8), torch.rand(2, 5, 3)),
     r"coords must be \(batch or 1, n_queries, 2\) for a batch of 2, got \(2, 5, 3\) \(built for coord_dim=2\)"),
    ({}, lambda m: m(torch.randn(2, 1, 8, 8), torch.rand(3, 5, 2)), r"for a batch of 2, got \(3, 5, 2\)"),
    ({}, lambda m: m(torch.randn(2, 1, 64).long()), r"u must be a floating-point torch.Tensor, got torch.int64"),
    ({"n_sensors": 10}, lambda m: m(torch.randn(2, 1, 8, 8)), r"u must be \(batch, 1, 10\) at the sensors, got"),
    ({"n_sensors": 0}, None, r"DeepONet: n_sensors=0 must be a positive int"),
    ({"variant": "wide"}, None, r"DeepONet: variant='wide'; valid: unstacked, stacked, pod"),
    ({"variant": "pod", "n_outputs": 10}, None, r"n_outputs=10 is not a 2-th power"),
    ({"n_outputs": 64}, None, r"n_outputs=64 is for variant='pod' only"),
])
def test_bad_input_names_the_argument(args, call, message):
    kwargs = {"n_sensors": 64, "coord_dim": 2, "width": 4, **args}
    exception = (TypeError, ValueError)
    with pytest.raises(exception, match=message):
        model = DeepONet(**kwargs)
        call(model)
