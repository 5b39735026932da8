"""The fused Triton L1/Lp kernels against the chunked PyTorch path they replace on CUDA.

Without a GPU the kernels still run here: Triton's interpreter (``TRITON_INTERPRET=1``, read when the kernels are
defined, hence a fresh subprocess) executes them on CPU tensors, program by program.
"""

import os
import subprocess
import sys
import textwrap

import pytest
import torch

from kernelnn.layers import KernelConv2d

triton = pytest.importorskip("triton")

INTERPRETED_CHECK = textwrap.dedent("""
    import torch
    from kernelnn.testing import assert_gradcheck
    from kernelnn.layers import KernelConv1d, KernelConv2d

    torch.manual_seed(0)
    for q, groups in ((1.0, 1), (2.0, 2), (1.5, 1)):
        layers = {}
        for backend in ("torch", "triton"):
            torch.manual_seed(1)
            layers[backend] = KernelConv2d(4, 6, 3, stride=2, padding=2, dilation=2, groups=groups,
                                           padding_mode="reflect", kernel="lp", q=q, backend=backend).double()
            with torch.no_grad():
                layers[backend].raw_taps.normal_(generator=torch.Generator().manual_seed(2))
        x = torch.randn(2, 4, 9, 8, dtype=torch.float64, requires_grad=True)
        outs = {b: layer(x) for b, layer in layers.items()}
        torch.testing.assert_close(outs["triton"], outs["torch"])
        grad_out = torch.randn_like(outs["torch"])
        grads = {b: torch.autograd.grad(outs[b], [x, layers[b].weight, layers[b].raw_taps], grad_out)
                 for b in layers}
        for a, b in zip(grads["triton"], grads["torch"], strict=True):
            assert b.abs().max() > 0
            torch.testing.assert_close(a, b)
        # float32 in, float32 accumulation
        x32 = torch.randn(3, 4, 7, 7)
        torch.testing.assert_close(layers["triton"].float()(x32), layers["torch"].float()(x32),
                                   rtol=1e-5, atol=1e-4)

    # gradcheck of the fused path itself, with every operand a variable
    layer = KernelConv1d(2, 3, 3, padding=1, kernel="l1", backend="triton").double()
    x = torch.randn(2, 2, 5, dtype=torch.float64, requires_grad=True)
    assert_gradcheck(layer, x)
    print("TRITON-INTERPRETED-OK")
""")


def test_fused_kernels_match_the_pytorch_path_in_the_triton_interpreter():
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    result = subprocess.run([sys.executable, "-c", INTERPRETED_CHECK], env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "TRITON-INTERPRETED-OK" in result.stdout


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("q", [1.0, 1.5])
def test_fused_kernels_match_the_pytorch_path_on_cuda(q):
    torch.manual_seed(0)
    layer = KernelConv2d(8, 16, 3, padding=1, groups=2, kernel="lp", q=q).cuda()
    x = torch.randn(4, 8, 12, 12, device="cuda", requires_grad=True)
    out_fused = layer(x)  # backend "auto": Triton on CUDA
    layer.backend = "torch"
    out_torch = layer(x)
    torch.testing.assert_close(out_fused, out_torch, rtol=1e-5, atol=1e-4)
    grad_out = torch.randn_like(out_torch)
    for a, b in zip(torch.autograd.grad(out_fused, [x, layer.weight, layer.raw_taps], grad_out),
                    torch.autograd.grad(out_torch, [x, layer.weight, layer.raw_taps], grad_out), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-3)


def test_backend_is_validated_and_triton_refuses_cpu_without_the_interpreter():
    with pytest.raises(ValueError, match="KernelConv2d: backend='cuda' must be one of auto, torch, compiled, triton"):
        KernelConv2d(3, 4, 3, kernel="l1", backend="cuda")
    if os.environ.get("TRITON_INTERPRET") != "1":
        layer = KernelConv2d(3, 4, 3, kernel="l1", backend="triton")
        with pytest.raises(RuntimeError, match="lp_distance_triton: needs Triton and a CUDA tensor"):
            layer(torch.randn(1, 3, 5, 5))
