import math

import pytest
import torch

from kernelnn.losses import H1Loss, LpLoss


def test_lp_relative_matches_manual():
    torch.manual_seed(0)
    pred, target = torch.randn(4, 2, 8, 8), torch.randn(4, 2, 8, 8)
    per_sample = (pred - target).flatten(1).norm(dim=1) / target.flatten(1).norm(dim=1)
    torch.testing.assert_close(LpLoss(reduction="none")(pred, target), per_sample)
    torch.testing.assert_close(LpLoss()(pred, target), per_sample.mean())
    torch.testing.assert_close(LpLoss(reduction="sum")(pred, target), per_sample.sum())


def test_lp_absolute_is_resolution_independent():
    for n in (16, 64):
        x = torch.arange(n, dtype=torch.float64) / n
        u = torch.sin(2 * math.pi * x)[None, None]
        # ||sin(2 pi x)||_{L2(0,1)} = 1/sqrt(2)
        torch.testing.assert_close(LpLoss(relative=False)(u, torch.zeros_like(u)),
                                   torch.tensor(2**-0.5, dtype=torch.float64))


@pytest.mark.parametrize("periodic", [True, False])
def test_h1_of_a_sine(periodic):
    n, k = 256, 2
    x = torch.arange(n, dtype=torch.float64) / n
    u = torch.sin(2 * math.pi * k * x)[None, None]
    expected = math.sqrt(0.5 * (1 + (2 * math.pi * k) ** 2))  # ||u||^2 + ||u'||^2
    value = H1Loss(relative=False, periodic=periodic)(u, torch.zeros_like(u))
    assert abs(value.item() - expected) / expected < 2e-3


def test_loss_errors():
    with pytest.raises(ValueError, match="prediction shape"):
        LpLoss()(torch.zeros(2, 1, 4), torch.zeros(2, 1, 5))
    with pytest.raises(ValueError, match="reduction='avg'"):
        LpLoss(reduction="avg")
    with pytest.raises(ValueError, match="p=0"):
        LpLoss(p=0)


from kernelnn.losses import NegativeSobolevLoss, SobolevLoss  # noqa: E402


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("n", [32, 33])
def test_negative_sobolev_of_a_sine_is_analytic(k, n):
    x = torch.arange(n, dtype=torch.float64) / n
    u = torch.sin(2 * math.pi * k * x)[None, None]
    zero = torch.zeros_like(u)
    expected = math.sqrt(0.5 / (1 + (2 * math.pi * k) ** 2))
    torch.testing.assert_close(NegativeSobolevLoss(1.0, relative=False)(u, zero).item(), expected)
    semi = NegativeSobolevLoss(1.0, relative=False, seminorm=True)(u, zero).item()
    assert abs(semi - math.sqrt(0.5) / (2 * math.pi * k)) < 1e-12  # ||.||_L2 / (2 pi |k|)
    h1 = SobolevLoss(1.0, relative=False)(u, zero).item()
    assert abs(h1 - math.sqrt(0.5 * (1 + (2 * math.pi * k) ** 2))) < 1e-9


@pytest.mark.parametrize("spatial", [(12,), (8, 9), (6, 4, 5)])
@pytest.mark.parametrize("s", [-1.5, -0.5, 0.0, 1.0])
def test_sobolev_equals_a_direct_sum_over_all_modes(spatial, s):
    torch.manual_seed(0)
    pred, target = torch.randn(3, 2, *spatial, dtype=torch.float64), torch.randn(3, 2, *spatial, dtype=torch.float64)
    dims = tuple(range(2, 2 + len(spatial)))
    e_hat = torch.fft.fftn(pred - target, dim=dims, norm="forward")  # every mode, no conjugate symmetry used
    grids = torch.meshgrid(*[torch.fft.fftfreq(n, 1.0 / n, dtype=torch.float64) for n in spatial], indexing="ij")
    weight = (1 + sum((2 * math.pi * g) ** 2 for g in grids)) ** s
    direct = (e_hat.abs() ** 2 * weight).flatten(1).sum(1).sqrt()
    torch.testing.assert_close(SobolevLoss(s, relative=False, reduction="none")(pred, target), direct)
    if s == 0.0:  # Parseval: the L2 norm
        torch.testing.assert_close(direct, LpLoss(relative=False, reduction="none")(pred, target))


def test_negative_sobolev_errors():
    with pytest.raises(ValueError, match="NegativeSobolevLoss: s=-1 must be positive"):
        NegativeSobolevLoss(-1)
    with pytest.raises(ValueError, match="inputs must be"):
        NegativeSobolevLoss()(torch.zeros(2, 3), torch.zeros(2, 3))


def test_lp_with_d_follows_neuraloperators_convention():
    torch.manual_seed(0)
    pred, target = torch.randn(3, 2, 8, 8), torch.randn(3, 2, 8, 8)
    per_channel = (pred - target).flatten(2).norm(dim=-1) / target.flatten(2).norm(dim=-1)  # (batch, channels)
    torch.testing.assert_close(LpLoss(d=2, reduction="sum")(pred, target), per_channel.sum())
    torch.testing.assert_close(LpLoss(d=2)(pred, target), per_channel.mean())
    torch.testing.assert_close(LpLoss(d=2, reduction="none")(pred, target), per_channel)
    one = slice(0, 1)  # one channel: both conventions agree, up to the reduction
    torch.testing.assert_close(LpLoss(d=2, reduction="sum")(pred[:, one], target[:, one]),
                               LpLoss(reduction="sum")(pred[:, one], target[:, one]))
    with pytest.raises(ValueError, match="LpLoss: d=0 must be a positive int"):
        LpLoss(d=0)
    with pytest.raises(ValueError, match=r"LpLoss: d=3 takes the norm over the last 3 dims, after a batch dim"):
        LpLoss(d=3)(pred[0, 0], target[0, 0])


def sphere_field(nlat, grid, fn):
    from torch_harmonics.quadrature import precompute_latitudes

    theta = torch.as_tensor(precompute_latitudes(nlat, grid)[0])
    phi = torch.arange(2 * nlat, dtype=torch.float64) * 2 * math.pi / (2 * nlat)
    return fn(theta[:, None], phi[None, :])[None, None]


@pytest.mark.parametrize("grid", ["equiangular", "legendre-gauss"])
def test_sphere_lp_integrates_with_the_area(grid):
    from kernelnn.losses import SphereLpLoss

    absolute = SphereLpLoss(grid, relative=False)
    zero = torch.zeros(1, 1, 16, 32, dtype=torch.float64)
    # the area of the sphere, and the integral of cos^2(theta) (4 pi / 3), both exact for these quadratures
    area = torch.tensor(4 * math.pi, dtype=torch.float64)
    torch.testing.assert_close(absolute(torch.ones_like(zero), zero) ** 2, area)
    field = sphere_field(16, grid, lambda t, p: torch.cos(t) * torch.ones_like(p))
    torch.testing.assert_close(absolute(field, zero) ** 2, torch.tensor(4 * math.pi / 3, dtype=torch.float64))
    # the same smooth field at two resolutions: the same relative error
    smooth = lambda t, p: torch.sin(t) ** 2 * torch.cos(p) + 1  # noqa: E731
    errors = [SphereLpLoss(grid)(1.1 * sphere_field(n, grid, smooth), sphere_field(n, grid, smooth)) for n in (16, 32)]
    torch.testing.assert_close(errors[0], errors[1])


def test_sphere_lp_does_not_over_count_the_poles():
    from kernelnn.losses import SphereLpLoss

    target = torch.ones(1, 1, 32, 64)
    polar = target.clone()
    polar[..., 0, :] += 1.0  # an error on the ring at the north pole only
    # relative error^2 = (the ring's weight) / (the sphere's 2): 0.13, where the grid mean says sqrt(1 / 32) = 0.18
    loss = SphereLpLoss("equiangular")
    ring = loss.latitude_weights(32)[0]
    torch.testing.assert_close(loss(polar, target), (ring / 2).sqrt().float())
    torch.testing.assert_close(LpLoss()(polar, target), torch.tensor(32**-0.5))
    with pytest.raises(ValueError, match="SphereLpLoss: grid='hexagonal' is not a torch-harmonics grid"):
        SphereLpLoss("hexagonal")


def test_operator_tasks_on_the_sphere_use_the_area_weighted_l2():
    from kernelnn.losses import SphereLpLoss
    from kernelnn.training.tasks import build_task

    task = build_task("operator", "auto", False, 2, sphere_grid="equiangular")
    assert isinstance(task._metrics["l2"], SphereLpLoss)
    assert isinstance(build_task("operator", "auto", False, 2)._metrics["l2"], LpLoss)


def test_sphere_lp_per_channel_weighs_channels_of_different_units_alike():
    from kernelnn.losses import SphereLpLoss

    target = torch.ones(2, 2, 8, 16)
    target[:, 0] *= 1e5  # a geopotential-like channel and a small one
    pred = target.clone()
    pred[:, 1] *= 1.5  # the small channel 50% off
    assert SphereLpLoss()(pred, target) < 1e-5  # the joint relative error hardly sees it
    torch.testing.assert_close(SphereLpLoss(per_channel=True)(pred, target), torch.tensor(0.25))
