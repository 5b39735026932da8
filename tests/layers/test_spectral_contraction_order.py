"""Factorized spectral weights: the lean CP and tensor-train contractions (gradients against autograd's, complex
float64), and ``implementation="auto"``, which must pick a path that keeps no more for backward than the other
(measured here with saved-tensor hooks) and compute the same operator."""

import pytest
import torch

from kernelnn.layers import SpectralConv
from kernelnn.layers.factorized_contractions import CPContraction, TTContraction


def kept_bytes(fn) -> int:
    """Bytes of the distinct storages autograd keeps for backward during ``fn()``."""
    seen = {}

    def pack(t):
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(seen.values())


def complex_inputs(*shapes):
    g = torch.Generator().manual_seed(0)
    return [torch.randn(*s, dtype=torch.complex128, generator=g).requires_grad_() for s in shapes]


def test_cp_contraction_gradients():
    x, a, c, b = complex_inputs((2, 3, 5), (3, 4), (4, 5), (2, 4))
    torch.autograd.gradcheck(CPContraction.apply, (x, a, c, b))
    reference = torch.einsum("brm,or->bom", torch.einsum("bim,ir->brm", x, a) * c, b)
    torch.testing.assert_close(CPContraction.apply(x, a, c, b), reference)


def test_tt_contraction_gradients():
    x, g0, p = complex_inputs((2, 3, 5), (3, 4), (4, 2, 5))
    torch.autograd.gradcheck(TTContraction.apply, (x, g0, p))
    reference = torch.einsum("bam,aom->bom", torch.einsum("bim,ia->bam", x, g0), p)
    torch.testing.assert_close(TTContraction.apply(x, g0, p), reference)


def test_lean_contractions_keep_less_than_autograd():
    x, a, c, b = complex_inputs((8, 6, 10), (6, 20), (20, 10), (6, 20))
    chain = kept_bytes(lambda: torch.einsum("brm,or->bom", torch.einsum("bim,ir->brm", x, a) * c, b))
    assert kept_bytes(lambda: CPContraction.apply(x, a, c, b)) < chain


@pytest.mark.parametrize("factorization", ["cp", "tucker", "tt"])
@pytest.mark.parametrize("batch, input_grad", [(2, False), (2, True), (64, False)])
def test_auto_keeps_no_more_than_either_path_and_computes_the_same(factorization, batch, input_grad):
    torch.manual_seed(0)
    convs = {impl: SpectralConv(8, 8, (4, 5), factorization=factorization, rank=0.3, implementation=impl)
             for impl in ("factorized", "reconstructed", "auto")}
    for conv in list(convs.values())[1:]:
        conv.load_state_dict(convs["factorized"].state_dict())
    x = torch.randn(batch, 8, 12, 12, requires_grad=input_grad)
    kept = {impl: kept_bytes(lambda c=conv: c(x)) for impl, conv in convs.items()}
    assert kept["auto"] <= min(kept["factorized"], kept["reconstructed"])
    torch.testing.assert_close(convs["auto"](x), convs["factorized"](x), rtol=1e-4, atol=1e-5)


def test_auto_follows_the_intermediate_sizes():
    """CP keeps A^T x (batch x rank x modes) factorized and an (in, out, rank) intermediate reconstructed: a small
    batch goes factorized, a large one without an input gradient reconstructed; without gradients, the fewer
    multiply-adds decide."""
    conv = SpectralConv(32, 32, (4, 5), factorization="cp", rank=0.3)  # rank 139
    x_ft = torch.zeros(2, 32, 7, 5, dtype=torch.complex64)
    assert conv._path(x_ft) == "factorized"
    assert conv._path(torch.zeros(256, 32, 7, 5, dtype=torch.complex64)) == "reconstructed"
    costs = conv.weight.costs(2, False)
    with torch.no_grad():
        fewer_work = min(costs, key=lambda path: costs[path][1])
        assert conv._path(x_ft) == fewer_work
    assert SpectralConv(32, 32, (4, 5))._path(x_ft) == "factorized"  # dense: one path
