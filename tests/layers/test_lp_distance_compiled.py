"""The compiled (inductor) L1/Lp kernels against the chunked PyTorch path they replace on CPU: outputs and every
gradient, groups, strides and padding modes, several blocks of samples, and which path "auto" takes."""

import pytest
import torch

from kernelnn.layers import KernelConv1d, KernelConv2d
from kernelnn.layers import lp_distance as lp
from kernelnn.layers import lp_distance_compiled as compiled
from kernelnn.testing import assert_gradcheck

pytestmark = pytest.mark.skipif(not compiled.compiled_usable(), reason="no C++ compiler for inductor")


def pair(q, groups, **options):
    layers = {}
    for backend in ("torch", "compiled"):
        torch.manual_seed(1)
        layers[backend] = KernelConv2d(4, 6, 3, groups=groups, kernel="lp", q=q, backend=backend, **options).double()
        with torch.no_grad():
            layers[backend].raw_taps.normal_(generator=torch.Generator().manual_seed(2))
    return layers


@pytest.mark.parametrize("q, groups, options", [
    (1.0, 1, {"padding": 1}),
    (1.5, 2, {"stride": 2, "padding": 2, "dilation": 2, "padding_mode": "reflect"}),
])
def test_compiled_kernels_match_the_pytorch_path_with_gradients(q, groups, options):
    layers = pair(q, groups, **options)
    # chunk_elements small enough for several blocks of samples (the last one short)
    for layer in layers.values():
        layer.chunk_elements = 2 * 4 // groups * 9 * 81
    x = torch.randn(5, 4, 9, 9, dtype=torch.float64, requires_grad=True)
    outs = {b: layer(x) for b, layer in layers.items()}
    torch.testing.assert_close(outs["compiled"], outs["torch"])
    grad_out = torch.randn_like(outs["torch"])
    grads = {b: torch.autograd.grad(outs[b], [x, layers[b].weight, layers[b].raw_taps], grad_out) for b in layers}
    for a, b in zip(grads["compiled"], grads["torch"], strict=True):
        assert b.abs().max() > 0
        torch.testing.assert_close(a, b)


def test_gradcheck_of_the_compiled_path():
    layer = KernelConv1d(2, 3, 3, padding=1, kernel="l1", backend="compiled").double()
    assert_gradcheck(layer, torch.randn(2, 2, 5, dtype=torch.float64, requires_grad=True))


def test_auto_compiles_large_inputs_only(monkeypatch):
    calls = []
    original = compiled.lp_distance_compiled
    monkeypatch.setattr(compiled, "lp_distance_compiled", lambda *a: calls.append(a) or original(*a))
    layer = KernelConv2d(2, 3, 3, padding=1, kernel="l1")
    x = torch.randn(2, 2, 6, 6)
    work = 2 * 3 * 18 * 36  # batch x filters x taps x positions
    monkeypatch.setattr(lp, "COMPILE_FROM", work + 1)
    small = layer(x)
    assert not calls
    monkeypatch.setattr(lp, "COMPILE_FROM", work)
    torch.testing.assert_close(layer(x), small, rtol=1e-5, atol=1e-5)
    assert len(calls) == 1


def test_inside_a_compiled_model():
    """An outer torch.compile traces the plain functions (no compiled call inside a traced one)."""
    torch.manual_seed(0)
    layer = KernelConv2d(3, 4, 3, padding=1, kernel="l1", backend="compiled")
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    eager = layer(x)
    (grad,) = torch.autograd.grad(eager.sum(), x)
    out = torch.compile(layer)(x)
    torch.testing.assert_close(out, eager)
    torch.testing.assert_close(torch.autograd.grad(out.sum(), x)[0], grad)
