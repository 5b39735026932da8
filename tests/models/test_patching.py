import pytest
import torch
from torch import nn

from kernelnn.models import FNO
from kernelnn.models.patching import MGPatching


class FirstChannels(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels

    def forward(self, x):
        return x[:, : self.channels]


@pytest.mark.parametrize("levels, padding", [(0, 0), (1, 2), (2, 3)])
def test_identity_model_is_reconstructed_exactly(levels, padding):
    x = torch.randn(2, 3, 32, 48)
    wrapper = MGPatching(FirstChannels(3), levels=levels, padding=padding)
    assert torch.equal(wrapper(x), x)


def test_context_levels_are_coarser_wider_windows():
    """Level l of a patch is the field subsampled by 2^l around the patch centre (periodically)."""
    x = torch.arange(32 * 32, dtype=torch.float64).reshape(1, 1, 32, 32)
    wrapper = MGPatching(FirstChannels(1), levels=1, padding=0)
    patches = wrapper.patches(x)  # (4, 2, 16, 16)
    assert patches.shape == (4, 2, 16, 16)
    assert torch.equal(patches[0, 0], x[0, 0, :16, :16])  # the patch itself
    coarse = x[0, 0, ::2, ::2]  # 16x16 covering the whole field: patch 0's centre (8, 8) -> (4, 4)
    expected = coarse.roll((4, 4), dims=(0, 1))  # rows/cols 4-8 .. 4+8 periodically, i.e. -4..11
    assert torch.equal(patches[0, 1], expected)


def test_with_a_neural_operator_and_errors():
    model = MGPatching(FNO(2, 1, n_modes=(4, 4), hidden_channels=8, n_layers=2), levels=1, padding=2)
    assert model(torch.randn(3, 1, 32, 32)).shape == (3, 1, 32, 32)
    with pytest.raises(ValueError, match=r"must be divisible by 2\^\(2 \* levels\) = 16 \(levels=2\)"):
        MGPatching(FirstChannels(1), levels=2)(torch.randn(1, 1, 24, 24))
    with pytest.raises(ValueError, match="levels=-1"):
        MGPatching(FirstChannels(1), levels=-1)
