"""AF-KAN against a loop-by-loop reading of the paper's formulas (the fast layer is tested against this reference,
gradients included), the authors' parameter count, each option's gradcheck, and its errors."""

import math

import pytest
import torch

from kernelnn.layers import AFKANLinear
from kernelnn.layers.af_kan import FUNCTIONS, FUSE_FROM
from kernelnn.testing import assert_gradcheck

FORMULAS = {  # the paper's function combinations of A = act(x - s), B = act(e - x), written out
    "quad1": lambda a, b: a * a * b * b,
    "quad2": lambda a, b: a * b + a**2 + b**2,
    "sum": lambda a, b: a + b,
    "prod": lambda a, b: a * b,
    "sum_prod": lambda a, b: a + b + a * b,
    "cubic1": lambda a, b: (a + b) * (a**2 + b**2),
    "cubic2": lambda a, b: a**3 * b**3,
}


ACTS = {"silu": lambda v: v / (1 + torch.exp(-v)), "relu": lambda v: torch.clamp(v, min=0), "tanh": torch.tanh}


def reference(layer: AFKANLinear, x: torch.Tensor) -> torch.Tensor:
    """The layer's output, one sample and one input at a time."""
    act = ACTS[layer.activation]
    n_samples, d = x.shape
    n = layer.n_basis
    phi = torch.stack([torch.stack([torch.stack([FORMULAS[layer.function](act(x[b, i] - layer.start[j]),
                                                                          act(layer.end[j] - x[b, i]))
                                                 for j in range(n)]) for i in range(d)]) for b in range(n_samples)])
    if layer.basis_norm == "minmax":
        phi = (phi - phi.min()) / (phi.max() - phi.min())
    rows = []
    for b in range(n_samples):
        if layer.attention == "none":
            z = torch.stack([phi[b, i] @ layer.score.weight[0] + layer.score.bias[0] for i in range(d)])
        else:
            tau = torch.clamp(layer.temperature, min=1.0)
            if layer.attention == "global":  # softmax across the inputs of one score per input
                scores = torch.stack([phi[b, i] @ layer.score.weight[0] + layer.score.bias[0] for i in range(d)])
                alpha = torch.softmax(scores / tau, dim=0)
                z = torch.stack([alpha[i] * phi[b, i].sum() for i in range(d)])
            else:  # spatial: per basis function, a 3-tap filter along the inputs; softmax across the functions
                kernel, bias = layer.score.weight[:, 0, :], layer.score.bias
                scores = torch.stack([torch.stack([
                    bias[j] + sum(kernel[j, t] * phi[b, i + t - 1, j] for t in range(3) if 0 <= i + t - 1 < d)
                    for j in range(n)]) for i in range(d)])  # (d, n)
                weights = torch.softmax(scores / tau, dim=1)
                z = (weights * phi[b]).sum(1)
        rows.append(z)
    z = torch.stack(rows)
    if layer.norm_kind == "layer":
        z = (z - z.mean(1, keepdim=True)) / torch.sqrt(z.var(1, unbiased=False, keepdim=True) + layer.norm.eps)
        z = z * layer.norm.weight + layer.norm.bias
    return act(z) @ layer.weight.T


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
@pytest.mark.parametrize(("attention", "activation"), [("global", "silu"), ("spatial", "relu"), ("none", "tanh")])
def test_the_layer_is_the_paper_s_formulas(function, attention, activation):
    torch.manual_seed(0)
    layer = AFKANLinear(4, 3, function=function, attention=attention, activation=activation).double()
    with torch.no_grad():  # move every parameter off its initial value, so each one matters
        for p in layer.parameters():
            p.add_(0.1 * torch.randn_like(p))
    x = torch.rand(5, 4, dtype=torch.float64) * 2.4 - 1.2
    x_ref = x.clone().requires_grad_()
    x.requires_grad_()
    out, expected = layer(x), reference(layer, x_ref)
    torch.testing.assert_close(out, expected)
    grads = torch.autograd.grad(out.square().sum(), [x, *layer.parameters()])
    expected_grads = torch.autograd.grad(expected.square().sum(), [x_ref, *layer.parameters()])
    for got, want in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(got, want)


def test_min_max_basis_norm_is_the_authors_batch_wide_rescaling():
    layer = AFKANLinear(3, 2, basis_norm="minmax").double()
    x = torch.rand(6, 3, dtype=torch.float64)
    torch.testing.assert_close(layer(x), reference(layer, x))
    phi = layer.basis(x)
    assert phi.min() == 0 and phi.max() == 1
    # A constant basis (one sample, one input, where every value is equal) gives zeros, not NaN.
    constant = AFKANLinear(1, 1, grid_size=1, order=0, basis_norm="minmax")
    assert torch.isfinite(constant(torch.zeros(1, 1))).all()


@pytest.mark.parametrize(("attention", "norm"), [("global", "layer"), ("spatial", "batch"), ("none", "none")])
def test_gradcheck_every_reduction_and_norm(attention, norm):
    layer = AFKANLinear(3, 2, attention=attention, norm=norm, function="quad2")
    assert_gradcheck(layer, torch.rand(4, 3) * 2 - 1)


def test_parameter_count_matches_the_authors():
    """The authors count the parameters that receive a gradient: 784-64-10 at G = k = 3, global attention, 52,552."""
    layers = [AFKANLinear(784, 64), AFKANLinear(64, 10)]
    assert sum(p.numel() for layer in layers for p in layer.parameters()) == 52_552
    x = torch.rand(8, 784) * 2 - 1
    layers[1](layers[0](x)).sum().backward()
    assert all(p.grad is not None for layer in layers for p in layer.parameters())


def test_global_attention_weights_the_inputs_basis_sums_by_a_softmax_across_inputs():
    """z_d / sum_i phi_{d,i} is the attention weight of input d: positive, summing to 1 over the inputs."""
    layer = AFKANLinear(6, 2, norm="none").double()
    assert math.isclose(layer.temperature.item(), math.sqrt(6), rel_tol=1e-6)
    phi = layer.basis(torch.rand(3, 6, dtype=torch.float64) * 2 - 1)
    weights = layer.reduce(phi) / phi.sum(-1)
    assert (weights > 0).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, dtype=torch.float64))


def test_batch_norm_matches_torch_s_and_refuses_a_single_training_sample():
    torch.manual_seed(0)
    layer = AFKANLinear(4, 3, norm="batch").double()
    x = torch.rand(8, 4, dtype=torch.float64) * 2 - 1
    z = layer.reduce(layer.basis(x))
    expected = torch.nn.functional.silu((z - z.mean(0)) / torch.sqrt(z.var(0, unbiased=False) + 1e-5)) @ layer.weight.T
    torch.testing.assert_close(layer(x), expected)
    with pytest.raises(ValueError, match="AFKANLinear: norm='batch' needs more than one sample per training batch"):
        layer(x[:1])
    assert layer.eval()(x[:1]).shape == (1, 3)  # the running statistics serve a single sample


def test_a_kan_of_af_kan_layers():
    from kernelnn.models import KAN

    model = KAN([2, 8, 2], layer="af_kan", layer_options={"grid_size": 3})
    assert all(isinstance(layer, AFKANLinear) for layer in model.layers)
    assert model(torch.rand(5, 2)).shape == (5, 2)


@pytest.mark.parametrize(("options", "message"), [
    ({"activation": "swish"}, r"AFKANLinear: activation='swish' is not one of \['elu', 'gelu'"),
    ({"function": "quad3"}, r"AFKANLinear: function='quad3' is not one of \['cubic1'"),
    ({"attention": "self"}, r"AFKANLinear: attention='self' is not one of \['global', 'none', 'spatial'\]"),
    ({"norm": "group"}, r"AFKANLinear: norm='group' is not one of \['batch', 'layer', 'none'\]"),
    ({"basis_norm": "l2"}, r"AFKANLinear: basis_norm='l2' is not one of \['minmax', 'none'\]"),
    ({"grid_size": 0}, r"AFKANLinear: grid_size=0 must be a positive int"),
    ({"grid_range": (2, -2)}, r"AFKANLinear: grid_range=\(2, -2\) must be \(low, high\)"),
    ({"grid_range": (0, 1, 2)}, r"AFKANLinear: grid_range=\(0, 1, 2\) must be \(low, high\) with finite"),
    ({"grid_range": (0, math.inf)}, r"AFKANLinear: grid_range=\(0, inf\) must be \(low, high\) with finite"),
])
def test_bad_arguments_are_named(options, message):
    with pytest.raises(ValueError, match=message):
        AFKANLinear(2, 3, **options)


def test_a_wrong_input_width_is_named():
    with pytest.raises(ValueError, match=r"AFKANLinear: input must have shape \(\.\.\., 2\), got \(4, 5\)"):
        AFKANLinear(2, 3)(torch.rand(4, 5))


@pytest.mark.slow  # compiles the fused kernel (forward and backward) once per configuration
@pytest.mark.parametrize("attention", ["global", "spatial"])
def test_fused_features_match_the_eager_ones_with_gradients(attention, monkeypatch):
    torch.manual_seed(0)
    # float64: the score bias's gradient is 0 in exact arithmetic (softmax ignores shifts), so float32 leaves
    # only summation-order noise there, which differs between the fused and the eager kernels
    layer = AFKANLinear(64, 8, attention=attention).double()
    x = torch.rand(512, 64, requires_grad=True, dtype=torch.float64) * 2 - 1
    assert x.numel() * layer.n_basis >= FUSE_FROM  # large enough to take the fused path
    fused = layer(x)
    grads = torch.autograd.grad(fused.square().sum(), [x, *layer.parameters()])
    monkeypatch.setattr("kernelnn.layers.af_kan.FUSE_FROM", float("inf"))  # now everything runs eagerly
    eager = layer(x)
    expected = torch.autograd.grad(eager.square().sum(), [x, *layer.parameters()])
    torch.testing.assert_close(fused, eager, rtol=1e-10, atol=1e-10)
    for a, b in zip(grads, expected, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-9)
