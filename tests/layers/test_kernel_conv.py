import pytest
import torch
import torch.nn.functional as F
from torch import nn

from kernelnn.layers.kernel_conv import (
    KERNELS,
    DistanceLinear,
    KernelConv1d,
    KernelConv2d,
    KernelConv3d,
    KernelLinear,
)
from kernelnn.layers.lp_distance import lp_distance_reference
from kernelnn.testing import assert_autocast, assert_compiles, assert_gradcheck, assert_state_dict_round_trip

LAYERS = {1: (KernelConv1d, nn.Conv1d), 2: (KernelConv2d, nn.Conv2d), 3: (KernelConv3d, nn.Conv3d)}
SIZES = {1: (11,), 2: (9, 8), 3: (6, 5, 7)}


def perturbed(layer):
    """Move every kernel parameter off its initial value, so each one matters in the checks."""
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for name, p in layer.named_parameters():
            if name != "weight" and name != "bias":
                p.add_(0.3 * torch.randn(p.shape, generator=generator, dtype=p.dtype))
    return layer


def unfold_reference(layer, x):
    """The similarity by explicit patches: what the layer computes without ever building this tensor."""
    patches = layer._patches(x)  # (batch, groups, taps, positions), tested against F.unfold below
    g, o = layer.groups, layer.out_channels
    w = layer.weight.reshape(g, o // g, -1)
    inner = torch.einsum("ngil,goi->ngol", patches, w).flatten(1, 2)
    k = layer.kernel
    if k in ("l2", "l1", "lp"):
        sim = -lp_distance_reference(patches, w, layer.taps().reshape(g, o // g, -1), layer.q)
    elif k == "linear":
        sim = inner
    elif k == "polynomial":
        sim = (inner + F.softplus(layer.raw_offset)[:, None]) ** layer.degree
    elif k == "sigmoid":
        sim = torch.tanh(layer.slope[:, None] * inner + layer.offset[:, None])
    else:
        d2 = lp_distance_reference(patches, w, torch.ones_like(w), 2.0)
        gamma = F.softplus(layer.raw_gamma)[:, None]
        sim = torch.exp(-gamma * d2) if k == "gaussian" else 1 / (1 + gamma * d2)
    return sim.reshape(x.shape[0], o, *layer.output_shape(x.shape[2:]))


@pytest.mark.parametrize("dim", [1, 2, 3])
@pytest.mark.parametrize("padding_mode", ["zeros", "reflect", "circular"])
def test_linear_kernel_is_exactly_nn_conv(dim, padding_mode):
    ours_cls, conv_cls = LAYERS[dim]
    torch.manual_seed(0)
    ours = ours_cls(4, 6, 3, stride=2, padding=1, dilation=1, groups=2, padding_mode=padding_mode)
    torch.manual_seed(0)
    conv = conv_cls(4, 6, 3, stride=2, padding=1, dilation=1, groups=2, padding_mode=padding_mode)
    assert torch.equal(ours.weight, conv.weight) and torch.equal(ours.bias, conv.bias)  # same initialisation
    x = torch.randn(2, 4, *SIZES[dim])
    torch.testing.assert_close(ours(x), conv(x), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("dim", [1, 2, 3])
def test_every_kernel_matches_the_explicit_patch_reference(kernel, dim):
    layer_cls, _ = LAYERS[dim]
    torch.manual_seed(1)
    layer = perturbed(layer_cls(4, 6, 3, stride=(2,) * dim, padding=2, dilation=2, groups=2, bias=False,
                                kernel=kernel, q=1.5, degree=3, padding_mode="reflect", chunk_elements=500)).double()
    x = torch.randn(2, 4, *SIZES[dim], dtype=torch.float64)
    torch.testing.assert_close(layer(x), unfold_reference(layer, x))


def test_patches_equal_f_unfold():
    layer = KernelConv2d(4, 6, 3, stride=2, padding=1, dilation=2, groups=2)
    x = torch.randn(2, 4, 9, 8)
    expected = F.unfold(x, 3, dilation=2, padding=1, stride=2).reshape(2, 2, 2 * 9, -1)
    torch.testing.assert_close(layer._patches(x), expected)


@pytest.mark.parametrize("kernel", ["l1", "lp"])
def test_chunked_lp_equals_one_chunk_in_value_and_gradient(kernel):
    torch.manual_seed(2)
    layer = perturbed(KernelConv2d(3, 8, 3, padding=1, kernel=kernel, q=1.7)).double()
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64, requires_grad=True)
    outputs, grads = [], []
    for chunk in (10**9, 150):  # one block; then one output channel per block
        layer.chunk_elements = chunk
        out = layer(x)
        outputs.append(out)
        grads.append(torch.autograd.grad(out.square().sum(), [x, layer.weight, layer.raw_taps]))
    torch.testing.assert_close(outputs[0], outputs[1])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("kernel", KERNELS)
def test_gradcheck_every_kernel(kernel):
    torch.manual_seed(4)
    layer = perturbed(KernelConv2d(2, 4, 3, padding=1, groups=2, kernel=kernel, q=1.5, output_fn="sine",
                                   chunk_elements=40)).double()
    x = torch.randn(2, 2, 4, 5, dtype=torch.float64, requires_grad=True)
    assert_gradcheck(layer, x)


def test_output_functions_dense_layers_and_state_dict():
    x = torch.randn(5, 7)
    linear = KernelLinear(7, 3)
    reference = nn.Linear(7, 3)
    reference.weight.data.copy_(linear.conv.weight[..., 0])
    reference.bias.data.copy_(linear.conv.bias)
    torch.testing.assert_close(linear(x), reference(x))
    dist = DistanceLinear(7, 3, kernel="l1", output_fn="exp")
    u, w = dist.conv.taps()[..., 0], dist.conv.weight[..., 0]
    expected = torch.exp(-(u * (x[:, None] - w).abs()).sum(-1) + dist.conv.bias)
    torch.testing.assert_close(dist(x), expected)
    plain = KernelLinear(7, 3, kernel="l2")
    custom = KernelLinear(7, 3, kernel="l2", output_fn=torch.sigmoid)
    custom.load_state_dict(plain.state_dict())
    torch.testing.assert_close(custom(x), torch.sigmoid(plain(x)))
    assert_state_dict_round_trip(lambda: perturbed(KernelConv2d(3, 4, 3, kernel="gaussian")), torch.randn(2, 3, 6, 6))


@pytest.mark.parametrize("kernel", ["l2", "l1", "gaussian"])
def test_compile_and_autocast(kernel):
    layer = perturbed(KernelConv2d(3, 4, 3, padding=1, kernel=kernel))
    x = torch.randn(2, 3, 8, 8)
    assert_compiles(layer, x, rtol=1e-4, atol=1e-4)
    # The l2 expansion returns bfloat16; l1 and the kernels (exp, ...) keep their output in float32.
    assert_autocast(layer, x, output_dtype=(torch.bfloat16, torch.float32))


def test_bad_arguments():
    with pytest.raises(ValueError, match="KernelConv2d: kernel='rbf' is not a known kernel; valid: linear, "
                                         "polynomial, gaussian, cauchy, sigmoid, l2, l1, lp"):
        KernelConv2d(3, 4, 3, kernel="rbf")
    with pytest.raises(ValueError, match=r"KernelConv2d: input must have shape \(batch, 3, n, n\), got \(2, 5, 8, 8\)"):
        KernelConv2d(3, 4, 3)(torch.randn(2, 5, 8, 8))
    with pytest.raises(ValueError, match="must be divisible by groups=2"):
        KernelConv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="q=0.5 must be >= 1"):
        KernelConv2d(3, 4, 3, kernel="lp", q=0.5)
    with pytest.raises(ValueError, match="output_fn='relu' is not a callable or one of identity, exp, sine"):
        KernelConv2d(3, 4, 3, output_fn="relu")
    with pytest.raises(ValueError, match="smaller than the \\(dilated\\) kernel"):
        KernelConv2d(3, 4, 5)(torch.randn(1, 3, 3, 3))
    with pytest.raises(ValueError, match="DistanceLinear: kernel='gaussian' must be one of l2, l1, lp"):
        DistanceLinear(3, 4, kernel="gaussian")
