"""neuraloperator's mode convention in kernelnn's SpectralConv, and the warning for a layer that truncates nothing."""

import warnings

import pytest
import torch

from kernelnn.layers import SpectralConv
from kernelnn.layers.spectral import FullModesWarning
from kernelnn.models import FNO
from kernelnn.testing import assert_compiles, assert_gradcheck, assert_state_dict_round_trip


def passed_frequencies(conv: SpectralConv, n: int) -> set[tuple[int, int]]:
    """The frequencies ``(k1, k2)``, ``0 < k2 < n / 2``, that ``conv`` passes on an n x n grid (``k1`` in
    ``-n/2 .. n/2 - 1``). ``cos(k . x)`` with such a ``k2`` has the one rfft coefficient ``(k1, k2)``."""
    with torch.no_grad():
        conv.weight.weight.fill_(1.0)  # every kept mode multiplied by 1 + 1j: nonzero wherever kept
    passed = set()
    grid = torch.arange(n) / n
    for k1 in range(-(n // 2), (n + 1) // 2):
        for k2 in range(1, (n + 1) // 2):
            phase = 2 * torch.pi * (k1 * grid[:, None] + k2 * grid[None, :])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FullModesWarning)
                y = conv(torch.cos(phase)[None, None])
            if y.abs().max() > 1e-4:
                passed.add((k1, k2))
    return passed


@pytest.mark.parametrize("modes, n", [((6, 8), 8), ((5, 4), 8), ((8, 8), 8), ((4, 6), 12)])
def test_neuralop_convention_keeps_neuralops_frequency_set(modes, n):
    """neuraloperator's ``M`` keeps ``-(M // 2) .. (M - 1) // 2`` on leading dims and ``0 .. M // 2`` on the last:
    for even ``M`` one more negative frequency than positive."""
    m1, m2 = modes
    last = min(m2 // 2, (n - 1) // 2)
    expected = {(k1, k2) for k1 in range(-(m1 // 2), (m1 - 1) // 2 + 1) for k2 in range(1, last + 1)}
    conv = SpectralConv(1, 1, n_modes=modes, modes_convention="neuralop")
    assert passed_frequencies(conv, n) == expected


def test_kernelnn_convention_keeps_the_symmetric_set():
    conv = SpectralConv(1, 1, n_modes=(3, 3))
    assert passed_frequencies(conv, 8) == {(k1, k2) for k1 in range(-2, 3) for k2 in range(1, 3)}


def test_odd_neuralop_modes_are_kernelnns_modes():
    torch.manual_seed(0)
    theirs = SpectralConv(2, 3, n_modes=(7, 9), modes_convention="neuralop")
    ours = SpectralConv(2, 3, n_modes=(4, 5))
    ours.load_state_dict({k: v for k, v in theirs.state_dict().items() if k != "_extra_state"}, strict=False)
    x = torch.randn(2, 2, 12, 16)
    torch.testing.assert_close(theirs(x), ours(x))


def test_neuralop_convention_errors_and_limits():
    conv = SpectralConv(1, 1, n_modes=(8, 8), modes_convention="neuralop")
    with pytest.raises(ValueError, match=r"n_modes=\[8, 8\] exceeds the Nyquist limit of a 6x8 input; at most "
                                         r"\[6, 9\]"):
        conv(torch.randn(1, 1, 6, 8))
    with pytest.raises(ValueError, match=r"modes_convention='numpy' is not one of \('kernelnn', 'neuralop'\)"):
        SpectralConv(1, 1, n_modes=(8, 8), modes_convention="numpy")


def test_full_modes_warning():
    """Warned: every mode of an even grid kept, its aliased Nyquist frequency included (neuraloperator's n_modes=N)."""
    with pytest.warns(FullModesWarning, match=r"keeps every Fourier mode of the 16x16 grid it sees along dim\(s\) "
                                              r"\[0, 1\], the aliased Nyquist"):
        SpectralConv(1, 1, n_modes=(16, 16), modes_convention="neuralop")(torch.randn(1, 1, 16, 16))
    with pytest.warns(FullModesWarning, match=r"16x12 grid it sees along dim\(s\) \[1\]"):
        SpectralConv(1, 1, n_modes=(8, 12), modes_convention="neuralop")(torch.randn(1, 1, 16, 12))
    with warnings.catch_warnings():
        warnings.simplefilter("error", FullModesWarning)
        SpectralConv(1, 1, n_modes=(8, 8))(torch.randn(1, 1, 16, 16))  # kernelnn's maximum: no Nyquist row
        SpectralConv(1, 1, n_modes=(8, 8))(torch.randn(1, 1, 15, 15))  # odd grid: every mode, none aliased
        SpectralConv(1, 1, n_modes=(15, 15), modes_convention="neuralop")(torch.randn(1, 1, 16, 16))
        SpectralConv(1, 1, n_modes=(16, 16), modes_convention="neuralop")(torch.randn(1, 1, 32, 32))


def test_changing_modes_moves_a_neuralop_layer_to_kernelnns_convention():
    """The Spectral-Refiner changes n_modes: a converted layer first becomes the same function in kernelnn's
    convention (its unused slot zeroed), then resizes."""
    torch.manual_seed(0)
    conv = SpectralConv(2, 2, n_modes=(6, 6), modes_convention="neuralop", factorization="tucker", rank=0.5)
    x = torch.randn(1, 2, 16, 16)
    before = conv(x)
    conv.n_modes = (4, 4)  # kernelnn's |k| < 4: the same band plus the +3 row, which holds zeros
    assert conv.modes_convention == "kernelnn" and conv.n_modes == (4, 4)
    torch.testing.assert_close(conv(x), before)
    conv.n_modes = (8, 8)
    torch.testing.assert_close(conv(x), before)


def test_spectral_bias_is_a_constant_per_channel():
    conv = SpectralConv(1, 2, n_modes=(2, 2), bias=True)
    with torch.no_grad():
        conv.weight.weight.zero_()
        conv.bias.copy_(torch.tensor([1.5, -2.0]).view(2, 1, 1))
    y = conv(torch.randn(1, 1, 8, 8))
    torch.testing.assert_close(y, torch.tensor([1.5, -2.0]).view(1, 2, 1, 1).expand(1, 2, 8, 8))


NEURALOP_BLOCK = dict(block="neuralop", lifting_channels=6, spectral_bias=True, modes_convention="neuralop",
                      domain_padding=0.25, domain_padding_mode="symmetric", norm="group",
                      channel_mlp={"expansion": 0.5})


def test_neuralop_block_gradcheck_compile_round_trip():
    torch.manual_seed(0)
    def make():
        return FNO(1, 1, n_modes=(4, 4), hidden_channels=2, n_layers=2, projection_channels=2,
                   **{**NEURALOP_BLOCK, "lifting_channels": 2})
    x = torch.randn(1, 1, 8, 8)
    assert_gradcheck(make().double(), x.double().requires_grad_())
    # aot_eager: tracing and autograd of the block; the plain FNO's test covers inductor's code for these ops
    assert_compiles(make(), x, rtol=1e-4, atol=1e-5, backend="aot_eager")
    assert_state_dict_round_trip(make, x)


def test_neuralop_block_reads_both_skips_from_the_block_input():
    torch.manual_seed(0)
    model = FNO(1, 1, n_modes=(4, 4), hidden_channels=4, n_layers=1, block="neuralop",
                channel_mlp={"expansion": 0.5, "skip": "identity"})
    assert len(model.channel_mlp_skips) == 1
    seen = {}
    model.spectral[0].register_forward_hook(lambda mod, args, out: seen.update(v=args[0], k=out))
    out_hidden = {}
    model.projection.register_forward_hook(lambda mod, args, out: out_hidden.update(u=args[0]))
    model(torch.randn(2, 1, 8, 8))
    v = seen["v"]
    # last block, no activations: u = MLP(K v + W v) + v
    expected = model.channel_mlps[0](seen["k"] + model.skips[0](v)) + v
    torch.testing.assert_close(out_hidden["u"], expected)


def test_fno_block_option_errors():
    with pytest.raises(ValueError, match=r"FNO: block='resnet' is not one of \['fno', 'neuralop'\]"):
        FNO(1, 1, n_modes=(4, 4), block="resnet")
    with pytest.raises(ValueError, match="channel_mlp.skip='soft-gating' needs block='neuralop'"):
        FNO(1, 1, n_modes=(4, 4), channel_mlp={"expansion": 0.5, "skip": "soft-gating"})
    with pytest.raises(ValueError, match="lifting_channels=-1 must be an int >= 0"):
        FNO(1, 1, n_modes=(4, 4), lifting_channels=-1)
    with pytest.raises(ValueError, match=r"domain_padding_mode='both' is not one of"):
        FNO(1, 1, n_modes=(4, 4), domain_padding_mode="both")
    with pytest.raises(ValueError, match=r"FNO: modes_convention='numpy' is not one of"):
        FNO(1, 1, n_modes=(4, 4), modes_convention="numpy")
    with pytest.raises(ValueError, match=r"channel_mlp.skip='linear' has no channel MLP to skip"):
        FNO(1, 1, n_modes=(4, 4), block="neuralop", channel_mlp={"skip": "linear"})


def test_global_tucker_in_neuralops_convention():
    model = FNO(1, 1, n_modes=(8, 8), hidden_channels=4, n_layers=2, factorization="tucker", rank=0.2,
                global_factorization=True, modes_convention="neuralop")
    assert model(torch.randn(1, 1, 16, 16)).shape == (1, 1, 16, 16)


def test_symmetric_padding_pads_both_sides():
    model = FNO(1, 1, n_modes=(3, 3), hidden_channels=4, n_layers=1, domain_padding=0.25,
                domain_padding_mode="symmetric")
    seen = []
    model.spectral[0].register_forward_hook(lambda mod, args, out: seen.append(args[0]))
    model(torch.randn(1, 1, 8, 12))
    assert seen[0].shape[-2:] == (12, 18)
    inside = torch.zeros(12, 18, dtype=torch.bool)
    inside[2:10, 3:15] = True
    assert seen[0][..., ~inside].abs().max() == 0  # zeros padded after lifting, on both sides of each dim
    assert seen[0][..., inside].abs().min() > 0
