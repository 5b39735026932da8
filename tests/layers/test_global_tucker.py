import copy

import pytest
import torch

from kernelnn.layers import GlobalTucker, SpectralConv, spectral_parameter_counts
from kernelnn.models import TFNO
from kernelnn.testing import assert_state_dict_round_trip
from kernelnn.training.plugins.spectral_refiner import unlock_last_spectral_conv


def tiny_global_tfno(**kwargs):
    torch.manual_seed(0)
    options = dict(n_modes=(4, 3), hidden_channels=6, n_layers=3, projection_channels=8, rank=0.3,
                   global_factorization=True)
    options.update(kwargs)
    return TFNO(1, 1, **options)


def test_layers_contract_the_stacked_tucker_tensor():
    torch.manual_seed(0)
    shared = GlobalTucker(3, 5, 4, n_modes=(3, 2), rank=(2, 3, 3, 4, 2)).double()
    # The stacked weight written out from the definition W = G x0 U_layer x1 U_in x2 U_out x3 U_x x4 U_y.
    c = {name: torch.view_as_complex(p) for name, p in shared.named_parameters()}
    expected = torch.einsum("pabxy,lp,ia,ob,Xx,Yy->lioXY", c["core"], c["factor_layers"], c["factor_in"],
                            c["factor_out"], c["factor_modes.0"], c["factor_modes.1"])
    torch.testing.assert_close(shared.reconstruct(torch.float64), expected)
    x = torch.randn(2, 5, 9, 8, dtype=torch.float64)
    for index in range(3):
        factorized = SpectralConv(5, 4, (3, 2), factorization=shared.layer(index))
        reconstructed = SpectralConv(5, 4, (3, 2), factorization=shared.layer(index), implementation="reconstructed")
        torch.testing.assert_close(factorized(x), reconstructed(x), rtol=1e-12, atol=1e-12)


def test_factors_are_stored_once_and_compression_is_reported():
    model = tiny_global_tfno()
    local = tiny_global_tfno(global_factorization=False)
    shared_params = set(map(id, model.global_weights.parameters()))
    assert all(not list(conv.weight.parameters()) for conv in model.spectral)
    assert sum(id(p) in shared_params for p in model.parameters()) == len(shared_params)
    counts = spectral_parameter_counts(model)
    assert counts["spectral_stored"] == sum(p.numel() for p in model.global_weights.parameters())
    assert counts["spectral_dense"] == spectral_parameter_counts(local)["spectral_dense"] == 3 * 2 * 6 * 6 * 7 * 3
    assert counts["spectral_compression"] == counts["spectral_dense"] / counts["spectral_stored"] > 3
    # Factors saved once, under global_weights; each layer keeps only its n_modes (extra state), no tensor of its own.
    assert all(key.endswith("._extra_state") for key in model.state_dict() if "spectral" in key)


def test_global_tfno_gradcheck_state_dict_compile_and_deepcopy():
    model = tiny_global_tfno().double()
    x = torch.randn(2, 1, 8, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(model, (x,))
    assert_state_dict_round_trip(tiny_global_tfno, torch.randn(2, 1, 8, 6))
    clone = copy.deepcopy(model)
    assert clone.spectral[1].weight.shared is clone.global_weights
    torch.testing.assert_close(clone(x), model(x))
    x32 = x.detach().float()
    model = model.float()
    compiled = torch.compile(model)
    torch.testing.assert_close(compiled(x32), model(x32), rtol=1e-5, atol=1e-5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert model(x32).dtype == torch.bfloat16


def test_gradients_reach_every_shared_factor():
    model = tiny_global_tfno()
    model(torch.randn(2, 1, 8, 6)).square().sum().backward()
    for name, p in model.global_weights.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_refinement_detaches_the_last_layer_without_changing_the_function():
    model = tiny_global_tfno()
    x = torch.randn(2, 1, 10, 8)
    before = model(x)
    _, n_modes = unlock_last_spectral_conv(model, x)
    assert n_modes == (5, 4)  # every mode of the 10x8 grid: (N + 1) // 2
    torch.testing.assert_close(model(x), before, rtol=1e-5, atol=1e-6)
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert trainable == {id(p) for p in model.spectral[-1].parameters()}
    assert model.spectral[0].weight.shared is model.global_weights  # the others still share


def test_bad_global_factorization_arguments():
    with pytest.raises(ValueError, match="global_factorization=True .* factorization='tucker', got 'cp'"):
        tiny_global_tfno(factorization="cp")
    with pytest.raises(ValueError, match="per-dim ranks need 5 ints"):
        GlobalTucker(3, 4, 4, n_modes=(3, 2), rank=(2, 2))
    with pytest.raises(ValueError, match="layer index 3 is outside 0..2"):
        GlobalTucker(3, 4, 4, n_modes=(3, 2)).layer(3)
    with pytest.raises(ValueError, match="SpectralConv: the given weight maps 4 -> 4 channels"):
        SpectralConv(4, 5, (3, 2), factorization=GlobalTucker(3, 4, 4, n_modes=(3, 2)).layer(0))
