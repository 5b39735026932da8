import pytest
import torch

from kernelnn.models import CNN
from kernelnn.registry import CONVOLUTIONS


@pytest.mark.parametrize("conv", CONVOLUTIONS.names())
def test_every_registered_convolution_builds_a_classifier(conv):
    torch.manual_seed(0)
    model = CNN(1, 10, channels=[4, 6], conv=conv)
    out = model(torch.rand(3, 1, 12, 12))
    assert out.shape == (3, 10) and torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_cnn_in_1d_and_3d_and_errors():
    assert CNN(2, 3, channels=[4], dim=1)(torch.randn(2, 2, 16)).shape == (2, 3)
    assert CNN(1, 3, channels=[4], dim=3, conv="distance_l2")(torch.randn(2, 1, 6, 6, 6)).shape == (2, 3)
    with pytest.raises(ValueError, match="CNN: conv='adder' is not a known convolution; valid: cauchy, conv"):
        CNN(1, 10, conv="adder")
    with pytest.raises(ValueError, match=r"CNN: input must have shape \(batch, 1, n, n\)"):
        CNN(1, 10)(torch.randn(2, 3, 28, 28))
    with pytest.raises(ValueError, match="too small for 2 pooling stages"):
        CNN(1, 10)(torch.randn(2, 1, 3, 3))
    with pytest.raises(ValueError, match="kernel_size=4 must be an odd positive int"):
        CNN(1, 10, kernel_size=4)
