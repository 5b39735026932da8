"""DeltaLinear / DeltaConv2d: accumulation equals the dense layer on q(a), streaming, MAC counts."""

import itertools

import pytest
import torch
from torch import nn

from kernelnn.layers import DeltaActivation, DeltaConv2d, DeltaLinear, TimeDistributed
from kernelnn.testing import assert_gradcheck, assert_state_dict_round_trip


def sparse_deltas(*shape, density=0.3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=gen)
    return x * (torch.rand(*shape, generator=gen) < density)


def test_delta_linear_equals_linear_on_the_running_sum():
    linear = nn.Linear(6, 4)
    layer = DeltaLinear.from_linear(linear)
    deltas = sparse_deltas(2, 7, 3, 6)  # (batch, time, extra, in)
    torch.testing.assert_close(layer(deltas), linear(deltas.cumsum(1)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kwargs", [{"padding": 1}, {"stride": 2}, {"dilation": 2, "padding": 2},
                                    {"groups": 2, "padding": 1, "padding_mode": "circular"}, {"padding": "same"}])
def test_delta_conv_equals_conv_on_the_running_sum(kwargs):
    conv = nn.Conv2d(4, 6, 3, **kwargs)
    layer = DeltaConv2d.from_conv(conv)
    deltas = sparse_deltas(2, 5, 4, 9, 9)
    expected = TimeDistributed(conv)(deltas.cumsum(1))
    torch.testing.assert_close(layer(deltas), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("make", [lambda: DeltaLinear(6, 4), lambda: DeltaConv2d(3, 5, 3, padding=1)])
def test_streaming_equals_sequence_mode(make):
    layer = make().eval()
    shape = (2, 6, 6) if isinstance(layer, DeltaLinear) else (2, 6, 3, 8, 8)
    deltas = sparse_deltas(*shape)
    sequence = layer(deltas)
    for _ in range(2):
        layer.reset()
        streamed = torch.stack([layer.step(deltas[:, t]) for t in range(shape[1])], 1)
        torch.testing.assert_close(streamed, sequence, rtol=1e-6, atol=1e-6)


def test_delta_activation_into_delta_conv_equals_quantized_activation_into_conv():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3, padding=1)
    x = torch.randn(2, 6, 3, 8, 8)
    deltas = DeltaActivation("relu", threshold=0.125)(x)
    q = DeltaActivation("relu", threshold=0.125, output="quantized")(x)
    torch.testing.assert_close(DeltaConv2d.from_conv(conv)(deltas), TimeDistributed(conv)(q), rtol=1e-5, atol=1e-5)


def test_linear_mac_count():
    layer = DeltaLinear(6, 4).eval()
    deltas = sparse_deltas(2, 5, 6)
    layer(deltas)
    stats = layer.mac_statistics()
    assert stats["macs_dense"] == deltas.numel() * 4
    assert stats["macs_performed"] == torch.count_nonzero(deltas).item() * 4
    assert stats["macs_skipped"] == stats["macs_dense"] - stats["macs_performed"]
    layer.train()
    layer(deltas)  # training passes are not counted
    assert layer.mac_statistics()["macs_dense"] == stats["macs_dense"]
    layer.reset_statistics()
    assert layer.mac_statistics()["macs_dense"] == 0


@pytest.mark.parametrize("kwargs", [{"padding": 1}, {"stride": 2}, {"dilation": 2, "padding": 1},
                                    {"groups": 2, "padding": 1}])
def test_conv_mac_count_matches_a_brute_force_count(kwargs):
    layer = DeltaConv2d(4, 6, 3, **kwargs).eval()
    deltas = sparse_deltas(1, 2, 4, 7, 7)
    layer(deltas)
    stats = layer.mac_statistics()
    s, d, p, g = layer.stride[0], layer.dilation[0], layer.padding[0], layer.groups
    out_size = (7 + 2 * p - d * 2 - 1) // s + 1
    dense = performed = 0
    for t, o, i, j in itertools.product(range(2), range(6), range(out_size), range(out_size)):
        group = o // (6 // g)
        for c, ki, kj in itertools.product(range(group * 4 // g, (group + 1) * 4 // g), range(3), range(3)):
            r, col = i * s - p + ki * d, j * s - p + kj * d
            if 0 <= r < 7 and 0 <= col < 7:  # taps on padding cost nothing
                dense += 1
                performed += bool(deltas[0, t, c, r, col] != 0)
    assert (stats["macs_dense"], stats["macs_performed"]) == (dense, performed)


@pytest.mark.parametrize("make", [lambda: DeltaLinear(3, 2), lambda: DeltaConv2d(2, 2, 3, padding=1)])
def test_gradcheck(make):
    layer = make().double()
    shape = (2, 3, 3) if isinstance(layer, DeltaLinear) else (1, 3, 2, 4, 4)
    assert_gradcheck(layer, torch.randn(shape, dtype=torch.float64))


@pytest.mark.parametrize("make", [lambda: DeltaLinear(6, 4), lambda: DeltaConv2d(3, 5, 3, padding=1)])
def test_compile_and_state_dict(make):
    layer = make().eval()
    x = sparse_deltas(*((2, 4, 6) if isinstance(layer, DeltaLinear) else (2, 4, 3, 8, 8)))
    compiled = torch.compile(layer, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x), layer(x), rtol=1e-6, atol=1e-6)
    assert_state_dict_round_trip(make, x)


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"DeltaLinear.forward: input must be \(batch, time, ..., in_features\)"):
        DeltaLinear(6, 4)(torch.randn(2, 5, 7))
    with pytest.raises(ValueError, match=r"DeltaConv2d.forward: input must be \(batch, time, C_in, H, W\)"):
        DeltaConv2d(3, 4, 3)(torch.randn(2, 3, 8, 8))
    with pytest.raises(ValueError, match=r"DeltaConv2d.step: input must be \(batch, C_in, H, W\)"):
        DeltaConv2d(3, 4, 3).step(torch.randn(2, 5, 3, 8, 8))
    layer = DeltaLinear(6, 4)
    layer.step(torch.randn(2, 6))
    with pytest.raises(ValueError, match="call reset"):
        layer.step(torch.randn(3, 6))
    with pytest.raises(ValueError, match="TimeDistributed"):
        TimeDistributed(nn.Linear(2, 2))(torch.randn(2, 2))
