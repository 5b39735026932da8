"""IrrepsLinear: e3nn's o3.Linear values (weights and biases copied), equivariance, errors."""

import pytest
import torch

from kernelnn.layers.irreps_linear import IrrepsLinear
from kernelnn.testing import assert_equivariant, assert_gradcheck, assert_state_dict_round_trip, default_dtype

IN, OUT = "4x0e + 2x1o + 3x1o + 1x2e + 2x0o", "3x0e + 2x1o + 1x2e + 2x2o + 1x0o"


def test_equals_e3nn():
    o3 = pytest.importorskip("e3nn.o3")
    ours = IrrepsLinear(IN, OUT, biases=True).double()
    with default_dtype(torch.float64):
        theirs = o3.Linear(IN, OUT, biases=True)
    with torch.no_grad():
        theirs.weight.copy_(ours.weight)
        ours.bias.normal_()
        theirs.bias.copy_(ours.bias)
    x = torch.randn(6, ours.irreps_in.dim, dtype=torch.float64)
    torch.testing.assert_close(ours(x), theirs(x), atol=1e-12, rtol=0)


def test_equivariant_and_differentiable():
    layer = IrrepsLinear(IN, OUT, biases=True).double()
    with torch.no_grad():
        layer.bias.normal_()
    x = torch.randn(5, layer.irreps_in.dim, dtype=torch.float64)
    assert_equivariant(layer, IN, OUT, inputs=(x,))
    assert_gradcheck(layer, x[:2])
    assert_state_dict_round_trip(lambda: IrrepsLinear(IN, OUT, biases=True), x.float())
    assert layer(x[None]).shape == (1, 5, layer.irreps_out.dim)


def test_outputs_without_inputs_are_zero_and_bias_only_on_scalars():
    layer = IrrepsLinear("2x1o", "1x0e + 1x1o + 1x2e", biases=True)
    with torch.no_grad():
        layer.bias.fill_(3.0)
    out = layer(torch.zeros(2, 6))
    assert out[:, 0].tolist() == [3.0, 3.0] and bool((out[:, 1:] == 0).all())


def test_bad_input():
    layer = IrrepsLinear(IN, OUT)
    with pytest.raises(ValueError, match=r"IrrepsLinear: input must be a float tensor \(\.\.\., 26\)"):
        layer(torch.randn(3, 20))
    with pytest.raises(ValueError, match="irreps_out='3x0q'"):
        IrrepsLinear(IN, "3x0q")
