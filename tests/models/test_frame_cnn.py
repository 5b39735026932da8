import pytest
import torch
from torch import nn

from kernelnn.layers import DeltaActivation, DeltaConv2d, DeltaLinear, TimeDistributed, delta_layers
from kernelnn.models import FrameCNN


def dense_twin(model: FrameCNN) -> nn.Module:
    """The same network with quantised activations and ordinary layers (what the delta version must equal)."""
    twin = FrameCNN(1, 10, channels=[4, 8], delta=False)
    twin.load_state_dict(model.state_dict(), strict=False)
    for i, module in enumerate(model.features):
        if isinstance(module, DeltaActivation):
            twin.features[i] = DeltaActivation("relu", output="quantized", threshold_shape=module.threshold_shape,
                                               features=module.features)
            twin.features[i].load_state_dict(module.state_dict())
        if isinstance(module, DeltaConv2d):
            conv = nn.Conv2d(4, 8, 3, padding=1, bias=False)
            conv.load_state_dict(module.state_dict())
            twin.features[i] = TimeDistributed(conv)
    twin.head.module.load_state_dict(model.head.state_dict())
    return twin


@pytest.mark.parametrize("threshold_shape", ["layer", "channel"])
def test_delta_network_equals_its_quantized_dense_twin(threshold_shape):
    torch.manual_seed(0)
    model = FrameCNN(1, 10, channels=[4, 8], delta=True, delta_options={"threshold_shape": threshold_shape}).eval()
    assert [type(m) for m in model.features if isinstance(m, (DeltaActivation, DeltaConv2d))] == [
        DeltaActivation, DeltaConv2d, DeltaActivation]
    assert isinstance(model.head, DeltaLinear)
    x = torch.rand(2, 6, 1, 16, 16)
    torch.testing.assert_close(model(x), dense_twin(model).eval()(x), rtol=1e-4, atol=1e-5)
    # fan_out: MACs per output of each delta layer in the layer after it.
    assert [m.fan_out for m in delta_layers(model).values()] == [8 * 9, 10]


def test_dense_network_and_training_step():
    model = FrameCNN(1, 10, channels=[4, 8])
    out = model(torch.rand(3, 5, 1, 16, 16))
    assert out.shape == (3, 10) and not delta_layers(model)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_errors():
    with pytest.raises(ValueError, match=r"FrameCNN: input must have shape \(batch, time, 1, H, W\)"):
        FrameCNN(1, 10)(torch.rand(2, 1, 16, 16))
    with pytest.raises(ValueError, match="too small for 2 pooling stages"):
        FrameCNN(1, 10)(torch.rand(2, 3, 1, 3, 3))
    with pytest.raises(ValueError, match="threshold_shape must be 'layer' or 'channel'"):
        FrameCNN(1, 10, delta=True, delta_options={"threshold_shape": "neuron"})
