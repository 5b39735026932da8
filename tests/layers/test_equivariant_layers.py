"""The parts of the equivariant model that are layers of their own: radial basis and cutoff, per-degree linear
maps, the gate."""

import math

import pytest
import torch

from kernelnn.layers.degree_linear import DegreeLinear
from kernelnn.layers.gate import Gate
from kernelnn.layers.radial import BesselBasis, PolynomialCutoff
from kernelnn.testing import (
    assert_compiles,
    assert_equivariant,
    assert_gradcheck,
    assert_state_dict_round_trip,
    harmonic_irreps,
)


def test_bessel_basis_formula_and_cutoff_smoothness():
    d = torch.tensor([0.3, 1.0, 2.9], dtype=torch.float64)
    basis = BesselBasis(4, cutoff=3.0).double()(d)
    n = torch.arange(1, 5, dtype=torch.float64)
    torch.testing.assert_close(basis, math.sqrt(2 / 3) * torch.sin(n * math.pi * d[:, None] / 3) / d[:, None])
    cutoff = PolynomialCutoff(2.0, p=6)
    x = torch.tensor([0.0, 1.0, 2.0, 2.5], dtype=torch.float64, requires_grad=True)
    u = cutoff(x)
    assert u[0] == 1 and u[2] == 0 and u[3] == 0 and 0 < u[1] < 1
    (g,) = torch.autograd.grad(u.sum(), x, create_graph=True)
    (g2,) = torch.autograd.grad(g.sum(), x)
    # Value, slope and curvature vanish at the cutoff: forces stay continuous when a neighbour leaves.
    assert abs(g[2]) < 1e-12 and abs(g2[2]) < 1e-10
    with pytest.raises(ValueError, match="BesselBasis: num_basis=0 must be a positive int"):
        BesselBasis(0, 1.0)
    with pytest.raises(ValueError, match="PolynomialCutoff: cutoff=-1.0 must be positive"):
        PolynomialCutoff(-1.0)


@pytest.mark.parametrize("classes", [1, 2])
def test_degree_linear_is_equivariant_and_biases_scalars_only(classes):
    torch.manual_seed(0)
    layer = DegreeLinear(3, 4, 5, classes).double()
    with torch.no_grad():
        layer.bias.normal_()
    x = torch.randn(6, 4, classes, 16, dtype=torch.float64)
    # Features (..., channels, classes, 16): class 0 transforms like the harmonics, class 1 with the other parity.
    assert_equivariant(layer, harmonic_irreps(3, classes), harmonic_irreps(3, classes), inputs=(x,))
    zero = layer(torch.zeros(1, 4, classes, 16, dtype=torch.float64))
    assert (zero[..., 0, 0] == layer.bias).all() and zero[..., 0, 1:].abs().max() == 0
    if classes == 2:
        assert zero[..., 1, :].abs().max() == 0
    assert_gradcheck(layer, torch.randn(2, 4, classes, 16, dtype=torch.float64))
    assert_state_dict_round_trip(lambda: DegreeLinear(3, 4, 5, classes), x.float())
    with pytest.raises(ValueError, match=r"DegreeLinear: input must have shape \(\.\.\., 4, 2, 16\)"):
        DegreeLinear(3, 4, 5, 2)(torch.randn(2, 4, 16))


@pytest.mark.parametrize("classes", [1, 2])
def test_gate_is_equivariant(classes):
    torch.manual_seed(0)
    gate = Gate(2, 3, classes).double()
    x = torch.randn(5, 3, classes, 9, dtype=torch.float64)
    assert_equivariant(gate, harmonic_irreps(2, classes), harmonic_irreps(2, classes), inputs=(x,))
    out = gate(x)
    torch.testing.assert_close(out[..., 0, 0], torch.nn.functional.silu(x[..., 0, 0]))
    if classes == 2:
        torch.testing.assert_close(out[..., 1, 0], torch.tanh(x[..., 1, 0]))  # odd: keeps the pseudoscalar odd
    assert_gradcheck(gate, torch.randn(2, 3, classes, 9, dtype=torch.float64))
    assert_compiles(gate, x, fullgraph=True, rtol=1e-7, atol=1e-7)
    assert Gate(0, 3)(torch.randn(2, 3, 1, 1)).shape == (2, 3, 1, 1)
    with pytest.raises(ValueError, match=r"Gate: input must have shape \(\.\.\., 3, 1, 9\)"):
        Gate(2, 3)(torch.randn(2, 3, 2, 9))
