"""TensorProduct / FullyConnectedTensorProduct: e3nn's values, a per-path reference (gradients included),
O(3) equivariance, normalisation, autograd, compile, autocast, state dicts, and errors."""

import pytest
import torch

from kernelnn.layers.tensor_product import MODES, FullyConnectedTensorProduct, TensorProduct, split_irreps
from kernelnn.o3 import Irreps, wigner_3j
from kernelnn.testing import (
    assert_autocast,
    assert_compiles,
    assert_equivariant,
    assert_gradcheck,
    assert_state_dict_round_trip,
    default_dtype,
)

IN1, IN2 = "3x0e + 3x1o + 3x2e + 3x1e", "3x0e + 3x1o + 3x0o"
OUT_MUL = {"uvw": 4, "uvu": 3, "uvv": 3, "uuw": 5, "uuu": 3, "uvuv": 9}


def every_path(mode, in1=IN1, in2=IN2):
    """Every allowed path of ``mode`` between the terms of in1 and in2, each into its own output term."""
    outs, instructions = [], []
    for i1, (_, ir1) in enumerate(Irreps(in1)):
        for i2, (_, ir2) in enumerate(Irreps(in2)):
            for ir in ir1 * ir2:
                outs.append((OUT_MUL[mode], ir))
                instructions.append((i1, i2, len(outs) - 1, mode, True))
    return str(Irreps(outs)), instructions


def reference(tp, x1, x2, weight):
    """The module docstring's formula, one path at a time, from the 3j symbols (no grouping)."""
    z = x1.shape[0]
    parts1, parts2 = split_irreps(x1, tp.irreps_in1), split_irreps(x2, tp.irreps_in2)
    out = [x1.new_zeros(z, term.dim) for term in tp.irreps_out]
    offset = 0
    for ins in tp.instructions:
        ls = tp.irreps_in1[ins.i_in1].ir.l, tp.irreps_in2[ins.i_in2].ir.l, tp.irreps_out[ins.i_out].ir.l
        c = wigner_3j(*ls, dtype=x1.dtype) * ins.alpha
        n = torch.Size(ins.path_shape).numel()
        w = weight[..., offset:offset + n].reshape(*weight.shape[:-1], *ins.path_shape)
        offset += n
        spec = {"uvw": "zui,zvj,ijk,{b}uvw->zwk", "uvu": "zui,zvj,ijk,{b}uv->zuk", "uvv": "zui,zvj,ijk,{b}uv->zvk",
                "uuw": "zui,zuj,ijk,{b}uw->zwk", "uuu": "zui,zuj,ijk,{b}u->zuk",
                "uvuv": "zui,zvj,ijk,{b}uv->zuvk"}[ins.connection_mode]
        y = torch.einsum(spec.format(b="z" if weight.dim() == 2 else ""), parts1[ins.i_in1], parts2[ins.i_in2], c, w)
        out[ins.i_out] = out[ins.i_out] + y.reshape(z, -1)
    return torch.cat(out, -1)


@pytest.mark.parametrize("order", ["e3nn", "shuffled"])
@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("mode", MODES)
def test_matches_the_per_path_reference_with_gradients(mode, shared, order):
    """Channel-wise modes (uvu, uuu) take the vectorised route, the others one path at a time; a shuffled
    instruction order makes the vectorised route permute its weights."""
    out, instructions = every_path(mode)
    if order == "shuffled":
        instructions = [instructions[i] for i in torch.randperm(len(instructions), generator=torch.Generator()
                                                                  .manual_seed(0)).tolist()]
    tp = TensorProduct(IN1, IN2, out, instructions, shared_weights=shared).double()
    assert tp._channelwise == (mode in ("uvu", "uuu"))
    x1 = torch.randn(6, tp.irreps_in1.dim, dtype=torch.float64, requires_grad=True)
    x2 = torch.randn(6, tp.irreps_in2.dim, dtype=torch.float64, requires_grad=True)
    weight = tp.weight if shared else torch.randn(6, tp.weight_numel, dtype=torch.float64, requires_grad=True)
    ours, ref = tp(x1, x2, None if shared else weight), reference(tp, x1, x2, weight)
    torch.testing.assert_close(ours, ref, atol=1e-12, rtol=0)
    g = torch.randn_like(ours)
    grads = torch.autograd.grad(ours, (x1, x2, weight), g)
    expected = torch.autograd.grad(ref, (x1, x2, weight), g)
    for a, b in zip(grads, expected, strict=True):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


@pytest.mark.parametrize("normalization", [("component", "element"), ("norm", "path"), ("none", "none")])
@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("mode", MODES)
def test_equals_e3nn(mode, shared, normalization):
    o3 = pytest.importorskip("e3nn.o3")
    out, instructions = every_path(mode)
    instructions[1] = (*instructions[1], 0.3)  # a path weight
    if mode not in ("uvw", "uuw"):
        instructions[0] = (*instructions[0][:4], False)  # a path without weights
    kwargs = dict(irrep_normalization=normalization[0], path_normalization=normalization[1], shared_weights=shared,
                  in1_var=[1.0, 2.0, 0.5, 1.0], out_var=[1.5] * len(Irreps(out)))
    ours = TensorProduct(IN1, IN2, out, instructions, **kwargs).double()
    with default_dtype(torch.float64):
        theirs = o3.TensorProduct(IN1, IN2, out, instructions, **kwargs)
    assert ours.weight_numel == theirs.weight_numel
    x1 = torch.randn(5, ours.irreps_in1.dim, dtype=torch.float64)
    x2 = torch.randn(5, ours.irreps_in2.dim, dtype=torch.float64)
    if shared:
        with torch.no_grad():
            theirs.weight.copy_(ours.weight)
        args = ()
    else:
        args = (torch.randn(5, ours.weight_numel, dtype=torch.float64),)
    torch.testing.assert_close(ours(x1, x2, *args), theirs(x1, x2, *args), atol=1e-10, rtol=0)


def test_fully_connected_equals_e3nn():
    o3 = pytest.importorskip("e3nn.o3")
    in1, in2, out = "4x0e + 2x1o + 2x2e + 1x1e", "2x0e + 1x1o + 1x2e + 1x0o", "3x0e + 3x1o + 2x2e + 1x1e + 2x0o"
    ours = FullyConnectedTensorProduct(in1, in2, out).double()
    with default_dtype(torch.float64):
        theirs = o3.FullyConnectedTensorProduct(in1, in2, out)
    with torch.no_grad():
        theirs.weight.copy_(ours.weight)
    x1, x2 = torch.randn(9, ours.irreps_in1.dim, dtype=torch.float64), torch.randn(9, 11, dtype=torch.float64)
    torch.testing.assert_close(ours(x1, x2), theirs(x1, x2), atol=1e-10, rtol=0)


def test_equivariant_under_rotations_and_rotoinversions():
    in1, in2, out = "2x0e + 2x1o + 1x2e + 1x1e", "0e + 1o + 2e", "2x0e + 2x0o + 2x1o + 2x1e + 2x2e + 1x2o + 1x3o"
    tp = FullyConnectedTensorProduct(in1, in2, out).double()
    assert_equivariant(tp, [in1, in2], out, inputs=(torch.randn(4, 16, dtype=torch.float64),
                                                    torch.randn(4, 9, dtype=torch.float64)))


def test_component_normalisation_gives_unit_variance_outputs():
    """Unit-variance inputs and N(0, 1) weights give unit-variance outputs (in expectation over the weights too:
    eight layers' outputs are pooled per output term)."""
    g = torch.Generator().manual_seed(0)
    x1, x2 = torch.randn(4000, 72, generator=g), torch.randn(4000, 9, generator=g)
    torch.manual_seed(0)
    outs = [FullyConnectedTensorProduct("8x0e + 8x1o + 8x2e", "0e + 1o + 2e", "8x0e + 8x1o + 8x2e")(x1, x2)
            for _ in range(8)]
    for s in Irreps("8x0e + 8x1o + 8x2e").slices():
        second_moment = float(torch.stack([o[:, s] for o in outs]).detach().square().mean())
        assert 0.9 < second_moment < 1.1


def test_broadcasting_and_per_sample_weights():
    tp = FullyConnectedTensorProduct("2x0e + 1x1o", "0e + 1o", "2x1o", shared_weights=False)
    x1, x2 = torch.randn(3, 1, 5), torch.randn(1, 4, 4)
    w = torch.randn(4, tp.weight_numel)
    out = tp(x1, x2, w)
    assert out.shape == (3, 4, 6)
    torch.testing.assert_close(out[2, 1], tp(x1[2, 0], x2[0, 1], w[1]))


def test_autograd_compile_autocast_and_state_dict():
    in1, in2, out = "2x0e + 1x1o + 1x2e", "0e + 1o", "2x0e + 1x1o + 1x1e + 1x2e"
    tp = FullyConnectedTensorProduct(in1, in2, out).double()
    x1, x2 = torch.randn(3, 10, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64)
    assert_gradcheck(tp, x1, x2)
    assert_compiles(FullyConnectedTensorProduct(in1, in2, out), x1.float(), x2.float())
    assert_autocast(FullyConnectedTensorProduct(in1, in2, out), x1.float(), x2.float())
    assert_state_dict_round_trip(lambda: FullyConnectedTensorProduct(in1, in2, out), x1.float(), x2.float())


def test_no_samples_give_an_empty_output():
    tp = FullyConnectedTensorProduct("2x0e + 1x1o", "0e + 1o", "1x1o")
    assert tp(torch.zeros(0, 5), torch.zeros(0, 4)).shape == (0, 3)


def test_outputs_without_paths_are_zero():
    tp = TensorProduct("1x0e", "1x0e", "1x0e + 1x1o", [(0, 0, 0, "uvu", True)])
    out = tp(torch.randn(2, 1), torch.randn(2, 1))
    assert out.shape == (2, 4) and bool((out[:, 1:] == 0).all())


@pytest.mark.parametrize("args, kwargs, error, message", [
    (("1x0e", "1x0e", "1x1o", [(0, 0, 0, "uvu", True)]), {}, ValueError, r"couples 0e x 0e into 1o"),
    (("1x0e", "1x0e", "1x0e", [(0, 0, 1, "uvu", True)]), {}, ValueError, r"i_out=1; 1x0e has terms 0..0"),
    (("1x0e", "1x0e", "1x0e", [(0, 0, 0, "uvx", True)]), {}, ValueError, r"mode 'uvx'; valid"),
    (("2x0e", "3x0e", "2x0e", [(0, 0, 0, "uuu", True)]), {}, ValueError, r"needs equal multiplicities"),
    (("2x0e", "3x0e", "3x0e", [(0, 0, 0, "uvu", True)]), {}, ValueError, r"multiplicity 2, got 3x0e"),
    (("1x0e", "1x0e", "1x0e", [(0, 0, 0, "uvw", False)]), {}, ValueError, r"needs has_weight=True"),
    (("1x0e", "1x0e", "1x0e", [(0, 0)]), {}, ValueError, r"instructions\[0\]=\(0, 0\) must be"),
    (("1x0e", "1x0e", "1x0e", []), {"irrep_normalization": "unit"}, ValueError, r"irrep_normalization='unit'"),
    (("1x0e", "1x0e", "1x0e", []), {"in1_var": [1, 2]}, ValueError, r"in1_var has 2 entries"),
    (("1x0e", "1x0e", "1x0e", [(0, 0, 0, "uvu", True)]), {"shared_weights": False, "internal_weights": True},
     ValueError, "needs shared_weights=True"),
    (("1x0z", "1x0e", "1x0e", []), {}, ValueError, r"irreps_in1='1x0z'"),
    (("1x0e", "1x0e", "1x0e", [(0, 0, 0, "uvu", "False")]), {}, ValueError, r"has_weight='False'; give True or"),
    (("1x0e", "1x0e", "1x0e", [(0, 0, 0, "uvu", True, -1.0)]), {}, ValueError, r"path_weight=-1.0; give a number"),
    (("1x0e", "1x0e", "1x0e", [(0, 0, 0, "uvu", True, "x")]), {}, ValueError, r"path_weight='x'"),
    (("1x0e", "1x0e", "1x0e", []), {"in2_var": [-1.0]}, ValueError, r"in2_var=\[-1.0\] must be variances"),
])
def test_bad_construction(args, kwargs, error, message):
    with pytest.raises(error, match=message):
        TensorProduct(*args, **kwargs)


def test_bad_calls():
    tp = FullyConnectedTensorProduct("2x0e + 1x1o", "0e + 1o", "1x1o")
    with pytest.raises(ValueError, match=r"x1 has shape \(3, 4\); its last dimension must be 5 \(irreps_in1"):
        tp(torch.randn(3, 4), torch.randn(3, 4))
    with pytest.raises(ValueError, match="do not broadcast"):
        tp(torch.randn(3, 5), torch.randn(2, 4))
    with pytest.raises(TypeError, match="x2 must be a floating-point tensor"):
        tp(torch.randn(3, 5), torch.ones(3, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="holds internal weights"):
        tp(torch.randn(3, 5), torch.randn(3, 4), torch.randn(tp.weight_numel))
    external = FullyConnectedTensorProduct("2x0e + 1x1o", "0e + 1o", "1x1o", shared_weights=False)
    with pytest.raises(ValueError, match=r"forward needs weight of shape \(\.\.\., 3,\)"):
        external(torch.randn(3, 5), torch.randn(3, 4))
    with pytest.raises(ValueError, match=r"weight has shape \(3, 4\); expected \(\.\.\., 3,\)"):
        external(torch.randn(3, 5), torch.randn(3, 4), torch.randn(3, 4))
