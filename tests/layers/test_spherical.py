import pytest
import torch
import torch_harmonics as th

from kernelnn.layers import SphericalConv
from kernelnn.models import SphericalFNO
from tests.conftest import assert_state_dict_round_trip

NLAT, NLON = 16, 32


def band_limited(channels=3, lmax=6, seed=0):
    """A random real field on the 16x32 equiangular grid with degrees l < lmax (exactly representable)."""
    g = torch.Generator().manual_seed(seed)
    isht = th.InverseRealSHT(NLAT, NLON, grid="equiangular").double()
    coeffs = torch.zeros(1, channels, isht.lmax, isht.mmax, dtype=torch.complex128)
    block = torch.randn(1, channels, lmax, lmax, 2, generator=g, dtype=torch.float64)
    coeffs[..., :lmax, :lmax] = torch.view_as_complex(block).tril()  # m <= l
    coeffs[..., 0].imag = 0  # m = 0 coefficients of a real field are real
    return isht(coeffs)


def rotate_180_about_x(u):
    """(theta, phi) -> (pi - theta, -phi): exact on an equiangular grid that contains both poles."""
    return torch.roll(torch.flip(u, dims=(-1,)), shifts=1, dims=-1).flip(-2)


@pytest.mark.parametrize("operator_type", ["driscoll-healy", "diagonal"])
def test_equivariant_about_the_polar_axis(operator_type):
    torch.manual_seed(0)
    conv = SphericalConv(3, 4, 8, operator_type=operator_type).double()
    x = torch.randn(2, 3, NLAT, NLON, dtype=torch.float64)
    for shift in (1, 5, 17):
        torch.testing.assert_close(conv(torch.roll(x, shift, -1)), torch.roll(conv(x), shift, -1))


def test_driscoll_healy_is_equivariant_under_other_rotations_and_diagonal_is_not():
    torch.manual_seed(0)
    x = band_limited()
    dh = SphericalConv(3, 3, 8, operator_type="driscoll-healy").double()
    torch.testing.assert_close(dh(rotate_180_about_x(x)), rotate_180_about_x(dh(x)), rtol=1e-9, atol=1e-12)
    diag = SphericalConv(3, 3, 8, operator_type="diagonal").double()
    gap = (diag(rotate_180_about_x(x)) - rotate_180_about_x(diag(x))).abs().max()
    assert gap > 1e-3 * diag(x).abs().max()


def test_shapes_output_grid_and_model():
    conv = SphericalConv(2, 5, 6)
    assert conv(torch.randn(3, 2, NLAT, NLON)).shape == (3, 5, NLAT, NLON)
    assert conv(torch.randn(3, 2, NLAT, NLON), output_shape=(32, 64)).shape == (3, 5, 32, 64)
    model = SphericalFNO(3, 2, n_modes=6, hidden_channels=8, n_layers=2)
    assert model(torch.randn(2, 3, NLAT, NLON)).shape == (2, 2, NLAT, NLON)
    assert not any("transform" in k for k in model.state_dict())  # SHT tables are derived, not saved


def test_gradcheck_autocast_compile_state_dict():
    torch.manual_seed(0)
    conv = SphericalConv(2, 2, 3).double()
    x = torch.randn(1, 2, 8, 16, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda inp, w: torch.func.functional_call(conv, {"weight": w}, (inp,)),
                                    (x, conv.weight.detach().clone().requires_grad_()))
    conv32 = SphericalConv(2, 2, 4)
    x32 = torch.randn(2, 2, NLAT, NLON)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert conv32(x32).dtype == torch.bfloat16
    torch.testing.assert_close(torch.compile(conv32)(x32), conv32(x32), rtol=1e-4, atol=1e-5)
    assert_state_dict_round_trip(lambda: SphericalFNO(1, 1, n_modes=4, hidden_channels=4, n_layers=2),
                                 torch.randn(1, 1, NLAT, NLON))


def test_errors():
    with pytest.raises(ValueError, match="operator_type='full' is not one of"):
        SphericalConv(1, 1, 4, operator_type="full")
    with pytest.raises(ValueError, match=r"n_modes=12 exceeds the 8 degrees a 16x32 equiangular grid resolves"):
        SphericalConv(1, 1, 12)(torch.randn(1, 1, NLAT, NLON))
    with pytest.raises(ValueError, match=r"input must have shape \(batch, 2, nlat, nlon\)"):
        SphericalConv(2, 1, 4)(torch.randn(1, 1, NLAT, NLON))
