"""TruKAN convolutions against the layer they generalise: a TruKANLinear on every unfolded padded patch
(the reference), outputs and gradients; groups; and named errors. The registry adds gradcheck, autocast,
compile, state_dict and the input harness for ``trukan``."""

import pytest
import torch
import torch.nn.functional as F

from kernelnn.layers import TruKANConv1d, TruKANConv2d, TruKANLinear
from kernelnn.layers.conv_args import pad


def patchwise_trukan(conv: TruKANConv2d) -> TruKANLinear:
    """The TruKANLinear on flattened patches (feature ``c * taps + tap``) that ``conv`` should equal."""
    out, channels, n_basis, *kernel = conv.weight.shape
    taps = kernel[0] * kernel[1]
    linear = TruKANLinear(channels * taps, out, order=conv.order, n_knots=conv.n_knots, learn_knots=True,
                          knot_range=conv.knot_range).double()
    weight = conv.weight.detach().flatten(3).permute(0, 1, 3, 2).reshape(out, channels * taps, n_basis)
    with torch.no_grad():
        linear.raw_gaps.copy_(conv.raw_gaps.repeat_interleave(taps, 0))
        linear.poly_weight.copy_(weight[..., : conv.order + 1])
        linear.trunc_weight.copy_(weight[..., conv.order + 1:])
    return linear


@pytest.mark.parametrize(("order", "padding_mode", "stride"), [(3, "zeros", 1), (2, "reflect", 2), (1, "circular", 1)])
def test_the_convolution_is_a_trukan_on_every_patch(order, padding_mode, stride):
    torch.manual_seed(0)
    conv = TruKANConv2d(3, 4, (3, 2), stride=stride, padding=1, padding_mode=padding_mode, order=order,
                        n_knots=4, learn_knots=True).double()
    with torch.no_grad():
        conv.raw_gaps.normal_()  # knots away from uniform
    linear = patchwise_trukan(conv)
    x = torch.rand(2, 3, 7, 6, dtype=torch.float64) * 2 - 1
    y = conv(x)
    patches = F.unfold(pad(x, [(1, 1), (1, 1)], padding_mode), (3, 2), stride=stride)  # (N, C taps, L)
    expected = linear(patches.transpose(1, 2)).transpose(1, 2).reshape(y.shape)
    torch.testing.assert_close(y, expected)
    # Gradients of the knots agree too (every tap of a channel shares its knots: the linear's rows sum).
    (grad,) = torch.autograd.grad(y.square().sum(), conv.raw_gaps)
    (expected_grad,) = torch.autograd.grad(expected.square().sum(), linear.raw_gaps)
    torch.testing.assert_close(grad, expected_grad.unflatten(0, (3, -1)).sum(1))


def test_groups_are_separate_convolutions():
    torch.manual_seed(0)
    conv = TruKANConv1d(4, 6, 3, groups=2, padding=1, learn_knots=True).double()
    halves = [TruKANConv1d(2, 3, 3, padding=1, learn_knots=True).double() for _ in range(2)]
    with torch.no_grad():
        conv.raw_gaps.normal_()  # every input channel its own knots
        for i, half in enumerate(halves):
            half.weight.copy_(conv.weight[3 * i: 3 * i + 3])
            half.raw_gaps.copy_(conv.raw_gaps[2 * i: 2 * i + 2])
    x = torch.rand(2, 4, 9, dtype=torch.float64) * 2 - 1
    expected = torch.cat([half(part) for half, part in zip(halves, x.split(2, dim=1), strict=True)], dim=1)
    torch.testing.assert_close(conv(x), expected)


@pytest.mark.parametrize(("build", "message"), [
    (lambda: TruKANConv2d(3, 4, 3, groups=2), r"TruKANConv2d: in_channels=3 and out_channels=4 must be divisible"),
    (lambda: TruKANConv2d(3, 4, 3, order=0, learn_knots=True), r"TruKANConv2d: learn_knots=True needs order >= 1"),
    (lambda: TruKANConv2d(3, 4, 3, knot_range=(1, 0)), r"TruKANConv2d: knot_range=\(1, 0\) must be \(low, high\)"),
    (lambda: TruKANConv2d(3, 4, 3, knot_range=(0, float("nan"))), r"TruKANConv2d: knot_range=\(0, nan\) must be"),
    (lambda: TruKANConv2d(3, 4, 0), r"TruKANConv2d: kernel_size=0 must be an int >= 1"),
    (lambda: TruKANConv2d(3, 4, 3, padding_mode="mirror"), r"TruKANConv2d: padding_mode='mirror' must be one of"),
    (lambda: TruKANConv2d(3, 4, 3)(torch.rand(2, 5, 8, 8)),
     r"TruKANConv2d: input must have shape \(batch, 3, n, n\), got \(2, 5, 8, 8\)"),
])
def test_bad_arguments_are_named(build, message):
    with pytest.raises(ValueError, match=message):
        build()
