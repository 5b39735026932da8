"""kernelnn.testing: each check passes on a correct module and raises AssertionError on a broken one."""

import pytest
import torch
from torch import nn

from kernelnn.layers.spherical_harmonics import spherical_harmonics
from kernelnn.testing import (
    assert_autocast,
    assert_compiles,
    assert_equivariant,
    assert_gradcheck,
    assert_state_dict_round_trip,
    harmonic_irreps,
    irreps_dim,
    parse_irreps,
    random_rotation,
    representation,
)


# ------------------------------------------------------------------------------------------------ gradcheck
class DoubledParameterGrad(torch.autograd.Function):
    """``x * w`` whose backward doubles the gradient of ``w`` (and gets ``x``'s right)."""

    @staticmethod
    def forward(ctx, x, w):
        ctx.save_for_backward(x, w)
        return x * w

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved_tensors
        return grad * w, 2 * (grad * x).sum_to_size(w.shape)


class WrongInputGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.sin()

    @staticmethod
    def backward(ctx, grad):
        return grad  # should be grad * cos(x)


class Scale(nn.Module):
    def __init__(self, function=None):
        super().__init__()
        self.scale = nn.Parameter(torch.randn(3))
        self.function = function

    def forward(self, x):
        return self.function.apply(x, self.scale) if self.function else x * self.scale


def test_gradcheck_passes_in_float64_without_touching_the_module():
    layer = nn.Linear(3, 2)
    assert_gradcheck(layer, torch.randn(4, 3))
    assert layer.weight.dtype == torch.float32  # checked on a float64 copy
    assert_gradcheck(Scale(), torch.randn(2, 3))


def test_gradcheck_finds_a_wrong_parameter_gradient_and_names_it():
    with pytest.raises(AssertionError, match=r"(?s)input 1 = parameter 'scale'.*with respect to input 1"):
        assert_gradcheck(Scale(DoubledParameterGrad), torch.randn(2, 3))


def test_gradcheck_finds_a_wrong_input_gradient():
    class Sine(nn.Module):
        def forward(self, x):
            return WrongInputGrad.apply(x)

    with pytest.raises(AssertionError, match=r"(?s)gradcheck's input 0 = input 0.*with respect to input 0"):
        assert_gradcheck(Sine(), torch.randn(5))


def test_gradcheck_passes_integer_inputs_through():
    class Masked(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(3, 3)

        def forward(self, mask, x):
            return self.linear(x) * mask[..., None]

    assert_gradcheck(Masked(), torch.tensor([1, 0]), torch.randn(2, 3))


# ------------------------------------------------------------------------------------------------ state_dict
class UnsavedBuffer(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 2)
        self.register_buffer("shift", torch.randn(2), persistent=False)  # random, not rebuilt: a bug

    def forward(self, x):
        return self.linear(x) + self.shift


class PlainAttribute(nn.Linear):
    def __init__(self):
        super().__init__(3, 2)
        self.offset = torch.randn(2)  # not a buffer: not saved

    def forward(self, x):
        return super().forward(x) + self.offset


class Opaque:
    pass


class PickledExtraState(nn.Linear):
    def __init__(self):
        super().__init__(3, 2)

    def get_extra_state(self):
        return Opaque()

    def set_extra_state(self, state):
        pass


def test_state_dict_round_trip_passes_and_fails():
    x = torch.randn(4, 3)
    assert_state_dict_round_trip(lambda: nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)), x)
    with pytest.raises(AssertionError, match=r"(?s)UnsavedBuffer loaded from the saved state_dict differs.*output 0: "
                                             r"\d+ of 8 elements differ"):
        assert_state_dict_round_trip(UnsavedBuffer, x)
    with pytest.raises(AssertionError, match="PlainAttribute loaded from the saved state_dict differs"):
        assert_state_dict_round_trip(PlainAttribute, x)
    with pytest.raises(AssertionError, match=r"does not load with torch.load\(weights_only=True\)"):
        assert_state_dict_round_trip(PickledExtraState, x)


def test_state_dict_round_trip_fails_on_a_missing_key():
    sizes = iter([4, 5])
    with pytest.raises(AssertionError, match="cannot load the saved state_dict strictly"):
        assert_state_dict_round_trip(lambda: nn.Linear(3, next(sizes)), torch.randn(2, 3))


# ------------------------------------------------------------------------------------------------ compile
class CompileOnlyBug(nn.Module):
    """Right in eager mode; under torch.compile the forward (or only the backward) is wrong."""

    def __init__(self, where):
        super().__init__()
        self.where = where
        self.weight = nn.Parameter(torch.randn(3))

    def forward(self, x):
        y = x * self.weight
        if torch.compiler.is_compiling():
            if self.where == "forward":
                return y + 1e-3
            if self.where == "backward":
                return 2 * y - y.detach()  # same values, doubled gradient
            if self.where == "detached":
                return x * self.weight.detach()  # the parameter loses its gradient
        return y


def test_compiles_passes_with_inductor_and_aot_eager():
    layer = nn.Sequential(nn.Linear(3, 4), nn.Tanh())
    x = torch.randn(2, 3)
    assert_compiles(layer, x, fullgraph=True)
    assert_compiles(CompileOnlyBug("none"), x, backend="aot_eager")


@pytest.mark.parametrize(("where", "message"), [
    ("forward", r"differs from eager.\noutput 0: 6 of 6 elements differ"),
    ("backward", r"other gradients than eager mode.\ngradient of (input 0|parameter 'weight')"),
    ("detached", r"the gradient of parameter 'weight' is missing under torch.compile"),
])
def test_compiles_finds_compile_only_bugs(where, message):
    with pytest.raises(AssertionError, match=message):
        assert_compiles(CompileOnlyBug(where), torch.randn(2, 3), backend="aot_eager")


def test_compiles_still_compiles_past_the_recompile_limit():
    x = torch.randn(2, 3)
    for i in range(torch._dynamo.config.recompile_limit + 2):
        module = CompileOnlyBug("none")
        module.where = f"none {i}"  # a new constant for dynamo: each check recompiles the same code
        assert_compiles(module, x, backend="aot_eager")
    with pytest.raises(AssertionError, match="differs from eager"):  # not a silent eager run
        assert_compiles(CompileOnlyBug("forward"), x, backend="aot_eager")


def test_compiles_fails_on_graph_breaks_with_fullgraph_and_when_nothing_is_traced():
    class Breaks(nn.Module):
        def forward(self, x):
            x = x + 1
            torch._dynamo.graph_break()
            return x * 2

    assert_compiles(Breaks(), torch.randn(3), backend="aot_eager")
    with pytest.raises(AssertionError, match=r"torch.compile\(Breaks, fullgraph=True, backend='aot_eager'\) failed"):
        assert_compiles(Breaks(), torch.randn(3), fullgraph=True, backend="aot_eager")

    assert_compiles(nn.Identity(), torch.randn(3), backend="aot_eager")  # traced, nothing to compile: fine
    with torch._dynamo.config.patch(disable=True), pytest.raises(AssertionError, match="traced nothing"):
        assert_compiles(Breaks(), torch.randn(3), backend="aot_eager")  # not a silent pass


# ------------------------------------------------------------------------------------------------ autocast
class Cancels(nn.Linear):
    """``(Wx + 1000) - 1000``: exact in float32, off by up to 4 in bfloat16 (its spacing at 1000 is 8)."""

    def forward(self, x):
        return (super().forward(x) + 1000) - 1000


class Float32Output(nn.Linear):
    def forward(self, x):
        return super().forward(x).float()


class Squares(nn.Linear):
    def forward(self, x):
        return super().forward(300 * x).square()  # above float16's largest value, 65504


class InfGradientInLowPrecision(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad / 0 if grad.dtype == torch.bfloat16 else grad  # an overflow only the low precision meets


class FragileBackward(nn.Linear):
    def forward(self, x):
        return InfGradientInLowPrecision.apply(super().forward(x))


def test_autocast_passes_and_fails():
    torch.manual_seed(0)
    x = torch.randn(4, 3)
    assert_autocast(nn.Linear(3, 2), x)
    assert_autocast(Float32Output(3, 2), x, output_dtype=torch.float32)
    with pytest.raises(AssertionError, match=r"has dtype torch.float32; expected torch.bfloat16"):
        assert_autocast(Float32Output(3, 2), x)
    with pytest.raises(AssertionError, match=r"differs from float32 by .* of its largest value .* \(allowed 0.05\)"):
        assert_autocast(Cancels(3, 2), x)
    assert_autocast(Squares(3, 2), x, rtol=None)  # fine in bfloat16 (float32's exponent range) ...
    with pytest.raises(AssertionError, match=r"output 0 of Squares under autocast\(torch.float16\) has \d+ "
                                             r"non-finite values"):
        assert_autocast(Squares(3, 2), x, dtype=torch.float16, rtol=None)  # ... not in float16
    assert_autocast(FragileBackward(3, 2), x, backward=False)
    with pytest.raises(AssertionError, match=r"the gradient of input 0 of FragileBackward under "
                                             r"autocast\(torch.bfloat16\) has 12 non-finite values of 12"):
        assert_autocast(FragileBackward(3, 2), x)


# ------------------------------------------------------------------------------------------------ O(3)
def test_parse_irreps_and_dims():
    assert parse_irreps("2x0e + 1x1o + 2e") == ((2, 0, 1), (1, 1, -1), (1, 2, 1))
    assert parse_irreps("3y") == ((1, 3, -1),)
    assert irreps_dim("2x0e + 1x1o + 2e") == 10
    assert harmonic_irreps(2) == "0e + 1o + 2e"
    assert irreps_dim(harmonic_irreps(3, classes=2)) == 32
    with pytest.raises(ValueError, match=r"the term '1x' is not like '8x1o'"):
        parse_irreps("1x")


def test_representation_is_an_orthogonal_homomorphism_of_o3():
    g = torch.Generator().manual_seed(0)
    a, b = random_rotation(g), -random_rotation(g)
    irreps = "0e + 2x1o + 1e + 2e + 3o + 3e"
    for m in (a, b, a @ b):
        d = representation(irreps, m)
        torch.testing.assert_close(d @ d.T, torch.eye(irreps_dim(irreps), dtype=torch.float64))
    torch.testing.assert_close(representation(irreps, a @ b), representation(irreps, a) @ representation(irreps, b))
    torch.testing.assert_close(representation("1o", b), b)  # vectors: D(M) = M, rotoinversions included
    torch.testing.assert_close(representation("1e", b), -b)  # pseudovectors do not flip
    torch.testing.assert_close(representation("2x0o", b), -torch.eye(2, dtype=torch.float64))


def test_representation_matches_e3nn():
    o3 = pytest.importorskip("e3nn.o3")
    m = -random_rotation(torch.Generator().manual_seed(1))
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        expected = o3.Irreps("0e + 1o + 2e + 2o + 3o").D_from_matrix(m)
    finally:
        torch.set_default_dtype(default)
    torch.testing.assert_close(representation("0e + 1o + 2e + 2o + 3o", m), expected)


def test_equivariant_passes_on_harmonics_norms_and_cross_products():
    assert_equivariant(lambda v: spherical_harmonics(4, v), "1o", harmonic_irreps(4))
    assert_equivariant(lambda v: v.norm(dim=-1, keepdim=True), "1o", "0e")
    assert_equivariant(lambda a, b: torch.linalg.cross(a, b), ["1o", "1o"], "1e")
    # Trailing dims flattened: (batch, 2, 9) features of both parity classes; a mask passes unchanged.
    features = torch.randn(3, 2, 9, dtype=torch.float64)
    mask = torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64)
    assert_equivariant(lambda h, m: h * m[:, None, None], [harmonic_irreps(2, classes=2), None],
                       harmonic_irreps(2, classes=2), inputs=(features, mask))


def test_equivariant_fails_on_an_so3_only_layer_and_says_so():
    def odd_path(a, b):  # a cross product sent to a vector: right under rotations, wrong under inversions
        return torch.linalg.cross(a, b)

    assert_equivariant(odd_path, ["1o", "1o"], "1o", improper=False)  # SO(3) cannot tell
    with pytest.raises(AssertionError, match=r"(?s)output 0 of .*odd_path is not equivariant under rotoinversions and "
                                             r"inversions: .* It is equivariant under rotations only"):
        assert_equivariant(odd_path, ["1o", "1o"], "1o")


def test_equivariant_fails_on_a_layer_that_is_not_rotation_equivariant():
    stretch = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    with pytest.raises(AssertionError, match=r"is not equivariant under rotations and rotoinversions"):
        assert_equivariant(lambda v: v * stretch, "1o", "1o")
    # Wrong claimed parity of an input: an l = 1 harmonic treated as a pseudovector.
    with pytest.raises(AssertionError, match="rotations only"):
        assert_equivariant(lambda v: spherical_harmonics(1, v)[..., 1:], "1e", "1o")


def test_equivariant_refuses_vacuous_checks_and_bad_shapes():
    with pytest.raises(AssertionError, match="is zero, so the check could not fail"):
        assert_equivariant(lambda v: torch.zeros_like(v), "1o", "1o")
    with pytest.raises(ValueError, match=r"shape \(4, 3\): no trailing dims hold the 5 components"):
        assert_equivariant(lambda v: v, "1o", "2e")
    with pytest.raises(ValueError, match="2 inputs but 1 irreps_in"):
        assert_equivariant(lambda a, b: a, "1o", "1o", inputs=(torch.randn(2, 3), torch.randn(2, 3)))


def test_equivariant_float32_tolerance():
    torch.manual_seed(0)
    layer = nn.Linear(4, 3, bias=False)  # acts on multiplicities: equivariant for 4x1o -> 3x1o along channels

    def mix(v):  # (batch, 4, 3) -> (batch, 3, 3): channels mixed, each a vector
        return layer(v.transpose(-1, -2)).transpose(-1, -2)

    assert_equivariant(mix, "1o", "1o", inputs=(torch.randn(5, 4, 3),))
