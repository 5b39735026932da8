import pytest
import torch
from torch import nn

from kernelnn.layers import (
    QuadraticConv1d,
    QuadraticConv2d,
    QuadraticConv3d,
    QuadraticLinear,
    relinear_param_groups,
)
from kernelnn.models import FNO, MLP
from kernelnn.testing import assert_autocast, assert_compiles, assert_gradcheck, assert_state_dict_round_trip

CONVS = {1: (QuadraticConv1d, nn.Conv1d), 2: (QuadraticConv2d, nn.Conv2d), 3: (QuadraticConv3d, nn.Conv3d)}


def randomize_quadratic_terms(layer):
    with torch.no_grad():
        for p in layer.quadratic_parameters():
            p.normal_()
    return layer


def test_linear_layer_formula_and_relinear_start():
    torch.manual_seed(0)
    layer = QuadraticLinear(5, 3)
    x = torch.randn(4, 5)
    torch.manual_seed(0)
    linear = nn.Linear(5, 3)  # the same seed gives the linear path nn.Linear's own initial weights
    assert torch.equal(layer(x), linear(x))  # exactly linear at initialisation
    randomize_quadratic_terms(layer)
    wr, br, wg, bg, wb, c = (layer.r.weight, layer.r.bias, layer.g.weight, layer.g.bias, layer.b.weight,
                             layer.b.bias)
    expected = (x @ wr.T + br) * (x @ wg.T + bg) + (x * x) @ wb.T + c
    torch.testing.assert_close(layer(x), expected)
    compact = randomize_quadratic_terms(QuadraticLinear(5, 3, compact=True))
    assert compact.g is None
    expected = compact.r(x) + (x * x) @ compact.b.weight.T + compact.b.bias
    torch.testing.assert_close(compact(x), expected)


@pytest.mark.parametrize("dim", [1, 2, 3])
@pytest.mark.parametrize("padding_mode", ["zeros", "circular"])
def test_conv_equals_its_linear_conv_at_init_and_the_formula_after(dim, padding_mode):
    quad_cls, conv_cls = CONVS[dim]
    torch.manual_seed(1)
    layer = quad_cls(4, 6, kernel_size=3, stride=2, padding=1, groups=2, padding_mode=padding_mode)
    x = torch.randn(2, 4, *([7] * dim))
    torch.testing.assert_close(layer(x), layer.r(x), rtol=0, atol=0)
    conv = conv_cls(4, 6, 3, stride=2, padding=1, groups=2, padding_mode=padding_mode)
    conv.load_state_dict(layer.r.state_dict())
    assert torch.equal(layer(x), conv(x))
    randomize_quadratic_terms(layer)
    torch.testing.assert_close(layer(x), layer.r(x) * layer.g(x) + layer.b(x * x))
    assert layer(x).shape == conv(x).shape


def test_gradcheck_state_dict_compile_autocast():
    layer = randomize_quadratic_terms(QuadraticConv2d(2, 3, 3, padding=1)).double()
    x = torch.randn(2, 2, 5, 5, dtype=torch.float64)
    assert_gradcheck(layer, x)  # input and every parameter
    dense = randomize_quadratic_terms(QuadraticLinear(4, 3)).double()
    assert_gradcheck(dense, torch.randn(3, 4, dtype=torch.float64))
    assert_state_dict_round_trip(lambda: randomize_quadratic_terms(QuadraticLinear(4, 3)), torch.randn(3, 4))
    layer = layer.float()
    x = x.float()
    assert_compiles(layer, x)
    assert_autocast(layer, x)


def test_relinear_groups_are_chosen_by_layer_not_by_name():
    # A model whose ordinary layers have names containing "g." / "b." (the reference code's substrings).
    model = nn.ModuleDict({"b": nn.Linear(3, 4), "g": nn.Linear(4, 4), "q": QuadraticLinear(4, 2)})
    groups = relinear_param_groups(model, lr=0.1, quadratic_lr=1e-5)
    by_name = {g["name"]: g for g in groups}
    quad = model["q"]
    expected = {id(p) for p in (quad.g.weight, quad.g.bias, quad.b.weight, quad.b.bias)}
    assert {id(p) for p in by_name["quadratic"]["params"]} == expected and by_name["quadratic"]["lr"] == 1e-5
    linear = {id(p) for p in by_name["linear"]["params"]}
    assert linear == {id(p) for p in model.parameters()} - expected and by_name["linear"]["lr"] == 0.1
    torch.optim.SGD(groups, lr=0.1, momentum=0.9)  # the groups are valid optimizer input
    with pytest.raises(ValueError, match="has no quadratic layer"):
        relinear_param_groups(nn.Linear(2, 2), 0.1, 1e-5)


def test_shrinkage_regularization():
    layer = randomize_quadratic_terms(QuadraticLinear(4, 3, shrinkage=(0.5, 2.0)))
    expected = 0.5 * layer.g.weight.square().sum() + 2.0 * layer.b.weight.square().sum()
    torch.testing.assert_close(layer.regularization(), expected)
    assert QuadraticLinear(4, 3).regularization() == 0


def test_neuron_is_chosen_by_name_in_models():
    mlp = MLP(6, 3, hidden=[8, 8], neuron="quadratic")
    assert [type(m).__name__ for m in mlp.net if not isinstance(m, nn.ReLU)] == [
        "QuadraticLinear", "QuadraticLinear", "Linear"]
    fno = FNO(1, 1, n_modes=(3, 3), hidden_channels=4, n_layers=2, projection_channels=8,
              channel_mlp={"neuron": "quadratic", "expansion": 2.0})
    assert sum(isinstance(m, QuadraticLinear) for m in fno.modules()) == 3  # projection + two channel MLPs
    assert fno(torch.randn(2, 1, 8, 8)).shape == (2, 1, 8, 8)
    with pytest.raises(ValueError, match="MLP: neuron='cubic' is not a known neuron; valid: .*quadratic, rbf"):
        MLP(6, 3, neuron="cubic")


def test_bad_arguments():
    with pytest.raises(ValueError, match="QuadraticLinear: in_features=0 must be a positive int"):
        QuadraticLinear(0, 3)
    with pytest.raises(ValueError, match=r"QuadraticLinear: input must have shape \(\.\.\., 4\), got \(2, 5\)"):
        QuadraticLinear(4, 3)(torch.randn(2, 5))
    with pytest.raises(ValueError, match="QuadraticConv2d: input must have shape \\(batch, 3, n, n\\)"):
        QuadraticConv2d(3, 4, 3)(torch.randn(2, 2, 8, 8))
    with pytest.raises(ValueError, match="must be divisible by groups=2"):
        QuadraticConv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="QuadraticLinear: shrinkage=\\(-1, 0\\) must be two numbers >= 0"):
        QuadraticLinear(4, 3, shrinkage=(-1, 0))
