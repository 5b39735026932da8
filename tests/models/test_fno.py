import pytest
import torch

from kernelnn.models import FNO, MLP, TFNO, Normalized
from kernelnn.testing import assert_autocast, assert_compiles, assert_state_dict_round_trip


@pytest.mark.parametrize("dim, spatial", [(1, (24,)), (2, (12, 10)), (3, (8, 8, 6))])
@pytest.mark.parametrize("padding", [0.0, 0.25])
def test_fno_shapes(dim, spatial, padding):
    model = FNO(2, 3, n_modes=3, dim=dim, hidden_channels=8, n_layers=2, projection_channels=8,
                domain_padding=padding)
    assert model(torch.randn(2, 2, *spatial)).shape == (2, 3, *spatial)


def test_fno_runs_at_other_resolutions():
    model = FNO(1, 1, n_modes=(4, 4), hidden_channels=8, n_layers=2)
    for n in (8, 16, 33):
        assert model(torch.randn(1, 1, n, n)).shape == (1, 1, n, n)


def test_fno_gradcheck():
    torch.manual_seed(0)
    model = FNO(1, 1, n_modes=(2, 2), hidden_channels=3, n_layers=2, projection_channels=4,
                domain_padding=0.25).double()
    x = torch.randn(1, 1, 6, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(model, (x,))


def test_fno_errors():
    model = FNO(2, 1, n_modes=(4, 4), hidden_channels=8)
    with pytest.raises(ValueError, match="FNO: input has 1 channels, in_channels=2"):
        model(torch.randn(1, 1, 16, 16))
    with pytest.raises(ValueError, match="FNO: input must have shape"):
        model(torch.randn(1, 2, 16))
    with pytest.raises(ValueError, match="Nyquist"):
        model(torch.randn(1, 2, 6, 6))
    with pytest.raises(ValueError, match="activation='swish' is not a known activation; valid: gelu"):
        FNO(1, 1, n_modes=(4, 4), activation="swish")
    with pytest.raises(ValueError, match="domain_padding"):
        FNO(1, 1, n_modes=(4, 4), domain_padding=-0.1)
    with pytest.raises(ValueError, match="hidden_channels=0"):
        FNO(1, 1, n_modes=(4, 4), hidden_channels=0)


def test_fno_compile_and_autocast():
    torch.manual_seed(0)
    model = FNO(1, 1, n_modes=(4, 4), hidden_channels=8, n_layers=2)
    x = torch.randn(2, 1, 16, 16)
    assert_compiles(model, x, rtol=1e-4, atol=1e-5)
    assert_autocast(model, x)


def test_fno_state_dict_round_trip():
    assert_state_dict_round_trip(lambda: FNO(1, 2, n_modes=(3, 3), hidden_channels=4, n_layers=2),
                                 torch.randn(1, 1, 8, 8))


def test_mlp_and_normalized():
    mlp = MLP(3, 2, hidden=[8], activation="tanh")
    assert mlp(torch.randn(5, 7, 3)).shape == (5, 7, 2)
    with pytest.raises(ValueError, match=r"MLP: input must have shape \(\.\.\., 3\)"):
        mlp(torch.randn(5, 4))
    wrapped = Normalized(mlp, in_mean=torch.ones(3), in_std=2 * torch.ones(3), channel_dim=-1)
    x = torch.randn(4, 3)
    torch.testing.assert_close(wrapped(x), mlp((x - 1) / 2))
    field_model = torch.nn.Identity()
    norm = Normalized(field_model, torch.tensor([1.0]), torch.tensor([2.0]), torch.tensor([3.0]), torch.tensor([4.0]))
    u = torch.randn(2, 1, 4, 4)
    torch.testing.assert_close(norm(u), (u - 1) / 2 * 4 + 3)


@pytest.mark.parametrize("skip", ["linear", "identity", "soft-gating"])
def test_fno_skip_connections(skip):
    model = FNO(1, 1, n_modes=(4, 4), hidden_channels=8, n_layers=2, skip=skip)
    assert model(torch.randn(2, 1, 12, 12)).shape == (2, 1, 12, 12)
    with pytest.raises(ValueError, match="skip='gated' is not a known skip connection; valid: attention, identity, "
                                         "linear, soft-gating"):
        FNO(1, 1, n_modes=(4, 4), skip="gated")


@pytest.mark.parametrize("factorization", ["tucker", "cp", "tt"])
def test_tfno_has_far_fewer_spectral_parameters(factorization):
    dense = FNO(1, 1, n_modes=(12, 12), hidden_channels=32)
    tfno = TFNO(1, 1, n_modes=(12, 12), hidden_channels=32, factorization=factorization, rank=0.05)

    def spectral(m):
        return sum(conv.n_weights for conv in m.spectral)

    assert spectral(tfno) * 10 <= spectral(dense)
    assert tfno(torch.randn(2, 1, 32, 32)).shape == (2, 1, 32, 32)


def test_spatio_temporal_fno_maps_history_to_future_frames():
    from kernelnn.models import SpatioTemporalFNO

    torch.manual_seed(0)
    model = SpatioTemporalFNO(5, 4, n_modes=(4, 4, 2), hidden_channels=6, n_layers=2, positional_embedding=False)
    x = torch.randn(2, 5, 16, 16)
    y = model(x)
    assert y.shape == (2, 4, 16, 16)
    # Space is periodic: shifting the history in space shifts the prediction (time is padded, space is not).
    torch.testing.assert_close(model(torch.roll(x, (3, -5), dims=(2, 3))), torch.roll(y, (3, -5), dims=(2, 3)),
                               rtol=1e-4, atol=1e-5)
    assert model.fno.domain_padding == (0.0, 0.0, 0.25)
    with pytest.raises(ValueError, match=r"input must have shape \(batch, 5, X, Y\)"):
        model(torch.randn(2, 4, 16, 16))
    with pytest.raises(ValueError, match="needs 3 entries"):
        SpatioTemporalFNO(5, 4, n_modes=(4, 4))


@pytest.mark.parametrize("norm", ["group", "instance"])
def test_fno_norm_normalises_the_spectral_branch(norm):
    from kernelnn.models import FNO

    torch.manual_seed(0)
    model = FNO(1, 1, n_modes=(4, 4), hidden_channels=6, n_layers=2, norm=norm)
    assert len(model.norms) == 2
    seen = []
    model.norms[0].register_forward_hook(lambda module, args, out: seen.append(out))
    out = model(torch.randn(3, 1, 16, 16))
    assert out.shape == (3, 1, 16, 16)
    dims = (1, 2, 3) if norm == "group" else (2, 3)  # group: each sample over channels and space; instance: per channel
    torch.testing.assert_close(seen[0].mean(dims), torch.zeros_like(seen[0].mean(dims)), atol=1e-5, rtol=0)
    out.sum().backward()
    assert model.norms[0].weight.grad is not None
    with pytest.raises(ValueError, match=r"FNO: norm='batch' is not one of \[None, 'group', 'instance'\]"):
        FNO(1, 1, n_modes=(4, 4), norm="batch")
