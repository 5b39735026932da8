"""Local integral operators (DISCO convolutions on equidistant grids) and Fourier resampling: the discretisations
converge as the grid is refined, the FFT path equals the direct one, and the layer's usual properties."""

import math

import pytest
import torch
import torch.nn.functional as F

from kernelnn.layers import LocalIntegralConv1d, LocalIntegralConv2d, fourier_resample
from kernelnn.layers.local_integral import DIRECT_MAX_PIXELS, basis_l1_norms, fft_correlate
from kernelnn.testing import assert_autocast, assert_compiles, assert_gradcheck, assert_state_dict_round_trip


def smooth_field(n, m=None):
    """Two smooth periodic channels on the grid ``i / n`` x ``j / m``: ``(1, 2, n, m)`` in float64."""
    x = torch.arange(n, dtype=torch.float64) / n
    y = torch.arange(m or n, dtype=torch.float64) / (m or n)
    x, y = torch.meshgrid(x, y, indexing="ij")
    return torch.stack([torch.sin(2 * math.pi * x) * torch.cos(4 * math.pi * y),
                        torch.exp(torch.sin(2 * math.pi * (x + y)))])[None]


def relative(a, b):
    return ((a - b).norm() / b.norm()).item()


@pytest.mark.parametrize(("shape", "basis"), [((3, 4), "piecewise linear"), ((3, 1), "piecewise linear"),
                                              ((2, 2), "harmonic"), ((3, 3), "fourier-bessel")])
def test_the_output_converges_as_the_grid_is_refined(shape, basis):
    """Same weights, one smooth periodic input at 32 .. 256 points per side: the outputs at the 32-point grid's
    points approach the 512-point one, each refinement closer, the finest within 1e-3."""
    torch.manual_seed(0)
    conv = LocalIntegralConv2d(2, 3, radius=3 / 32, kernel_shape=shape, basis=basis, periodic=True).double()
    reference = conv(smooth_field(512))[..., ::16, ::16]
    errors = [relative(conv(smooth_field(n))[..., :: n // 32, :: n // 32], reference) for n in (32, 64, 128, 256)]
    assert all(b < a for a, b in zip(errors, errors[1:], strict=False)), errors
    assert errors[-1] < 1e-3, errors


def test_zero_padding_converges_too():
    """The integral stops at the boundary of a non-periodic domain: slower (first order at the edge) but converging."""
    torch.manual_seed(0)
    conv = LocalIntegralConv2d(2, 2, radius=3 / 32).double()
    reference = conv(smooth_field(512))[..., ::16, ::16]
    errors = [relative(conv(smooth_field(n))[..., :: n // 32, :: n // 32], reference) for n in (32, 64, 128, 256)]
    assert all(b < 0.6 * a for a, b in zip(errors, errors[1:], strict=False)), errors


def test_a_constant_field_gives_the_sum_of_the_weights():
    """Each basis function is divided by its integral of |psi|; the non-negative hats integrate to 1, so on a
    constant field (periodic, fine grid) the output is the weights summed over the basis, per channel pair."""
    torch.manual_seed(0)
    conv = LocalIntegralConv2d(2, 3, radius=0.1, periodic=True, bias=False).double()
    out = conv(torch.ones(1, 2, 256, 256, dtype=torch.float64))
    expected = conv.weight.sum((1, 2))
    torch.testing.assert_close(out[0, :, 0, 0], expected, rtol=2e-3, atol=0)
    assert torch.allclose(out, out[..., :1, :1].expand_as(out))


@pytest.mark.parametrize("n", [16, 33, 64])
def test_discrete_normalization_keeps_each_basis_functions_mass_on_every_grid(n):
    """normalization='discrete': the sum of weights on a constant field at any grid the kernel covers, coarse too;
    and it converges to the same operator as the continuous normalisation."""
    torch.manual_seed(0)
    conv = LocalIntegralConv2d(2, 3, radius=0.1, periodic=True, bias=False, normalization="discrete").double()
    out = conv(torch.ones(1, 2, n, n, dtype=torch.float64))
    torch.testing.assert_close(out[0, :, 0, 0], conv.weight.sum((1, 2)), rtol=1e-12, atol=1e-12)
    continuous = LocalIntegralConv2d(2, 3, radius=0.1, periodic=True, bias=False).double()
    continuous.load_state_dict(conv.state_dict())
    x = smooth_field(512)
    assert relative(conv(x), continuous(x)) < 1e-4


def test_basis_norms_are_the_integrals_of_the_hats():
    """The centre hat of the piecewise-linear basis is a cone of height 1 over the disk of radius r/2 (3 radial
    points: rings at 0 and r/2): its integral is pi (r/2)^2 / 3."""
    r = 0.2
    norms = basis_l1_norms((3, 4), "piecewise linear", r)
    assert norms[0].item() == pytest.approx(math.pi * (r / 2) ** 2 / 3, rel=1e-4)


@pytest.mark.parametrize("periodic", [True, False])
@pytest.mark.parametrize(("grid", "kernel"), [((20, 18), (11, 9)), ((20,), (11,))], ids=["2d", "1d"])
def test_the_fft_path_equals_the_direct_convolution(periodic, grid, kernel):
    """Weights applied in Fourier space before the basis spectra: the same correlation as F.conv1d / F.conv2d of
    the assembled pixel kernel, values and gradients (input, weights)."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, *grid, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(4, 3, 5, dtype=torch.float64, requires_grad=True)
    psi = torch.randn(5, *kernel, dtype=torch.float64)
    conv = F.conv1d if len(grid) == 1 else F.conv2d
    pad = [p for k in reversed(kernel) for p in (k // 2, k // 2)]

    def direct():
        pixel_kernel = torch.einsum("oik,k...->oi...", weight, psi)
        return conv(F.pad(x, pad, mode="circular" if periodic else "constant"), pixel_kernel)

    fft = fft_correlate(x, weight, psi, periodic)
    torch.testing.assert_close(fft, direct(), rtol=1e-10, atol=1e-10)
    fft_grads = torch.autograd.grad(fft.square().sum(), (x, weight))
    direct_grads = torch.autograd.grad(direct().square().sum(), (x, weight))
    for a, b in zip(fft_grads, direct_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


def test_a_large_kernel_takes_the_fft_path_and_agrees_with_the_direct_one(monkeypatch):
    """At 128 points a radius of 0.1 covers 25 x 25 pixels, above DIRECT_MAX_PIXELS: forcing the direct path gives
    the same output."""
    torch.manual_seed(0)
    conv = LocalIntegralConv2d(2, 3, radius=0.1).double()
    x = smooth_field(128)
    assert (2 * conv.half_widths((128, 128))[0] + 1) ** 2 > DIRECT_MAX_PIXELS
    fft = conv(x)
    monkeypatch.setattr("kernelnn.layers.local_integral.DIRECT_MAX_PIXELS", 10**9)
    torch.testing.assert_close(conv(x), fft, rtol=1e-10, atol=1e-10)


def test_gradcheck_compile_autocast_and_state_dict():
    torch.manual_seed(0)
    x = torch.randn(2, 2, 12, 12, dtype=torch.float64)
    assert_gradcheck(LocalIntegralConv2d(2, 3, radius=0.2, periodic=True).double(), x)  # direct and FFT
    assert_gradcheck(LocalIntegralConv2d(2, 3, radius=0.45).double(), x)
    conv = LocalIntegralConv2d(2, 3, radius=0.2)
    assert_compiles(conv, x.float())
    assert_autocast(conv, x.float())
    assert_state_dict_round_trip(lambda: LocalIntegralConv2d(2, 3, radius=0.2), x.float())


@pytest.mark.parametrize(("kwargs", "x", "message"), [
    ({"radius": -1.0}, None, r"LocalIntegralConv2d: radius=-1.0 must be a positive number"),
    ({"radius": 0.1, "basis": "gauss"}, None, r"LocalIntegralConv2d: basis='gauss' is not one of"),
    ({"radius": 0.1, "periodic": 1}, None, r"LocalIntegralConv2d: periodic=1 must be True or False"),
    ({"radius": 0.1, "normalization": "sum"}, None, r"LocalIntegralConv2d: normalization='sum' is not one of"),
    ({"radius": 0.1, "domain": (1.0, 0.0)}, None, r"LocalIntegralConv2d: domain=\(1.0, 0.0\) must be two positive"),
    ({"radius": 0.1}, torch.randn(2, 3, 8, 8), r"input must have shape \(batch, 2, H, W\), got \(2, 3, 8, 8\)"),
    ({"radius": 0.1}, torch.ones(2, 2, 8, 8, dtype=torch.long), r"LocalIntegralConv2d: input dtype must be floating"),
    ({"radius": 0.6, "periodic": True}, torch.randn(1, 2, 4, 4),
     r"periodic grid of \(4, 4\) points is smaller than the kernel's 5 pixels"),
])
def test_bad_arguments_and_inputs_are_named(kwargs, x, message):
    with pytest.raises((ValueError, TypeError), match=message):
        LocalIntegralConv2d(2, 3, **kwargs)(x)


def test_fourier_resampling_is_exact_for_band_limited_fields_and_keeps_the_common_band():
    """Channel 0 is a trigonometric polynomial (exact on any grid holding it); channel 1, exp(sin), is not band-
    limited, and its coefficients beyond the coarse band (~1e-7 at 16 points) are what resampling loses."""
    for n_in, n_out in [(32, 64), (64, 32), (33, 16), (16, 33), (64, 17)]:
        out, expected = fourier_resample(smooth_field(n_in), (n_out, n_out)), smooth_field(n_out)
        torch.testing.assert_close(out[:, 0], expected[:, 0], rtol=0, atol=1e-12)
        torch.testing.assert_close(out[:, 1], expected[:, 1], rtol=0, atol=1e-6)
    torch.testing.assert_close(fourier_resample(smooth_field(32, 64), (64, 32))[:, 0], smooth_field(64, 32)[:, 0],
                               rtol=0, atol=1e-12)
    # the Nyquist frequency of an even grid is no real coefficient of the other grid: dropped, not copied
    nyquist = torch.cos(math.pi * torch.arange(8, dtype=torch.float64))  # (-1)^i on 8 points
    assert fourier_resample(nyquist, 16).abs().max() < 1e-12
    # down then up is a low-pass filter: the result is unchanged by doing it again
    x = torch.randn(3, 64, 64, dtype=torch.float64)
    once = fourier_resample(fourier_resample(x, (16, 16)), (64, 64))
    torch.testing.assert_close(fourier_resample(fourier_resample(once, (16, 16)), (64, 64)), once)


def test_empty_batches_pass_through_both_fft_paths():
    assert fourier_resample(torch.randn(0, 3, 8, 8), (4, 4)).shape == (0, 3, 4, 4)
    conv = LocalIntegralConv2d(2, 3, radius=0.2)
    assert conv(torch.randn(0, 2, 64, 64)).shape == (0, 3, 64, 64)  # 27 x 27 pixels: the FFT path


def test_fourier_resampling_gradients_and_errors():
    assert_gradcheck(lambda x: fourier_resample(x, (12, 5)), torch.randn(2, 9, 8, dtype=torch.float64))
    assert fourier_resample(torch.randn(2, 8, 8, dtype=torch.bfloat16), (16, 16)).dtype == torch.bfloat16
    with pytest.raises(ValueError, match=r"fourier_resample: size\[1\]=0 must be a positive int"):
        fourier_resample(torch.randn(8, 8), (4, 0))
    with pytest.raises(ValueError, match=r"fourier_resample: x has 1 axes, fewer than the 2 of size=\[4, 4\]"):
        fourier_resample(torch.randn(8), (4, 4))
    with pytest.raises(TypeError, match=r"fourier_resample: x dtype must be floating point"):
        fourier_resample(torch.ones(8, dtype=torch.long), 4)


# --- 1-D: torch-harmonics' piecewise-linear collocation along a line ---------------------------------------------

def smooth_line(n):
    """Two smooth periodic channels on the grid ``i / n``: ``(1, 2, n)`` in float64."""
    x = torch.arange(n, dtype=torch.float64) / n
    return torch.stack([torch.cos(2 * math.pi * x), torch.exp(torch.sin(2 * math.pi * x))])[None]


def test_1d_hats_match_the_closed_form_integral():
    """Only the centre hat (half width dr = 2 r / (K + 1), integral dr), continuous normalisation, on cos(2 pi x):
    the integral of the hat against the cosine is cos(2 pi x) (sin(pi dr) / (pi dr))^2 exactly; the rectangle rule
    on 4000 points (the hat's kinks on grid points) is within 1e-6 of it."""
    r, k = 0.1, 3
    conv = LocalIntegralConv1d(1, 1, radius=r, kernel_shape=k, periodic=True, bias=False,
                               normalization="continuous").double()
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 1] = 1.0  # the centre hat
    n = 4000
    x = torch.arange(n, dtype=torch.float64) / n
    dr = 2 * r / (k + 1)
    expected = torch.cos(2 * math.pi * x) * (math.sin(math.pi * dr) / (math.pi * dr)) ** 2
    torch.testing.assert_close(conv(torch.cos(2 * math.pi * x)[None, None])[0, 0], expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("normalization", ["continuous", "discrete"])
def test_1d_output_converges_as_the_grid_is_refined(normalization):
    torch.manual_seed(0)
    conv = LocalIntegralConv1d(2, 3, radius=3 / 32, kernel_shape=5, periodic=True,
                               normalization=normalization).double()
    reference = conv(smooth_line(1024))[..., ::32]
    errors = [relative(conv(smooth_line(n))[..., :: n // 32], reference) for n in (32, 64, 128, 256, 512)]
    assert all(b < a for a, b in zip(errors, errors[1:], strict=False)), errors
    assert errors[-1] < 1e-4, errors


@pytest.mark.parametrize("n", [16, 33, 64])
def test_1d_discrete_normalization_gives_the_sum_of_the_weights_on_a_constant(n):
    torch.manual_seed(0)
    conv = LocalIntegralConv1d(2, 3, radius=0.1, periodic=True, bias=False).double()
    out = conv(torch.ones(1, 2, n, dtype=torch.float64))
    torch.testing.assert_close(out[0, :, 0], conv.weight.sum((1, 2)), rtol=1e-12, atol=1e-12)


def test_a_large_1d_kernel_takes_the_fft_path_and_agrees_with_the_direct_one(monkeypatch):
    torch.manual_seed(0)
    conv = LocalIntegralConv1d(2, 3, radius=0.1).double()
    x = smooth_line(512)
    assert 2 * conv.half_widths((512,))[0] + 1 > DIRECT_MAX_PIXELS
    fft = conv(x)
    monkeypatch.setattr("kernelnn.layers.local_integral.DIRECT_MAX_PIXELS", 10**9)
    torch.testing.assert_close(conv(x), fft, rtol=1e-10, atol=1e-10)
    assert conv(torch.randn(0, 2, 512, dtype=torch.float64)).shape == (0, 3, 512)


def test_1d_gradcheck_compile_autocast_and_state_dict():
    torch.manual_seed(0)
    x = torch.randn(2, 2, 40, dtype=torch.float64)
    assert_gradcheck(LocalIntegralConv1d(2, 3, radius=0.1, periodic=True).double(), x)
    assert_gradcheck(LocalIntegralConv1d(2, 3, radius=0.45, kernel_shape=4).double(), x)  # the FFT path
    conv = LocalIntegralConv1d(2, 3, radius=0.1)
    assert_compiles(conv, x.float())
    assert_autocast(conv, x.float())
    assert_state_dict_round_trip(lambda: LocalIntegralConv1d(2, 3, radius=0.1), x.float())


@pytest.mark.parametrize(("kwargs", "x", "message"), [
    ({"radius": 0.0}, None, r"LocalIntegralConv1d: radius=0.0 must be a positive number"),
    ({"radius": 0.1, "kernel_shape": 0}, None, r"LocalIntegralConv1d: kernel_shape=0 must be a positive int"),
    ({"radius": 0.1, "domain": (1.0, 1.0)}, None, r"LocalIntegralConv1d: domain=\(1.0, 1.0\) must be one positive"),
    ({"radius": 0.1}, torch.randn(2, 2, 8, 8), r"input must have shape \(batch, 2, L\), got \(2, 2, 8, 8\)"),
    ({"radius": 0.6, "periodic": True}, torch.randn(1, 2, 4),
     r"LocalIntegralConv1d: a periodic grid of \(4,\) points is smaller than the kernel's 5 pixels"),
])
def test_1d_bad_arguments_and_inputs_are_named(kwargs, x, message):
    with pytest.raises((ValueError, TypeError), match=message):
        LocalIntegralConv1d(2, 3, **kwargs)(x)
