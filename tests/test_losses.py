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
