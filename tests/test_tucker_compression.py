"""tfno_from_fno: HOSVD + ALS compression of a dense FNO's spectral weights into Tucker factors."""

import pytest
import torch

from kernelnn.layers import SpectralConv
from kernelnn.layers.spectral_weights import as_complex
from kernelnn.models import FNO
from kernelnn.tucker_compression import tfno_from_fno, tucker_decompose, tucker_reconstruct


def random_low_rank(shape, ranks, noise=0.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    core = torch.randn(*ranks, dtype=torch.complex128, generator=g)
    factors = [torch.randn(n, r, dtype=torch.complex128, generator=g) for n, r in zip(shape, ranks, strict=True)]
    t = tucker_reconstruct(core, factors)
    return t + noise * t.abs().mean() * torch.randn(*shape, dtype=torch.complex128, generator=g)


def relative(a, b):
    return ((a - b).norm() / b.norm()).item()


def test_hosvd_recovers_an_exactly_low_rank_tensor():
    t = random_low_rank((6, 5, 7, 4), (2, 3, 3, 2))
    core, factors = tucker_decompose(t, (2, 3, 3, 2))
    assert core.shape == (2, 3, 3, 2)
    assert relative(tucker_reconstruct(core, factors), t) < 1e-10
    for u in factors:  # orthonormal columns
        torch.testing.assert_close(u.conj().T @ u, torch.eye(u.shape[1], dtype=u.dtype))


def test_als_never_raises_the_error_and_rank_lowers_it():
    t = random_low_rank((8, 8, 9, 5), (4, 4, 5, 3), noise=0.3)
    errors = {}
    for ranks in [(2, 2, 2, 2), (3, 3, 4, 3), (4, 4, 5, 3)]:
        for sweeps in (0, 3):
            core, factors = tucker_decompose(t, ranks, als_iterations=sweeps)
            errors[ranks, sweeps] = relative(tucker_reconstruct(core, factors), t)
        assert errors[ranks, 3] <= errors[ranks, 0] + 1e-12
    assert errors[(2, 2, 2, 2), 0] > errors[(3, 3, 4, 3), 0] > errors[(4, 4, 5, 3), 0]


@pytest.mark.parametrize("convention, modes", [("kernelnn", (4, 3)), ("neuralop", (6, 6))])
def test_full_rank_compression_computes_the_same_operator(convention, modes):
    torch.manual_seed(0)
    model = FNO(1, 1, n_modes=modes, hidden_channels=4, n_layers=2, modes_convention=convention).double()
    full = list(model.spectral[0].weight.weight.shape[:-1])  # (C_in, C_out, *stored modes); last dim is re/im
    if convention == "neuralop":  # M = 6 kept frequencies in 7 slots: rank 6 is full once the unused slot is zeroed
        full[2] = modes[0]
    compressed = tfno_from_fno(model, rank=full)
    assert model.spectral[0].factorization == "dense"  # the original is untouched
    assert compressed.spectral[0].factorization == "tucker"
    x = torch.randn(2, 1, 16, 16, dtype=torch.float64)
    torch.testing.assert_close(compressed(x), model(x), rtol=1e-9, atol=1e-9)


def test_compressed_model_reloads_as_a_tfno_and_has_fewer_parameters():
    torch.manual_seed(0)
    model = FNO(1, 1, n_modes=(6, 6), hidden_channels=8, n_layers=2)
    compressed = tfno_from_fno(model, rank=0.1, als_iterations=2)
    ranks = compressed.spectral[0].weight.ranks
    rebuilt = FNO(1, 1, n_modes=(6, 6), hidden_channels=8, n_layers=2, factorization="tucker", rank=list(ranks))
    rebuilt.load_state_dict(compressed.state_dict())
    x = torch.randn(1, 1, 16, 16)
    torch.testing.assert_close(rebuilt(x), compressed(x))
    count = lambda m: sum(p.numel() for p in m.spectral.parameters())  # noqa: E731
    assert count(compressed) < 0.15 * count(model)
    dense = as_complex(model.spectral[0].weight.weight.detach(), torch.float64)
    approx = compressed.spectral[0].weight.reconstruct(torch.float64)
    assert 0 < relative(approx, dense) < 1


def test_infeasible_ranks_are_lowered_for_a_one_channel_layer():
    torch.manual_seed(0)
    model = torch.nn.Sequential(SpectralConv(4, 1, n_modes=(4, 4)))  # any module with dense SpectralConvs
    compressed = tfno_from_fno(model, rank=[4, 1, 1, 1])  # r_in = 4 > r_out * r_modes = 1
    assert compressed[0].weight.ranks == (1, 1, 1, 1)
    with pytest.raises(ValueError, match=r"ranks=\[4, 1, 1\] do not fit a tensor of shape \[6, 4, 2\]"):
        tucker_decompose(torch.randn(6, 4, 2, dtype=torch.complex128), (4, 1, 1))


def test_errors():
    model = FNO(1, 1, n_modes=(4, 4), hidden_channels=4, n_layers=1)
    with pytest.raises(ValueError, match="factorization='cp' is not supported; 'tucker'"):
        tfno_from_fno(model, factorization="cp")
    with pytest.raises(ValueError, match="has no dense SpectralConv"):
        tfno_from_fno(FNO(1, 1, n_modes=(4, 4), factorization="tucker"))
    with pytest.raises(ValueError, match="als_iterations=-1"):
        tfno_from_fno(model, als_iterations=-1)
