"""Transform Once: one transform pair, layers on the kept frequencies, the paper's variance-preserving init."""

import math

import pytest
import torch

from kernelnn.layers.dct import dctn, idctn
from kernelnn.models import TransformOnce


def spectrum(model, y):
    return dctn(y, model.dim) if model.transform == "dct" else torch.fft.rfftn(y, dim=(-2, -1), norm="ortho")


@pytest.mark.parametrize("transform", ["dct", "fft"])
def test_only_the_kept_frequencies_reach_the_output(transform):
    torch.manual_seed(0)
    model = TransformOnce(1, 2, 3, hidden_channels=4, n_layers=2, head_channels=8, transform=transform)
    for p in (model.head_in, model.head_out):  # off the 1e-8 start, so the output is not ~0
        p.data.normal_()
    out = spectrum(model, model(torch.randn(2, 1, 12, 12)))
    kept = torch.zeros(out.shape[-2:], dtype=torch.bool)
    rows = [0, 1, 2] if transform == "dct" else [0, 1, 2, 10, 11]
    kept[torch.tensor(rows)[:, None], torch.arange(3)] = True
    assert out[..., kept].abs().max() > 1e-3 and out[..., ~kept].abs().max() < 1e-5


def test_the_variance_preserving_init_keeps_the_variance_through_truncation():
    """The paper's argument: an orthonormal transform keeps the variance; keeping m of N coefficients loses m / N,
    which std = sqrt(N / (C m)) restores (Kaiming's sqrt(1 / C) does not)."""
    torch.manual_seed(0)
    n, c, modes = 32, 16, 8
    model = TransformOnce(c, c, modes, hidden_channels=c, n_layers=1, resolution=[n, n], init="variance_preserving")
    v = torch.randn(64, c, n, n)
    z = dctn(v, 2)[..., :modes, :modes]
    for weight, expected in ((model.channel_mixing[0].detach(), 1.0),
                             (torch.randn_like(model.channel_mixing[0]) * math.sqrt(1 / c), modes**2 / n**2)):
        h = torch.einsum("bixy,ioxy->boxy", z, weight)
        full = torch.zeros_like(v)
        full[..., :modes, :modes] = h
        assert idctn(full, 2).var().item() == pytest.approx(expected, rel=0.1)


@pytest.mark.parametrize("transform", ["dct", "fft"])
def test_the_default_init_keeps_the_residual_stack_bounded(transform):
    """The paper's factor, restored in every residual layer, compounds (73x rms through four layers on Burgers, and
    the FFT model then did not train); Kaiming's keeps the coefficients within a few times their input."""
    torch.manual_seed(0)
    growth = {}
    for init in ("kaiming", "variance_preserving"):
        model = TransformOnce(1, 1, 16, dim=1, hidden_channels=32, n_layers=4, resolution=[256], transform=transform,
                              init=init)
        z = model.analysis(torch.randn(8, 32, 256).cumsum(-1) / 16)
        growth[init] = (model._layers(z).abs().pow(2).mean().sqrt() / z.abs().pow(2).mean().sqrt()).item()
    assert growth["kaiming"] < 5 < 20 < growth["variance_preserving"], growth


def test_a_finer_grid_gives_the_same_function():
    """FFT: coefficients are rescaled to the training grid, so a smooth input on a grid twice as fine gives nearly
    the same output at the common points (as the FNO does, and unlike a plain orthonormal transform). The lift's
    positional channels are switched off here: a sawtooth on the torus, they alias differently on each grid (the
    FNO's do too); without them a band-limited input gives the same output to round-off."""
    torch.manual_seed(0)
    model = TransformOnce(1, 1, 6, hidden_channels=8, n_layers=2, head_channels=16, transform="fft",
                          resolution=[32, 32]).double()
    for p in (model.head_in, model.head_out):  # off the 1e-8 start, in sin's near-linear range
        p.data.normal_(0, 0.05)
    model.lift.weight.data[:, 1:] = 0
    grid = torch.arange(64, dtype=torch.float64) / 64
    u = (torch.sin(2 * math.pi * grid)[:, None] * torch.cos(2 * math.pi * grid)[None])[None, None]
    coarse, fine = model(u[..., ::2, ::2]), model(u)[..., ::2, ::2]
    assert ((fine - coarse).norm() / coarse.norm()).item() < 1e-10
    plain = TransformOnce(1, 1, 6, hidden_channels=8, n_layers=2, head_channels=16, transform="fft").double()
    plain.load_state_dict(model.state_dict())
    assert ((plain(u)[..., ::2, ::2] - plain(u[..., ::2, ::2])).norm() / coarse.norm()).item() > 0.2


def test_energy_selection_keeps_the_frequencies_the_targets_use():
    x = torch.arange(16, dtype=torch.float64) / 16
    rows = [0, 5, 9]
    y = torch.stack([sum(torch.randn(()) * torch.cos(math.pi * k * (x + 1 / 32)) for k in rows)[:, None] *
                     torch.cos(math.pi * 2 * (x + 1 / 32))[None] for _ in range(10)])[:, None]
    model = TransformOnce(1, 1, 3, selection="energy", resolution=[16, 16])
    assert model.fit_output_basis(y)
    assert model.frequencies_0.tolist() == rows and 2 in model.frequencies_1.tolist()
    assert not TransformOnce(1, 1, 3).fit_output_basis(y)  # "lowest" keeps its frequencies


@pytest.mark.parametrize(("args", "x", "message"), [
    ({}, torch.randn(2, 1, 4, 4), r"TransformOnce: spatial size 4 \(dim 0\) holds 4 frequencies, the model keeps up "
                                  r"to 6"),
    ({"transform": "fft"}, torch.randn(2, 1, 10, 10), r"spatial size 10 \(dim 0\) holds 5 frequencies, the model "
                                                      r"keeps up to 6"),
    ({}, torch.randn(2, 2, 16, 16), r"input must have shape \(batch, 1, n, n\), got \(2, 2, 16, 16\)"),
    ({}, torch.ones(2, 1, 16, 16, dtype=torch.long), r"must be a floating-point torch.Tensor, got torch.int64"),
    ({"transform": "wavelet"}, None, r"transform='wavelet'; valid: dct, fft"),
    ({"init": "xavier"}, None, r"TransformOnce: init='xavier'; valid: kaiming, variance_preserving"),
    ({"n_modes": [6]}, None, r"n_modes=\[6\] must be a positive int or 2 positive ints"),
])
def test_bad_input_names_the_argument(args, x, message):
    with pytest.raises((TypeError, ValueError), match=message):
        TransformOnce(1, 1, **{"n_modes": 6, **args})(x)


@pytest.mark.parametrize("transform", ["dct", "fft"])
@pytest.mark.parametrize("spatial", [(17,), (12, 10), (8, 6, 7)])
def test_the_partial_transforms_equal_the_full_ones_gradients_included(transform, spatial):
    """The model transforms by small matrices restricted to the kept frequencies; the reference is the whole DCT /
    real FFT with the kept coefficients picked out (and zero-filled back)."""
    torch.manual_seed(0)
    model = TransformOnce(1, 1, 3, dim=len(spatial), transform=transform, selection="energy").double()
    if len(spatial) == 2:  # an energy-chosen, non-contiguous set
        model.frequencies_0.copy_(torch.tensor([-4, -2, 0, 1, 3] if transform == "fft" else [1, 4, 6]))
    v = torch.randn(2, 3, *spatial, dtype=torch.float64, requires_grad=True)
    a, b = model.analysis(v), model.analysis_by_full_transform(v)
    torch.testing.assert_close(a, b)
    weights = torch.randn_like(a)
    ga, = torch.autograd.grad((a * weights).real.sum(), v)
    gb, = torch.autograd.grad((b * weights).real.sum(), v)
    torch.testing.assert_close(ga, gb)
    c = torch.randn_like(a).requires_grad_()
    y1, y2 = model.synthesis(c, spatial), model.synthesis_by_full_transform(c, spatial)
    torch.testing.assert_close(y1, y2)
    probe = torch.randn_like(y1)
    g1, = torch.autograd.grad((y1 * probe).sum(), c)
    g2, = torch.autograd.grad((y2 * probe).sum(), c)
    if transform == "fft":  # irfft ignores the imaginary part of the zero (and Nyquist) frequency: so do we
        g1, g2 = g1.real, g2.real
    torch.testing.assert_close(g1, g2)
