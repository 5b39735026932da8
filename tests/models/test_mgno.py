import pytest
import torch

from kernelnn.layers import MgConv
from kernelnn.models import MgNO
from kernelnn.testing import assert_state_dict_round_trip


@pytest.mark.parametrize("dim, spatial", [(1, (32,)), (2, (16, 24))])
@pytest.mark.parametrize("padding_mode", ["zeros", "circular"])
def test_shapes(dim, spatial, padding_mode):
    conv = MgConv(3, 5, levels=3, dim=dim, padding_mode=padding_mode)
    assert conv(torch.randn(2, 3, *spatial)).shape == (2, 5, *spatial)
    model = MgNO(2, 1, hidden_channels=6, n_layers=3, levels=3, dim=dim, padding_mode=padding_mode)
    assert model(torch.randn(2, 2, *spatial)).shape == (2, 1, *spatial)


def test_structure_and_parameter_count():
    conv = MgConv(4, 4, levels=3, smoothing=[1, 1, 2])
    # (A, S) per smoothing step, minus the finest level's first A; a residual A, Pi and R per restriction.
    smoothing = (2 * 4 - 1) * 4 * 4 * 9
    restriction = 2 * 3 * 4 * 4 * 9
    prolongation = 2 * 4 * 4 * 16
    assert sum(p.numel() for p in conv.parameters()) == smoothing + restriction + prolongation


def test_periodic_boundary_makes_it_shift_equivariant():
    """With circular padding the V-cycle commutes with shifts by multiples of its coarsest cell (2**(levels-1))."""
    torch.manual_seed(0)
    conv = MgConv(2, 3, levels=3, padding_mode="circular").double()
    f = torch.randn(1, 2, 16, 16, dtype=torch.float64)
    shifted = conv(torch.roll(f, shifts=(4, -8), dims=(2, 3)))
    torch.testing.assert_close(shifted, torch.roll(conv(f), shifts=(4, -8), dims=(2, 3)))
    dirichlet = MgConv(2, 3, levels=3, padding_mode="zeros").double()
    dirichlet.load_state_dict(conv.state_dict())
    moved = dirichlet(torch.roll(f, shifts=(4, -8), dims=(2, 3)))
    assert (moved - torch.roll(dirichlet(f), shifts=(4, -8), dims=(2, 3))).abs().max() > 1e-3  # boundary matters


def test_mgconv_is_a_linear_operator():
    """MgConv(a f + b g) = a MgConv(f) + b MgConv(g): it parameterizes a linear map (nonlinearity is in MgNO)."""
    torch.manual_seed(0)
    conv = MgConv(1, 1, levels=2, padding_mode="zeros").double()
    f = torch.randn(1, 1, 8, 8, dtype=torch.float64)
    g = torch.randn_like(f)
    torch.testing.assert_close(conv(2 * f - 3 * g), 2 * conv(f) - 3 * conv(g))


def test_gradcheck():
    torch.manual_seed(0)
    model = MgNO(1, 1, hidden_channels=2, n_layers=2, levels=2, padding_mode="circular").double()
    x = torch.randn(1, 1, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(model, (x,))


def test_errors():
    with pytest.raises(ValueError, match=r"MgConv: spatial size \(12, 12\) must be divisible by 2\*\*\(levels-1\) = 8"):
        MgConv(1, 1, levels=4)(torch.randn(1, 1, 12, 12))
    with pytest.raises(ValueError, match="padding_mode='reflect' is not one of"):
        MgConv(1, 1, padding_mode="reflect")
    with pytest.raises(ValueError, match="smoothing"):
        MgConv(1, 1, levels=3, smoothing=[1, 1])
    with pytest.raises(ValueError, match="MgConv: input must have shape"):
        MgConv(2, 1)(torch.randn(1, 1, 16, 16))


def test_compile_and_state_dict():
    torch.manual_seed(0)
    model = MgNO(1, 1, hidden_channels=4, n_layers=2, levels=3)
    x = torch.randn(2, 1, 16, 16)
    torch.testing.assert_close(torch.compile(model)(x), model(x), rtol=1e-4, atol=1e-5)
    assert_state_dict_round_trip(lambda: MgNO(1, 1, hidden_channels=4, n_layers=2, levels=3), x)
