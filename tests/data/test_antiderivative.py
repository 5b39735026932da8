"""The antiderivative data: GRF inputs with the squared-exponential covariance, outputs their integrals."""

import math

import torch

from kernelnn.data import make_antiderivative
from kernelnn.data.antiderivative import antiderivative, squared_exponential_grf


def test_the_trapezoidal_antiderivative_is_second_order():
    errors = []
    for n in (100, 200, 400):
        x = torch.arange(n, dtype=torch.float64) / n
        exact = (1 - torch.cos(2 * math.pi * x)) / (2 * math.pi)
        errors.append((antiderivative(torch.sin(2 * math.pi * x), 1 / n) - exact).abs().max().item())
    assert 3.8 < errors[0] / errors[1] < 4.2 and 3.8 < errors[1] / errors[2] < 4.2


def test_grf_samples_have_the_kernel_as_covariance():
    points = torch.arange(50, dtype=torch.float64) / 50
    u = squared_exponential_grf(20_000, points, 0.2, torch.Generator().manual_seed(0))
    empirical = u.T @ u / len(u)
    kernel = torch.exp(-((points[:, None] - points[None]) ** 2) / (2 * 0.2**2))
    assert (empirical - kernel).abs().max() < 0.05  # Monte Carlo error ~ sqrt(2 / 20000) per entry


def test_bundle_shapes_and_resolutions_are_subsamples_of_one_draw():
    bundle = make_antiderivative(n_train=8, n_val=2, n_test=4, cache=False)
    x, y = bundle.train.tensors
    assert x.shape == y.shape == (8, 1, 100) and bundle.dim == 1 and not bundle.periodic
    coarse, fine = bundle.tests["test_100"].tensors, bundle.tests["test_200"].tensors
    assert torch.equal(fine[0][..., ::2], coarse[0]) and torch.equal(fine[1][..., ::2], coarse[1])
    assert torch.all(y[..., 0] == 0)  # the integral from 0 to 0
