"""KAN interpretation: attribution and pruning, edge plots, symbolic edges, fits and formulas (kernelnn.interpret)."""

import math

import pytest
import sympy
import torch

from kernelnn.interpret import FUNCTIONS, LIBRARIES, SymbolicKANLinear, fit_affine, library
from kernelnn.layers import KANLinear
from kernelnn.layers.bspline import bspline_basis
from kernelnn.models import KAN
from kernelnn.testing import assert_gradcheck, assert_state_dict_round_trip


def set_edge(layer: KANLinear, o: int, i: int, fn, low: float = -1.0, high: float = 1.0) -> None:
    """Make edge ``i -> o`` of a B-spline layer the least-squares spline of ``fn`` on [low, high], base off."""
    x = torch.linspace(low, high, 400, dtype=torch.float64)
    samples = torch.zeros(400, layer.in_features, dtype=torch.float64)
    samples[:, i] = x
    basis = bspline_basis(samples, layer.grid.double(), layer.spline_order)[:, i]  # (400, G + k)
    coefficients = torch.linalg.lstsq(basis, fn(x)[:, None]).solution.flatten()
    with torch.no_grad():
        layer.base_weight[o, i] = 0
        scale = 1.0 if layer.spline_scaler is None else layer.spline_scaler[o, i].item()
        layer.spline_weight[o, i] = (coefficients / scale).to(layer.spline_weight.dtype)


def known_kan() -> KAN:
    """A float64 KAN [2, 1, 1] computing exp(sin(pi x_1) + x_2^2) with splines (grids sized to the ranges)."""
    model = KAN([2, 1, 1], layer_options={"grid_size": 30}).double()
    first, second = model.layers
    set_edge(first, 0, 0, lambda x: torch.sin(math.pi * x))
    set_edge(first, 0, 1, lambda x: x**2)
    # inner knots on [-1, 2], the range of sin + x^2, extended by 3 intervals on each side
    second.grid.copy_(torch.linspace(-1.3, 2.3, 31 + 6, dtype=torch.float64).expand(1, -1))
    set_edge(second, 0, 0, torch.exp, -1.0, 2.0)
    return model


def inputs(n: int = 400, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 2 - 1


def truth(x: torch.Tensor) -> torch.Tensor:
    return torch.exp(torch.sin(math.pi * x[:, 0]) + x[:, 1] ** 2)[:, None]


# ------------------------------------------------------------------------------------------ edges and pruning
def test_edge_values_sum_to_the_layer_output():
    layer = KANLinear(3, 4)
    x = torch.rand(7, 3) * 2 - 1
    torch.testing.assert_close(layer.edge_values(x).sum(-1), layer(x))


def test_known_kan_is_the_formula():
    model, x = known_kan(), inputs()
    assert ((model(x) - truth(x)).norm() / truth(x).norm()) < 1e-3


def test_prune_removes_dead_nodes_and_keeps_the_function():
    torch.manual_seed(0)
    model = KAN([2, 4, 1]).double()
    with torch.no_grad():  # hidden nodes 2 and 3 do not reach the output
        model.layers[1].base_weight[:, 2:] = 0
        model.layers[1].spline_weight[:, 2:] = 0
    x = inputs()
    pruned = model.prune(threshold=1e-2, edge_threshold=0.0, x=x)  # no live edge masked: the same function
    assert pruned.widths == [2, 2, 1]
    torch.testing.assert_close(pruned(x), model(x))
    assert model.widths == [2, 4, 1]  # prune returns a copy


def test_pruned_edges_stay_zero_in_training_and_load_into_a_fresh_model():
    torch.manual_seed(0)
    model = KAN([2, 3, 1]).double()
    with torch.no_grad():  # edge 1 -> 0 of the first layer does nothing: score 0
        model.layers[0].base_weight[0, 1] = 0
        model.layers[0].spline_weight[0, 1] = 0
    x = inputs()
    pruned = model.prune(threshold=0.0, edge_threshold=1e-9, x=x)
    mask = pruned.layers[0].edge_mask
    assert mask is not None and mask.sum() == mask.numel() - 1 and not mask[0, 1]
    with torch.no_grad():  # the masked edge's weights may be anything: the mask keeps it 0
        pruned.layers[0].base_weight[0, 1] = 5.0
    optimizer = torch.optim.SGD(pruned.parameters(), lr=0.1)
    pruned(x).square().mean().backward()
    optimizer.step()
    values = pruned.layers[0].edge_values(x)
    assert values[:, ~mask].abs().max() == 0
    fresh = KAN(pruned.widths).double()
    fresh.load_state_dict(pruned.state_dict())
    torch.testing.assert_close(fresh(x), pruned(x))


def test_attribution_ranks_the_edge_that_matters():
    model = KAN([2, 1]).double()
    set_edge(model.layers[0], 0, 0, lambda x: 3 * x)
    set_edge(model.layers[0], 0, 1, lambda x: 0.01 * x)
    nodes, edges = model.attribute(inputs())
    assert edges[0][0, 0] > 50 * edges[0][0, 1]
    assert nodes[0][0] > nodes[0][1]


def test_prune_without_data_says_how_to_give_it():
    with pytest.raises(RuntimeError, match=r"has not seen data.*forward pass"):
        KAN([2, 3, 1]).prune()
    model = KAN([2, 3, 1])
    model(torch.rand(10, 2))  # a forward pass is enough
    assert model.prune().widths[0] == 2


def test_interpretation_refuses_layers_without_edge_functions():
    with pytest.raises(ValueError, match="layer_norm"):
        KAN([2, 3, 1], layer_norm=True).prune(x=torch.rand(5, 2))
    with pytest.raises(ValueError, match="per-edge functions"):
        KAN([2, 3, 1], layer="af_kan").prune(x=torch.rand(5, 2))


# ------------------------------------------------------------------------------------------ plots
def test_plot_draws_every_edge(tmp_path):
    model = known_kan()
    path = model.plot(tmp_path / "edges.png", inputs())
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_plot_of_a_wide_layer_draws_the_top_edges_and_says_so(tmp_path):
    model = KAN([12, 6, 1])
    with pytest.warns(UserWarning, match="72 edges; drawing its 16 most important"):
        model.plot(tmp_path / "wide.png", torch.rand(50, 12), max_edges=16)
    assert (tmp_path / "wide.png").exists()


# ------------------------------------------------------------------------------------------ symbolic
@pytest.mark.parametrize(("name", "params"), [("sin", (1.5, 0.3, 2.5, -0.7)), ("exp", (-0.8, 0.2, 1.3, 0.4)),
                                              ("x^2", (2.0, -0.5, -1.5, 0.25)), ("log", (2.0, 3.0, 0.5, 1.0))])
def test_fit_affine_recovers_a_known_edge(name, params):
    a, b, c, d = params
    x = torch.linspace(-1, 1, 200, dtype=torch.float64)
    fn = FUNCTIONS[name].torch_fn
    y = c * fn(a * x + b) + d
    (a2, b2, c2, d2), r2 = fit_affine(x, y, name)
    assert r2 > 1 - 1e-12
    torch.testing.assert_close(c2 * fn(a2 * x + b2) + d2, y, rtol=1e-8, atol=1e-8)


def test_fit_affine_refuses_undefined_fits():
    x = torch.linspace(-1, 1, 50, dtype=torch.float64)
    # log is undefined for a x + b <= 0: every accepted fit stays inside its domain
    (a, b, c, d), r2 = fit_affine(x, x**3, "log")
    assert r2 == -math.inf or bool(((a * x + b) > 0).all())


def test_unknown_library_lists_the_known_ones():
    with pytest.raises(ValueError, match="known: " + ", ".join(LIBRARIES)):
        library("trig")
    with pytest.raises(ValueError, match=r"unknown function name\(s\) \['sinh'\]"):
        library(["sin", "sinh"])
    with pytest.raises(ValueError, match="not a known library"):
        KAN([2, 1]).auto_symbolic(lib="nope", x=torch.rand(10, 2))


def test_auto_symbolic_then_formula_recovers_exp_sin():
    model, x = known_kan(), inputs()
    report = model.auto_symbolic(lib="basic", x=x)
    chosen = {(r["layer"], r["input"]): r["function"] for r in report}
    assert chosen == {(0, 0): "sin", (0, 1): "x^2", (1, 0): "exp"}
    error = model.fit_symbolic(x, truth(x))
    assert error < 1e-10
    found = model.symbolic_formula(x, variables=["x", "y"])
    X, Y = sympy.symbols("x y", real=True)
    assert sympy.simplify(found - sympy.exp(sympy.sin(sympy.pi * X) + Y**2)) == 0


def test_formula_needs_symbolic_layers():
    with pytest.raises(ValueError, match="call auto_symbolic first"):
        KAN([2, 1]).symbolic_formula(torch.rand(5, 2))


def test_formula_is_checked_against_the_network():
    layer = SymbolicKANLinear([["sin", "x"]], torch.tensor([[[1.0, 0.0, 2.0, 0.0], [1.0, 0.0, 1.0, 0.5]]]))
    model = KAN([2, 1])
    model.layers = torch.nn.Sequential(layer)
    x = torch.rand(20, 2, dtype=torch.float64)
    found = model.symbolic_formula(x)
    x_1, x_2 = sympy.symbols("x_1 x_2", real=True)
    assert sympy.simplify(found - (2 * sympy.sin(x_1) + x_2 + sympy.Rational(1, 2))) == 0


def test_symbolic_layer_is_a_working_layer():
    affine = torch.tensor([[[0.5, 1.5, 1.0, 0.0], [1.0, 0.0, 2.0, 1.0]],
                           [[2.0, 0.1, -1.0, 0.3], [1.0, 0.2, 1.0, 0.0]]], dtype=torch.float64)
    make = lambda: SymbolicKANLinear([["log", "x^2"], ["tanh", "0"]], affine)  # noqa: E731
    x = torch.rand(6, 2, dtype=torch.float64)
    expected = torch.stack([torch.log(0.5 * x[:, 0] + 1.5) + 2 * x[:, 1] ** 2 + 1,
                            -torch.tanh(2 * x[:, 0] + 0.1) + 0.3], dim=1)
    torch.testing.assert_close(make()(x), expected)
    assert_gradcheck(make(), x.requires_grad_())
    assert_state_dict_round_trip(make, x)


def test_a_crafted_function_index_is_refused():
    layer = SymbolicKANLinear([["sin"]])
    state = layer.state_dict()
    state["function_index"] = torch.tensor([[999]])
    with pytest.raises(ValueError, match="function_index holds values outside"):
        layer.load_state_dict(state)


def test_bad_arguments_are_named():
    model = KAN([2, 3, 1])
    x = torch.rand(10, 2)
    with pytest.raises(ValueError, match="threshold=nan"):
        model.prune(float("nan"), x=x)
    with pytest.raises(ValueError, match=r"KAN: input must have shape \(\.\.\., 2\)"):
        model.prune(x=torch.rand(10, 3))
    with pytest.raises(ValueError, match="max_edges"):
        model.plot("never.png", x, max_edges=0)
    with pytest.raises(ValueError, match="weight_simple"):
        model.auto_symbolic(x=x, weight_simple=2.0)
