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


def cp_chain(x, a, c, b):
    return torch.einsum("brm,or->bom", torch.einsum("bim,ir->brm", x, a) * c, b)


def tt_chain(x, g0, p):
    return torch.einsum("bam,aom->bom", torch.einsum("bim,ia->bam", x, g0), p)


@pytest.mark.parametrize("function, chain, shapes", [
    (CPContraction, cp_chain, [(2, 3, 5), (3, 4), (4, 5), (2, 4)]),
    (TTContraction, tt_chain, [(2, 3, 5), (3, 4), (4, 2, 5)]),
])
def test_lean_contractions_differentiate_like_the_einsum_chain(function, chain, shapes):
    """Values, gradients, second derivatives, forward mode and torch.func, in complex float64."""
    inputs = complex_inputs(*shapes)
    torch.testing.assert_close(function.apply(*inputs), chain(*inputs))
    assert torch.autograd.gradcheck(function.apply, inputs)
    assert torch.autograd.gradgradcheck(function.apply, inputs)
    plain = [t.detach() for t in inputs]
    tangents = [torch.randn_like(t) for t in plain]
    with torch.autograd.forward_ad.dual_level():
        duals = [torch.autograd.forward_ad.make_dual(t, d) for t, d in zip(plain, tangents, strict=True)]
        ours, reference = (torch.autograd.forward_ad.unpack_dual(f(*duals)).tangent for f in (function.apply, chain))
    torch.testing.assert_close(ours, reference)

    def real_map(f):  # torch.func wants real inputs
        return lambda xr: torch.view_as_real(f(torch.view_as_complex(xr), *plain[1:]))

    x_real = torch.view_as_real(plain[0]).contiguous()
    torch.testing.assert_close(torch.func.jacrev(real_map(function.apply))(x_real),
                               torch.func.jacrev(real_map(chain))(x_real))


def test_lean_contractions_keep_less_than_autograd():
    x, a, c, b = complex_inputs((8, 6, 10), (6, 20), (20, 10), (6, 20))
    chain = kept_bytes(lambda: torch.einsum("brm,or->bom", torch.einsum("bim,ir->brm", x, a) * c, b))
    assert kept_bytes(lambda: CPContraction.apply(x, a, c, b)) < chain


@pytest.mark.parametrize("factorization", ["cp", "tucker", "tt"])
@pytest.mark.parametrize("batch, input_grad", [(2, False), (2, True), (64, False)])
def test_auto_keeps_no_more_than_reconstruction_unless_it_saves_work(factorization, batch, input_grad):
    """Measured with saved-tensor hooks: auto's path keeps no more than the reconstructed one, or (when it keeps
    more) is the one with less estimated work by over 10%; and it computes the same operator."""
    torch.manual_seed(0)
    convs = {impl: SpectralConv(8, 8, (4, 5), factorization=factorization, rank=0.3, implementation=impl)
             for impl in ("factorized", "reconstructed", "auto")}
    for conv in list(convs.values())[1:]:
        conv.load_state_dict(convs["factorized"].state_dict())
    x = torch.randn(batch, 8, 12, 12, requires_grad=input_grad)
    kept = {impl: kept_bytes(lambda c=conv: c(x)) for impl, conv in convs.items()}
    picked = convs["auto"]._path(torch.zeros(batch, 8, 7, 5, dtype=torch.complex64, requires_grad=input_grad))
    assert kept["auto"] == kept[picked]
    if kept["auto"] > kept["reconstructed"]:
        costs = convs["auto"].weight.costs(batch, input_grad)
        assert costs[picked][1] * 1.1 < costs["reconstructed"][1]
    torch.testing.assert_close(convs["auto"](x), convs["factorized"](x), rtol=1e-4, atol=1e-5)


def test_auto_follows_the_intermediate_sizes():
    """Tucker keeps batch-sized intermediates factorized and a weight-sized one reconstructed: a small batch goes
    factorized, a large one reconstructed. Factorized CP keeps less at any batch, but at batch 256 needs 8.5x the
    work, so auto reconstructs there; without gradients, the fewer multiply-adds decide."""
    tucker = SpectralConv(32, 32, (4, 5), factorization="tucker", rank=0.3)
    cp = SpectralConv(32, 32, (4, 5), factorization="cp", rank=0.3)  # rank 139

    def block(batch):
        return torch.zeros(batch, 32, 7, 5, dtype=torch.complex64)

    assert tucker._path(block(2)) == "factorized" and tucker._path(block(256)) == "reconstructed"
    assert cp._path(block(2)) == "factorized" and cp._path(block(256)) == "reconstructed"
    costs = cp.weight.costs(256, False)
    assert costs["factorized"][0] < costs["reconstructed"][0] and costs["factorized"][1] > 8 * costs["reconstructed"][1]
    with torch.no_grad():
        for conv in (tucker, cp):
            costs = conv.weight.costs(2, False)
            assert conv._path(block(2)) == min(costs, key=lambda path: costs[path][1])
    assert SpectralConv(32, 32, (4, 5))._path(block(2)) == "factorized"  # dense: one path
