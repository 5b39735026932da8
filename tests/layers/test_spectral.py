import math

import pytest
import torch

from kernelnn.layers import SpectralConv
from kernelnn.layers.spectral import max_modes
from tests.conftest import assert_state_dict_round_trip

FACTORIZATIONS = ["dense", "separable", "cp", "tucker", "tt"]


@pytest.mark.parametrize(
    "modes, spatial", [((5,), (16,)), ((4, 3), (12, 10)), ((3, 3, 2), (8, 6, 5))], ids=["1d", "2d", "3d"]
)
def test_shapes(modes, spatial):
    conv = SpectralConv(3, 5, modes)
    assert conv(torch.randn(2, 3, *spatial)).shape == (2, 5, *spatial)
    finer = tuple(2 * s for s in spatial)
    assert conv(torch.randn(2, 3, *spatial), output_shape=finer).shape == (2, 5, *finer)


@pytest.mark.parametrize("factorization", FACTORIZATIONS)
def test_parameters_are_real(factorization):
    conv = SpectralConv(3, 3, (4, 5), factorization=factorization, rank=0.5)
    assert all(not p.is_complex() and p.shape[-1] == 2 for p in conv.parameters())
    if factorization == "dense":
        assert conv.weight.weight.shape == (3, 3, 7, 5, 2)  # 2m-1 frequencies on leading dims, m on the last


def band_limited(points: int, freqs, seed=0, channels=3):
    """A random real 2-D trigonometric polynomial with |k| < freqs, sampled on the grid i / points."""
    g = torch.Generator().manual_seed(seed)
    x = torch.arange(points, dtype=torch.float64) / points
    X, Y = torch.meshgrid(x, x, indexing="ij")
    u = torch.zeros(channels, points, points, dtype=torch.float64)
    for k1 in range(-freqs + 1, freqs):
        for k2 in range(freqs):
            a, b = torch.randn(2, channels, generator=g, dtype=torch.float64)
            phase = 2 * math.pi * (k1 * X + k2 * Y)
            u += a[:, None, None] * torch.cos(phase) + b[:, None, None] * torch.sin(phase)
    return u[None]


@pytest.mark.parametrize("factorization", FACTORIZATIONS)
def test_resolution_invariance(factorization):
    torch.manual_seed(0)
    conv = SpectralConv(3, 3, (6, 6), factorization=factorization, rank=0.5).double()
    coarse, fine = band_limited(32, 8), band_limited(64, 8)
    torch.testing.assert_close(coarse, fine[..., ::2, ::2])
    out_coarse, out_fine = conv(coarse), conv(fine)
    torch.testing.assert_close(out_coarse, out_fine[..., ::2, ::2], rtol=1e-10, atol=1e-10)
    # Zero-shot super-resolution: evaluating the coarse input on the fine grid gives the fine output.
    torch.testing.assert_close(conv(coarse, output_shape=(64, 64)), out_fine, rtol=1e-10, atol=1e-10)


def test_nyquist_row_is_never_kept():
    n = 16
    conv = SpectralConv(1, 1, (max_modes(n), max_modes(n))).double()
    x = torch.arange(n, dtype=torch.float64)
    nyquist = torch.cos(math.pi * x)[:, None] * torch.ones(n, dtype=torch.float64)[None, :]  # k1 = N/2
    assert conv(nyquist[None, None]).abs().max() < 1e-12
    low = torch.cos(2 * math.pi * 7 * x / n)[:, None].expand(n, n)  # k1 = 7 = N/2 - 1 is kept
    assert conv(low[None, None].contiguous()).abs().max() > 1e-6


def test_matches_dense_dft_reference():
    """The layer equals an explicit sum over the kept modes of R_k * u_hat_k e^{2 pi i k x}."""
    torch.manual_seed(1)
    n, m, cin, cout = 8, 3, 2, 2
    conv = SpectralConv(cin, cout, (m,)).double()
    u = torch.randn(1, cin, n, dtype=torch.float64)
    x = torch.arange(n, dtype=torch.float64) / n
    w = torch.view_as_complex(conv.weight.weight)  # (cin, cout, m)
    ref = torch.zeros(1, cout, n, dtype=torch.float64)
    for k in range(m):
        u_hat = (u.to(torch.complex128) * torch.exp(-2j * math.pi * k * x)).mean(-1)  # (1, cin)
        coeff = torch.einsum("bi,io->bo", u_hat, w[:, :, k])
        term = coeff[..., None] * torch.exp(2j * math.pi * k * x)
        ref += term.real if k == 0 else 2 * term.real  # conjugate mode -k of a real signal
    # irfft ignores the imaginary part of the k = 0 coefficient, like the real part above.
    torch.testing.assert_close(conv(u), ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("factorization", FACTORIZATIONS)
@pytest.mark.parametrize("modes, spatial", [((3,), (8,)), ((2, 2), (5, 4)), ((2, 2, 2), (4, 4, 3))])
def test_gradcheck(modes, spatial, factorization):
    torch.manual_seed(0)
    conv = SpectralConv(2, 2, modes, factorization=factorization, rank=2).double()
    names = [n for n, _ in conv.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_() for p in conv.parameters())
    x = torch.randn(1, 2, *spatial, dtype=torch.float64, requires_grad=True)

    def f(inp, *ps):
        return torch.func.functional_call(conv, dict(zip(names, ps, strict=True)), (inp,))

    assert torch.autograd.gradcheck(f, (x, *params))


@pytest.mark.parametrize("factorization", FACTORIZATIONS)
@pytest.mark.parametrize("modes, spatial", [((5,), (16,)), ((4, 3), (12, 10)), ((3, 3, 2), (8, 6, 5))])
def test_factorized_equals_reconstructed(factorization, modes, spatial):
    torch.manual_seed(0)
    conv = SpectralConv(4, 4, modes, factorization=factorization, rank=0.4).double()
    x = torch.randn(2, 4, *spatial, dtype=torch.float64)
    direct = conv(x)
    conv.implementation = "reconstructed"
    torch.testing.assert_close(conv(x), direct, rtol=1e-12, atol=1e-14)
    assert direct.abs().max() > 1e-6


@pytest.mark.parametrize("factorization", ["cp", "tucker", "tt"])
def test_rank_fraction_bounds_the_parameter_count(factorization):
    dense = SpectralConv(32, 32, (12, 12)).n_weights
    for fraction in (0.02, 0.1, 0.5):
        conv = SpectralConv(32, 32, (12, 12), factorization=factorization, rank=fraction)
        assert conv.n_weights <= fraction * dense
        assert conv.n_weights >= 0.3 * fraction * dense  # close to the budget, not far below it
    assert SpectralConv(32, 32, (12, 12), factorization="cp", rank=5).weight.rank == 5


@pytest.mark.parametrize("factorization", FACTORIZATIONS)
def test_more_modes_start_at_zero_and_keep_the_function(factorization):
    torch.manual_seed(0)
    conv = SpectralConv(3, 3, (4, 3), factorization=factorization, rank=0.5).double()
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    before = conv(x)
    conv.n_modes = (8, 8)
    assert conv.n_modes == (8, 8)
    torch.testing.assert_close(conv(x), before, rtol=1e-12, atol=1e-14)
    conv.implementation = "reconstructed"
    dense = conv.weight.reconstruct(torch.float64)
    assert dense.shape[2:] == (15, 8)
    assert dense[:, :, 4:-3].abs().max() == 0 and dense[:, :, :, 3:].abs().max() == 0  # new modes are zero
    conv(x).pow(2).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in conv.parameters())
    conv.n_modes = (4, 3)  # and back: the original operator
    conv.implementation = "factorized"
    torch.testing.assert_close(conv(x), before, rtol=1e-12, atol=1e-14)


def test_bad_inputs():
    conv = SpectralConv(3, 4, (4, 4))
    with pytest.raises(ValueError, match=r"SpectralConv: input must have shape \(batch, 3, n, n\)"):
        conv(torch.randn(2, 3, 16))
    with pytest.raises(ValueError, match="input has 2 channels, in_channels=3"):
        conv(torch.randn(2, 2, 16, 16))
    with pytest.raises(ValueError, match="exceeds the Nyquist limit of a 6x16 input; at most \\[3, 8\\]"):
        conv(torch.randn(2, 3, 6, 16))
    with pytest.raises(TypeError, match="floating point"):
        conv(torch.ones(2, 3, 16, 16, dtype=torch.int64))
    with pytest.raises(ValueError, match="output_shape"):
        conv(torch.randn(2, 3, 16, 16), output_shape=(4, 16))
    with pytest.raises(ValueError, match="n_modes=\\[0, 4\\] must be positive"):
        SpectralConv(3, 4, (0, 4))
    with pytest.raises(ValueError, match="dim"):
        SpectralConv(3, 4, 4)
    with pytest.raises(ValueError, match="in_channels=0"):
        SpectralConv(0, 4, (4,))
    with pytest.raises(ValueError, match="factorization='svd' is not a known spectral weight factorization; valid: cp"):
        SpectralConv(3, 4, (4,), factorization="svd")
    with pytest.raises(ValueError, match="separable' needs in_channels == out_channels, got 3 and 4"):
        SpectralConv(3, 4, (4,), factorization="separable")
    for bad in (0, 1.5, -0.1, "big"):
        with pytest.raises(ValueError, match="rank"):
            SpectralConv(3, 4, (4,), factorization="cp", rank=bad)
    with pytest.raises(ValueError, match="implementation='fast'"):
        SpectralConv(3, 4, (4,), implementation="fast")


def test_autocast_returns_autocast_dtype_and_matches_float32():
    torch.manual_seed(0)
    conv = SpectralConv(4, 4, (5, 5))
    x = torch.randn(2, 4, 16, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = conv(x)
    assert y.dtype == torch.bfloat16
    ref = conv(x)
    assert (y.float() - ref).abs().max() <= 1e-2 * ref.abs().max()  # only the final cast loses precision


def test_torch_compile_matches_eager():
    torch.manual_seed(0)
    conv = SpectralConv(3, 3, (4, 4))
    x = torch.randn(2, 3, 12, 12)
    compiled = torch.compile(conv)
    torch.testing.assert_close(compiled(x), conv(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("factorization", FACTORIZATIONS)
def test_state_dict_round_trip_weights_only(factorization):
    assert_state_dict_round_trip(lambda: SpectralConv(3, 3, (4, 4), factorization=factorization, rank=0.5),
                                 torch.randn(1, 3, 10, 10))


@pytest.mark.parametrize("factorization", ["cp", "tucker", "tt"])
def test_one_adam_step_changes_a_factorized_weight_moderately(factorization):
    """The init spreads the scale over all factors: no factor is so small that Adam's first step explodes it."""
    torch.manual_seed(0)
    conv = SpectralConv(32, 32, (12, 12), factorization=factorization, rank=0.05)
    before = conv.weight.reconstruct().detach().clone()
    optimizer = torch.optim.Adam(conv.parameters(), lr=1e-3)
    conv(torch.randn(8, 32, 32, 32)).pow(2).mean().backward()
    optimizer.step()
    change = (conv.weight.reconstruct().detach() - before).norm() / before.norm()
    assert change < 0.5


@pytest.mark.parametrize("n_modes", ["12", (4.9, 4), True, (4, None)])
def test_n_modes_must_be_integers(n_modes):
    with pytest.raises(ValueError, match=r"SpectralConv: n_modes=.* must be an int or a sequence of ints"):
        SpectralConv(3, 8, n_modes=n_modes, dim=2)


def test_an_empty_batch_gives_an_empty_output():
    conv = SpectralConv(3, 8, n_modes=(4, 4))
    assert conv(torch.randn(0, 3, 16, 16)).shape == (0, 8, 16, 16)
