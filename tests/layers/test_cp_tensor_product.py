"""CPTensorProduct: the exact stacked tensor equals the CG product with tied weights, the CP error bounds the
equivariance error and the distance to it, rank helps, modes, per-sample weights, autograd, and errors."""

import math

import pytest
import torch

from kernelnn.layers.cp_tensor_product import CP_MODES, CPTensorProduct
from kernelnn.layers.tensor_product import TensorProduct
from kernelnn.o3.cp_decomposition import cp_als, cp_reconstruct
from kernelnn.testing import (
    assert_autocast,
    assert_compiles,
    assert_equivariant,
    assert_gradcheck,
    assert_state_dict_round_trip,
    equivariance_error,
)

IN1, OUT = "3x0e + 3x1o + 3x2e", "3x0e + 3x0o + 3x1o + 3x1e + 3x2e + 3x2o"
IN2 = {"uvu": "0e + 1o + 2e", "uuu": "3x0e + 3x1o + 3x2e", "uvw": "2x0e + 2x1o + 2x2e"}
OUTS = {"uvu": OUT, "uuu": OUT, "uvw": "4x0e + 4x0o + 4x1o + 4x1e + 4x2e + 4x2o"}


def make(mode, rank, **kwargs):
    return CPTensorProduct(IN1, IN2[mode], OUTS[mode], rank=rank, mode=mode, **kwargs).double()


def inputs(tp, n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, tp.irreps_in1.dim, generator=g, dtype=torch.float64),
            torch.randn(n, tp.irreps_in2.dim, generator=g, dtype=torch.float64))


def tied_tensor_product(tp):
    """The exact CG product over the same paths, every path holding the CP layer's one set of weights."""
    instructions = [(i1, i2, io, tp.mode, True) for i1, (_, a) in enumerate(tp.irreps_in1)
                    for i2, (_, b) in enumerate(tp.irreps_in2) for io, (_, c) in enumerate(tp.irreps_out) if c in a * b]
    exact = TensorProduct(tp.irreps_in1, tp.irreps_in2, tp.irreps_out, instructions).double()
    with torch.no_grad():
        exact.weight.copy_(tp.weight.reshape(-1).repeat(len(instructions)))
    return exact


@pytest.mark.parametrize("mode", CP_MODES)
def test_exact_tensor_is_the_cg_product_with_shared_path_weights(mode):
    tp = make(mode, rank=8)
    x1, x2 = inputs(tp)
    torch.testing.assert_close(tp.forward_exact(x1, x2), tied_tensor_product(tp)(x1, x2), atol=1e-12, rtol=0)
    assert_equivariant(tp.forward_exact, [tp.irreps_in1, tp.irreps_in2], tp.irreps_out, inputs=(x1, x2))


@pytest.mark.parametrize("mode", CP_MODES)
def test_cp_error_bounds_the_distance_and_the_equivariance_error(mode):
    for rank in (10, 30):
        tp = make(mode, rank=rank).requires_grad_(False)
        x1, x2 = inputs(tp)
        exact = tp.forward_exact(x1, x2)
        assert tp.cp_error > 1e-3  # too low a rank to be exact: the bound is exercised, not trivially met
        # Per sample and channel |(M - M^)(x (x) y)| <= ||M - M^||_F |x| |y|; summed over samples here.
        bound = tp.cp_error * float(torch.linalg.norm(tp.exact_tensor()))
        distance = float((tp(x1, x2) - exact).norm())
        scale = float(x1.norm() * x2.norm()) * float(tp.weight.abs().max()) * max(tp.channels) ** 2
        assert distance <= bound * scale
        eps = equivariance_error(tp, [tp.irreps_in1, tp.irreps_in2], tp.irreps_out, [x1, x2], n_rotations=5)
        assert eps <= 2 * bound * scale / float(tp(x1, x2).norm())
        assert eps > 1e-6  # and it is really approximate


def test_error_falls_with_rank_to_exact():
    errors = [make("uvu", rank=r).cp_error for r in (9, 18, 27, 45)]
    assert all(b < a for a, b in zip(errors, errors[1:], strict=False))
    tp = make("uvu", rank=60)
    x1, x2 = inputs(tp)
    assert tp.cp_error < 1e-7
    torch.testing.assert_close(tp(x1, x2), tp.forward_exact(x1, x2), atol=1e-6, rtol=0)
    assert equivariance_error(tp, [tp.irreps_in1, tp.irreps_in2], tp.irreps_out, [x1, x2], n_rotations=4) < 1e-6


def test_cp_als_recovers_a_low_rank_tensor():
    g = torch.Generator().manual_seed(0)
    a, b, c = (torch.randn(n, 4, generator=g, dtype=torch.float64) for n in (5, 6, 7))
    t = cp_reconstruct(a, b, c)
    *_, error = cp_als(t, 4, restarts=2)
    assert error < 1e-8
    *_, error = cp_als(t, 2)
    assert error > 1e-2
    with pytest.raises(ValueError, match="rank=0"):
        cp_als(t, 0)


def test_per_sample_weights_and_separable_path_weights():
    tp = make("uvu", rank=60, shared_weights=False, share_path_weights=False)
    x1, x2 = inputs(tp, n=6)
    w = torch.randn(6, tp.weight_numel, dtype=torch.float64)
    with torch.no_grad():
        tp.degree_weight_in.uniform_(0.5, 1.5)
        tp.degree_weight_out.uniform_(0.5, 1.5)
    out = tp(x1, x2, w)
    torch.testing.assert_close(out[3], tp(x1[3], x2[3], w[3]))
    torch.testing.assert_close(out, tp.forward_exact(x1, x2, w), atol=1e-6, rtol=0)
    assert_equivariant(lambda a, b: tp.forward_exact(a, b, w), [tp.irreps_in1, tp.irreps_in2], tp.irreps_out,
                       inputs=(x1, x2))


def test_unit_variance_outputs_when_exact():
    """Component / element normalisation as e3nn's: unit weights and unit-variance inputs give unit variance."""
    tp = CPTensorProduct("16x0e + 16x1o + 16x2e", "0e + 1o + 2e", "16x0e + 16x1o + 16x2e", rank=60)
    with torch.no_grad():
        tp.weight.fill_(1.0)
    g = torch.Generator().manual_seed(0)
    out = tp(torch.randn(4000, 144, generator=g), torch.randn(4000, 9, generator=g)).detach()
    for s in tp.irreps_out.slices():
        assert 0.85 < float(out[:, s].square().mean()) < 1.15


def test_autograd_compile_autocast_and_state_dict():
    tp = make("uvu", rank=20)
    x1, x2 = inputs(tp, n=3)
    assert_gradcheck(tp, x1, x2)
    build = lambda: CPTensorProduct(IN1, IN2["uvu"], OUT, rank=20)  # noqa: E731
    assert_compiles(build(), x1.float(), x2.float())
    assert_autocast(build(), x1.float(), x2.float())
    assert_state_dict_round_trip(build, x1.float(), x2.float())
    assert "factor_a" not in build().state_dict()  # derived, refitted (cached) rather than loaded


def test_float_then_double_keeps_the_float64_factors():
    tp = make("uvu", rank=60)
    x1, x2 = inputs(tp)
    again = tp.float().double()
    torch.testing.assert_close(again(x1, x2), again.forward_exact(x1, x2), atol=1e-6, rtol=0)


@pytest.mark.parametrize("args, kwargs, message", [
    ((IN1, "0e", OUT), {"rank": 0}, "rank=0 must be a positive int"),
    ((IN1, "0e", OUT), {"rank": 4, "mode": "uvx"}, "mode='uvx'"),
    (("3x0e + 2x1o", "0e", OUT), {"rank": 4}, "every term of irreps_in1 must have one multiplicity"),
    ((IN1, "0e", "2x0e"), {"rank": 4}, "mode 'uvu' keeps the channels of x1"),
    ((IN1, "2x0e", OUT), {"rank": 4, "mode": "uuu"}, "mode 'uuu' needs one multiplicity"),
    (("3x0e", "0e", "3x1o"), {"rank": 4}, "no path couples"),
    (("3x0q", "0e", "3x1o"), {"rank": 4}, "irreps_in1='3x0q'"),
])
def test_bad_construction(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        CPTensorProduct(*args, **kwargs)


def test_bad_calls():
    tp = CPTensorProduct(IN1, "0e + 1o", OUT, rank=10)
    with pytest.raises(ValueError, match=r"x2 has shape \(2, 3\); its last dimension must be 4"):
        tp(torch.randn(2, 27), torch.randn(2, 3))
    with pytest.raises(ValueError, match="holds its weights"):
        tp(torch.randn(2, 27), torch.randn(2, 4), torch.randn(3))
    external = CPTensorProduct(IN1, "0e + 1o", OUT, rank=10, shared_weights=False)
    with pytest.raises(ValueError, match=r"forward needs weight of shape \(\.\.\., 3\)"):
        external(torch.randn(2, 27), torch.randn(2, 4))
    assert math.isfinite(external.cp_error)
