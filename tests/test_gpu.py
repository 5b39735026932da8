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


@pytest.mark.parametrize("method", ["dense", "grid", "fourier"])
def test_gaunt_methods_cuda_match_cpu(method):
    from kernelnn import gaunt_tensor_product

    x, y = torch.randn(64, 4, 25, dtype=torch.float64), torch.randn(64, 4, 16, dtype=torch.float64)
    expected = gaunt_tensor_product(x, y, 5, method="dense")
    out = gaunt_tensor_product(x.cuda(), y.cuda(), 5, method=method)
    torch.testing.assert_close(out.cpu(), expected, rtol=1e-10, atol=1e-12)


def test_equivariant_energy_forces_cuda_match_cpu():
    from kernelnn.models import EquivariantNet

    torch.manual_seed(0)
    net = EquivariantNet(1, output="energy_forces", L=2, channels=8, layers=2, parities="all").double()
    x = torch.randn(4, 7, 3, dtype=torch.float64)
    expected = net(x)
    out = net.cuda()(x.cuda())
    torch.testing.assert_close(out.cpu(), expected, rtol=1e-9, atol=1e-10)
    out[:, 1:].square().sum().backward()  # the force loss's double backward on the GPU
