"""CUDA checks: skipped on machines without a GPU (the CI machine has none)."""

import pytest
import torch

from kernelnn.layers import SpectralConv
from kernelnn.training import run

pytestmark = pytest.mark.gpu


def test_spectral_conv_cuda_matches_cpu():
    torch.manual_seed(0)
    conv = SpectralConv(4, 4, (6, 6))
    x = torch.randn(2, 4, 32, 32)
    expected = conv(x)
    got = conv.cuda()(x.cuda()).cpu()
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    with torch.autocast("cuda", dtype=torch.float16):
        half = conv(x.cuda())
    assert half.dtype == torch.float16 and torch.isfinite(half).all()


@pytest.mark.parametrize("amp", ["none", "bf16", "fp16"])
def test_training_on_cuda(tiny_darcy, tmp_path, amp):
    summary = run(tiny_darcy("trainer.epochs=2", "trainer.device=cuda", f"trainer.amp={amp}"), output_dir=tmp_path)
    assert summary["test"]["test_16/l2"] < 1.0
