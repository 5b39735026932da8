"""DeltaActivation: quantisation, deltas, streaming, the paper's gradients, statistics, errors."""

import pytest
import torch
from torch import nn

from kernelnn.layers import DeltaActivation, TimeDistributed, delta_layers, replace_activations
from kernelnn.layers.delta import delta_quantize
from kernelnn.testing import assert_state_dict_round_trip

SHAPES = {"features": (3, 7, 5), "video": (2, 6, 3, 4, 4)}  # (batch, time, features), (batch, time, C, H, W)


@pytest.mark.parametrize("kind", SHAPES)
@pytest.mark.parametrize("threshold_shape", ["layer", "channel", "neuron"])
def test_shapes_and_deltas_sum_back_to_quantized_activations(kind, threshold_shape):
    shape = SHAPES[kind]
    features = {"layer": None, "channel": shape[2], "neuron": shape[2:]}[threshold_shape]
    layer = DeltaActivation("relu", threshold=0.125, threshold_shape=threshold_shape, features=features)
    x = torch.randn(shape)
    deltas = layer(x)
    assert deltas.shape == x.shape
    q = layer.quantize(torch.relu(x))
    # A power-of-two step makes every multiple and partial sum exact in float32: bitwise equality.
    assert torch.equal(deltas.cumsum(1), q)
    assert torch.equal(q, torch.round(torch.relu(x) / 0.125) * 0.125)
    layer.output = "quantized"
    assert torch.equal(layer(x), q)


def test_deltas_sum_back_for_any_step_up_to_rounding():
    layer = DeltaActivation(None, threshold=0.1)
    x = 3 * torch.randn(4, 16, 8, dtype=torch.float64)
    q = layer.quantize(x)
    levels = torch.round(x / 0.1)
    assert torch.equal(torch.round(layer(x) / 0.1).cumsum(1), levels)  # integer levels: exact
    torch.testing.assert_close(layer(x).cumsum(1), q, rtol=0, atol=1e-13)


def test_time_dim_other_than_one():
    layer = DeltaActivation("relu", time_dim=0)
    x = torch.randn(6, 3, 5)  # (time, batch, features)
    expected = DeltaActivation("relu")(x.transpose(0, 1)).transpose(0, 1)
    torch.testing.assert_close(layer(x), expected, rtol=0, atol=0)


@pytest.mark.parametrize("output", ["delta", "quantized"])
@pytest.mark.parametrize("kind", SHAPES)
def test_streaming_equals_sequence_mode(output, kind):
    layer = DeltaActivation("relu", threshold=0.1, output=output, threshold_shape="channel",
                            features=SHAPES[kind][2])
    x = torch.randn(SHAPES[kind])
    sequence = layer(x)
    for _ in range(2):  # reset() starts over
        layer.reset()
        streamed = torch.stack([layer.step(x[:, t]) for t in range(x.shape[1])], 1)
        torch.testing.assert_close(streamed, sequence, rtol=0, atol=0)


def test_step_refuses_a_changed_frame_shape_until_reset():
    layer = DeltaActivation()
    layer.step(torch.randn(2, 5))
    with pytest.raises(ValueError, match="call reset"):
        layer.step(torch.randn(3, 5))
    layer.reset()
    layer.step(torch.randn(3, 5))


def test_straight_through_gradient_of_the_input():
    layer = DeltaActivation("relu", output="quantized")
    x = torch.randn(4, 6, 10, requires_grad=True)
    weight = torch.randn(4, 6, 10)
    (layer(x) * weight).sum().backward()
    torch.testing.assert_close(x.grad, weight * (x > 0))  # round is the identity for gradients


def test_threshold_gradient_has_the_papers_sign():
    theta = torch.tensor(0.1, requires_grad=True)
    a = torch.rand(1000) * 2
    delta_quantize(a, theta).sum().backward()
    levels = torch.round(a / 0.1)
    torch.testing.assert_close(theta.grad, -levels.sum())  # dq/dtheta = -round(a / theta)
    assert theta.grad < 0


def test_sparsity_penalty_raises_the_threshold():
    layer = DeltaActivation("relu", threshold=0.1)
    layer(torch.randn(8, 10, 32) * 2)
    layer.sparsity_loss().backward()
    # Gradient descent moves theta against its gradient: the penalty asks for coarser steps.
    assert layer.threshold_parameter.grad < 0
    optimizer = torch.optim.SGD(layer.parameters(), lr=1e-2)
    before = layer.threshold().item()
    optimizer.step()
    assert layer.threshold().item() > before


def test_threshold_stays_positive():
    layer = DeltaActivation(threshold=0.1, threshold_shape="channel", features=3)
    with torch.no_grad():
        layer.threshold_parameter.copy_(torch.tensor([-0.2, 0.0, 0.3]))
    theta = layer.threshold()
    assert (theta > 0).all()
    torch.testing.assert_close(theta, torch.tensor([0.2, 1e-6, 0.3]))
    # A task loss pulling theta down hard (large steps) never makes it non-positive.
    optimizer = torch.optim.SGD(layer.parameters(), lr=10.0)
    for _ in range(20):
        optimizer.zero_grad()
        (-layer(torch.rand(4, 5, 3) + 1).sum()).backward()
        optimizer.step()
        assert (layer.threshold() > 0).all() and torch.isfinite(layer(torch.rand(4, 5, 3))).all()


def test_sparsity_loss_is_fan_out_times_mean_absolute_delta_after_the_first_frame():
    layer = DeltaActivation(None, threshold=0.25, fan_out=7.0)
    x = torch.randn(3, 5, 4)
    deltas = layer(x)
    torch.testing.assert_close(layer.sparsity_loss(), 7.0 * deltas[:, 1:].abs().mean())
    layer(x[:, :1])
    torch.testing.assert_close(layer.sparsity_loss(), 7.0 * layer.quantize(x[:, :1]).abs().mean())


def test_statistics_count_zero_deltas_over_all_frames():
    layer = DeltaActivation("relu", threshold=0.5)
    x = torch.randn(2, 8, 16)
    deltas, q = layer(x), layer.quantize(torch.relu(x))
    layer.reset_statistics()
    layer(x)
    layer.step(x[:, 0])
    stats = layer.statistics()
    n = x.numel() + x[:, 0].numel()
    assert stats["elements"] == n
    nonzero_streamed = torch.count_nonzero(q[:, 0])  # the first streamed frame's delta is q itself
    assert stats["delta_density"] == pytest.approx((torch.count_nonzero(deltas) + nonzero_streamed).item() / n)
    assert stats["activation_density"] == pytest.approx((torch.count_nonzero(q) + nonzero_streamed).item() / n)


def test_gradients_equal_the_straight_through_surrogates_derivatives():
    """Away from rounding boundaries the layer's gradients are the derivatives of the surrogate the paper
    trains with: q ~ act(x) - act(x0) + r0 * (2 theta0 - theta). Checked against central differences of that
    surrogate, for the output and the penalty, in the input and in per-channel thresholds."""
    torch.manual_seed(0)
    layer = DeltaActivation(nn.Softplus(), threshold=0.1, threshold_shape="channel", features=3, fan_out=2.0).double()
    theta0 = torch.tensor([0.1, 0.2, 0.15], dtype=torch.float64)
    with torch.no_grad():
        layer.threshold_parameter.copy_(theta0)
    # Activations a quarter step away from every rounding boundary of their channel's step.
    a0 = (torch.randint(0, 5, (2, 5, 3, 4)) + 0.25 + 0.5 * (torch.rand(2, 5, 3, 4) > 0.5)) * theta0[:, None]
    x0 = torch.log(torch.expm1(a0))  # softplus^-1
    weight = torch.randn(2, 5, 3, 4, dtype=torch.float64)

    def objective(out):
        return (out * weight).sum() + layer.sparsity_loss()

    x = x0.clone().requires_grad_()
    objective(layer(x)).backward()
    grad_x, grad_theta = x.grad, layer.threshold_parameter.grad

    levels = torch.round(a0 / theta0[:, None])

    def surrogate(xv, thetav):
        q = nn.functional.softplus(xv) - a0 + levels * (2 * theta0[:, None] - thetav[:, None])
        delta = q - torch.cat([torch.zeros_like(q[:, :1]), q[:, :-1]], 1)
        return (delta * weight).sum() + 2.0 * delta[:, 1:].abs().mean()

    eps = 1e-6
    for _ in range(3):
        v = torch.randn_like(x0)
        numeric = (surrogate(x0 + eps * v, theta0) - surrogate(x0 - eps * v, theta0)) / (2 * eps)
        torch.testing.assert_close((grad_x * v).sum(), numeric, rtol=1e-6, atol=1e-8)
        w = torch.randn(3, dtype=torch.float64)
        numeric = (surrogate(x0, theta0 + eps * w) - surrogate(x0, theta0 - eps * w)) / (2 * eps)
        torch.testing.assert_close((grad_theta * w).sum(), numeric, rtol=1e-6, atol=1e-8)
    # ...and the layer's forward equals the surrogate's value at the base point (no flips near x0).
    for shift in (1e-7, -1e-7):
        assert torch.equal(torch.round(nn.functional.softplus(x0 + shift) / theta0[:, None]), levels)


def test_torch_compile_fullgraph():
    layer = DeltaActivation("relu", threshold_shape="channel", features=3)
    compiled = torch.compile(layer, fullgraph=True, backend="aot_eager")
    x = torch.randn(2, 5, 3, 4, 4)
    torch.testing.assert_close(compiled(x), layer(x), rtol=0, atol=0)
    assert layer.statistics()["elements"] == 2 * x.numel()


def test_autocast_keeps_working():
    layer = DeltaActivation("relu", threshold=0.125)
    x = torch.randn(2, 6, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(x.bfloat16())
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float().cumsum(1), layer.quantize(torch.relu(x.bfloat16())).float(),
                               rtol=0, atol=0)


def test_state_dict_round_trip():
    def make():
        layer = DeltaActivation("relu", threshold_shape="channel", features=4)
        with torch.no_grad():
            layer.threshold_parameter.uniform_(0.05, 0.3)
        return layer

    assert_state_dict_round_trip(make, torch.randn(2, 5, 4))


def test_replace_activations_wraps_each_chosen_activation_once():
    model = nn.Sequential(TimeDistributed(nn.Linear(4, 8)), nn.ReLU(), TimeDistributed(nn.Linear(8, 2)), nn.Tanh())
    x = torch.randn(3, 5, 4)
    names = replace_activations(model, nn.ReLU, threshold=0.125)
    assert names == ["1"] and replace_activations(model, nn.ReLU) == []
    assert list(delta_layers(model)) == ["1"] and model[1].output == "quantized"
    hidden = model[1].quantize(torch.relu(model[0](x)))
    torch.testing.assert_close(model(x), torch.tanh(model[2](hidden)))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"threshold": 0.0}, "threshold=0.0 must be a finite number > 0"),
    ({"threshold": -0.1}, "threshold=-0.1 must be a finite number > 0"),
    ({"threshold": float("inf")}, "threshold=inf must be a finite number > 0"),
    ({"threshold_shape": "pixel"}, "threshold_shape='pixel'"),
    ({"threshold_shape": "channel"}, "needs features="),
    ({"threshold_shape": "channel", "features": (3, 4)}, "features=<channels>"),
    ({"output": "spikes"}, "output='spikes'"),
    ({"fan_out": 0}, "fan_out=0 must be > 0"),
    ({"activation": "swishy"}, "swishy"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DeltaActivation(**kwargs)


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"DeltaActivation: input must be \(batch, time, ...\)"):
        DeltaActivation()(torch.randn(4, 5))  # no time dimension
    with pytest.raises(ValueError, match="expects 3 channels right after the time dimension"):
        DeltaActivation(threshold_shape="channel", features=3)(torch.randn(2, 5, 4, 8, 8))
    with pytest.raises(ValueError, match=r"expects frames of shape \(3, 4\)"):
        DeltaActivation(threshold_shape="neuron", features=(3, 4))(torch.randn(2, 5, 3, 5))
    with pytest.raises(ValueError, match="time_dim=3 is out of range"):
        DeltaActivation(time_dim=3)(torch.randn(2, 5, 4))
    with pytest.raises(RuntimeError, match="run a forward pass first"):
        DeltaActivation().sparsity_loss()


def test_integer_input_is_refused_not_turned_into_nan():
    with pytest.raises(TypeError, match="DeltaActivation: input must be a floating-point tensor, got torch.int64"):
        DeltaActivation()(torch.ones(2, 3, 4, dtype=torch.long))
