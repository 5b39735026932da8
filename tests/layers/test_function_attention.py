"""Attention as an integral over the domain: its output converges as the grid is refined, quadrature included."""

import math

import pytest
import torch

from kernelnn.layers import FunctionAttention


def grid(n):
    return torch.arange(n, dtype=torch.float64) / n


def test_on_a_periodic_trigonometric_field_every_fine_enough_grid_gives_the_same_output():
    """The integrand is smooth and periodic, so the uniform (trapezoidal) rule converges spectrally: from 16 points
    per side on, the output at common points equals the 128-point one to round-off."""
    torch.manual_seed(0)
    attention = FunctionAttention(4, 2, heads=2).double()

    def field(n):
        x, y = torch.meshgrid(grid(n), grid(n), indexing="ij")
        return torch.stack([torch.sin(2 * math.pi * x), torch.cos(2 * math.pi * y),
                            torch.sin(2 * math.pi * (x + y)), torch.ones_like(x)])[None]

    reference = attention(field(128))
    errors = [((attention(field(n)) - reference[..., :: 128 // n, :: 128 // n]).norm() /
               reference[..., :: 128 // n, :: 128 // n].norm()).item() for n in (8, 16, 32, 64)]
    assert errors[0] < 1e-6 and max(errors[1:]) < 1e-12, errors


def test_quadrature_weights_make_a_graded_grid_agree_with_a_fine_uniform_one():
    """On a non-uniform grid the weights matter: with trapezoid weights a graded grid converges to the integral,
    without them it converges to a differently weighted average."""
    torch.manual_seed(0)
    attention = FunctionAttention(2, 1, heads=1).double()

    def field(x):
        return torch.stack([torch.exp(x), torch.sin(3 * x)])[None]

    def trapezoid(x):
        dx = torch.diff(x)
        return torch.cat([dx[:1], dx[1:] + dx[:-1], dx[-1:]]) / 2

    fine = torch.linspace(0, 1, 4001, dtype=torch.float64)
    at = torch.unique((4000 * torch.linspace(0, 1, 201, dtype=torch.float64) ** 2).round().long())
    graded = fine[at]  # fine-grid points that crowd near 0
    weighted = attention(field(graded), trapezoid(graded))
    unweighted = attention(field(graded))
    reference = attention(field(fine), trapezoid(fine))[0][:, at]
    error = lambda out: ((out[0] - reference).norm() / reference.norm()).item()  # noqa: E731
    assert error(weighted) < 1e-3 < 0.05 < error(unweighted)


@pytest.mark.parametrize(("v", "quadrature", "message"), [
    (torch.randn(2, 3, 8, 8), None, r"input must have shape \(batch, 4, n, n\), got \(2, 3, 8, 8\)"),
    (torch.randn(2, 4, 8, 8), torch.ones(8, 7), r"quadrature must be positive weights of shape \(8, 8\)"),
    (torch.randn(2, 4, 8, 8), -torch.ones(8, 8), r"quadrature must be positive weights"),
    (torch.ones(2, 4, 8, 8, dtype=torch.long), None, r"FunctionAttention: input dtype must be floating point"),
])
def test_bad_input_names_the_argument(v, quadrature, message):
    with pytest.raises((TypeError, ValueError), match=message):
        FunctionAttention(4, 2)(v, quadrature)
