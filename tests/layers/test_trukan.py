import pytest
import torch

from kernelnn.layers import TruKANLinear
from kernelnn.testing import assert_autocast, assert_compiles, assert_gradcheck, assert_state_dict_round_trip


def direct(layer, x):
    """phi_oi(x) = sum_p a_oip x^p + sum_j c_oij (x - t_j)_+^k, summed over i, by loops over every edge."""
    t = layer.knot_positions()
    out = torch.zeros(x.shape[0], layer.out_features, dtype=x.dtype)
    for o in range(layer.out_features):
        for i in range(layer.in_features):
            knots = t[i] if layer.knots == "shared" else t[o, i]
            xi = x[:, i]
            for p in range(layer.order + 1):
                out[:, o] += layer.poly_weight[o, i, p] * xi**p
            for j in range(layer.n_knots):
                out[:, o] += layer.trunc_weight[o, i, j] * torch.clamp(xi - knots[j], min=0) ** layer.order
    return out


@pytest.mark.parametrize("knots", ["shared", "individual"])
@pytest.mark.parametrize("order", [1, 3])
def test_matches_the_direct_formula(knots, order):
    torch.manual_seed(0)
    layer = TruKANLinear(3, 4, order=order, n_knots=5, knots=knots, learn_knots=True, chunk_elements=50)
    with torch.no_grad():
        layer.raw_gaps.normal_()
    x = torch.rand(7, 3) * 2 - 1
    torch.testing.assert_close(layer(x), direct(layer, x))
    assert layer(torch.rand(2, 5, 3)).shape == (2, 5, 4)


@pytest.mark.parametrize("knots", ["shared", "individual"])
def test_learned_knots_stay_ordered_inside_the_range(knots):
    torch.manual_seed(1)
    layer = TruKANLinear(2, 3, n_knots=6, knots=knots, learn_knots=True, knot_range=(-2.0, 0.5))
    optimizer = torch.optim.Adam(layer.parameters(), lr=0.2)
    x = torch.rand(64, 2) * 2.5 - 2
    start = layer.knot_positions().detach().clone()
    for _ in range(60):  # large steps that push the knots around
        optimizer.zero_grad()
        (layer(x) - torch.sin(4 * x).sum(-1, keepdim=True)).square().mean().backward()
        optimizer.step()
    t = layer.knot_positions()
    assert (t - start).abs().max() > 0.05  # the knots did move
    assert (t.diff(dim=-1) > 0).all() and (t > -2.0).all() and (t < 0.5).all()


def test_fixed_knots_are_uniform_buffers():
    layer = TruKANLinear(2, 3, n_knots=3)
    assert "raw_gaps" in dict(layer.named_buffers())
    torch.testing.assert_close(layer.knot_positions()[0], torch.tensor([-0.5, 0.0, 0.5]))


@pytest.mark.parametrize("knots", ["shared", "individual"])
def test_gradcheck_compile_autocast_state_dict(knots):
    torch.manual_seed(2)
    layer = TruKANLinear(2, 3, order=2, n_knots=3, knots=knots, learn_knots=True, chunk_elements=20).double()
    x = (torch.rand(4, 2, dtype=torch.float64) * 1.8 - 0.9).requires_grad_()
    assert_gradcheck(layer, x)
    layer = layer.float()
    xs = torch.rand(5, 2)
    assert_compiles(layer, xs, fullgraph=knots == "shared", rtol=1e-5, atol=1e-5)
    # The per-edge path ("individual") keeps float32 under autocast; the shared path returns bfloat16.
    assert_autocast(layer, xs, output_dtype=(torch.bfloat16, torch.float32))
    assert_state_dict_round_trip(lambda: TruKANLinear(2, 3, knots=knots, learn_knots=True), xs)


def test_bad_arguments():
    with pytest.raises(ValueError, match="TruKANLinear: order=-1 must be an int >= 0"):
        TruKANLinear(2, 3, order=-1)
    with pytest.raises(ValueError, match="TruKANLinear: knots='edge' must be 'shared' or 'individual'"):
        TruKANLinear(2, 3, knots="edge")
    with pytest.raises(ValueError, match="learn_knots=True needs order >= 1"):
        TruKANLinear(2, 3, order=0, learn_knots=True)
    with pytest.raises(ValueError, match=r"TruKANLinear: input must have shape \(\.\.\., 2\), got \(4, 5\)"):
        TruKANLinear(2, 3)(torch.rand(4, 5))
    with pytest.raises(ValueError, match="n_knots=0 must be a positive int"):
        TruKANLinear(2, 3, n_knots=0)
