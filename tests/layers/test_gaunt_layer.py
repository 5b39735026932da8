"""GauntTensorProduct: shapes, per-degree weights, equivariance (both parity classes), autograd, errors."""

import pytest
import torch

from kernelnn.layers.gaunt import gaunt_tensor_product
from kernelnn.layers.gaunt_layer import GauntTensorProduct
from kernelnn.testing import (
    assert_compiles,
    assert_equivariant,
    assert_gradcheck,
    assert_state_dict_round_trip,
    harmonic_irreps,
)


def randomize(layer):
    with torch.no_grad():
        for p in layer.parameters():
            p.uniform_(0.5, 1.5)
    return layer


def test_sphere_layer_is_the_weighted_product():
    layer = randomize(GauntTensorProduct(2, 3, 4, channels=5).double())
    x, y = torch.randn(7, 5, 9, dtype=torch.float64), torch.randn(7, 5, 16, dtype=torch.float64)
    d1, d2, d3 = (torch.repeat_interleave(torch.arange(L + 1), 2 * torch.arange(L + 1) + 1) for L in (2, 3, 4))
    expected = gaunt_tensor_product(x * layer.weight1[0][:, d1], y * layer.weight2[0][:, d2], 4,
                                    method="dense") * layer.weight_out[0][:, d3]
    torch.testing.assert_close(layer(x, y), expected)


@pytest.mark.parametrize("parities", ["sphere", "all"])
@pytest.mark.parametrize("mix_channels", [False, True])
def test_shapes(parities, mix_channels):
    layer = GauntTensorProduct(2, 1, 3, channels=4, parities=parities, mix_channels=mix_channels)
    classes = (2,) if parities == "all" else ()
    out = layer(torch.randn(3, 1, 4, *classes, 9), torch.randn(1, 6, 4, *classes, 4))
    assert out.shape == (3, 6, 4, *classes, 16)


@pytest.mark.parametrize("parities", ["sphere", "all"])
@pytest.mark.parametrize("mix_channels", [False, True])
def test_equivariance_under_rotations_and_rotoinversions(parities, mix_channels):
    layer = randomize(GauntTensorProduct(3, 2, 4, channels=3, parities=parities, mix_channels=mix_channels))
    layer = layer.double()
    classes = (2,) if parities == "all" else ()
    x, y = torch.randn(5, 3, *classes, 16, dtype=torch.float64), torch.randn(5, 3, *classes, 9, dtype=torch.float64)
    # Class 0 transforms with D(M), class 1 (pseudo) with det(M) D(M): harmonic_irreps(L, 2) flattens (2, (L+1)^2).
    n = len(classes) + 1
    assert_equivariant(layer, [harmonic_irreps(3, n), harmonic_irreps(2, n)], harmonic_irreps(4, n), inputs=(x, y))


def test_odd_parity_inputs_reach_every_output_class():
    layer = GauntTensorProduct(1, 1, 2, channels=1, parities="all").double()
    pseudo_x = torch.zeros(1, 1, 2, 4, dtype=torch.float64)
    pseudo_x[..., 1, :] = torch.randn(4, dtype=torch.float64)  # 0o + 1e only
    y = torch.randn(1, 1, 2, 4, dtype=torch.float64)
    out = layer(pseudo_x, y)
    assert out[..., 0, :].abs().max() > 0 and out[..., 1, :].abs().max() > 0


@pytest.mark.parametrize("parities", ["sphere", "all"])
def test_gradcheck_compile_state_dict(parities):
    layer = randomize(GauntTensorProduct(2, 2, 2, channels=2, parities=parities, mix_channels=True)).double()
    classes = (2,) if parities == "all" else ()
    y = torch.randn(3, 2, *classes, 9, dtype=torch.float64)

    class WithFixedY(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = layer

        def forward(self, x):
            return self.inner(x, y)

    assert_gradcheck(WithFixedY(), torch.randn(3, 2, *classes, 9, dtype=torch.float64))
    x = torch.randn(3, 2, *classes, 9)
    single = GauntTensorProduct(2, 2, 2, channels=2, parities=parities, mix_channels=True)
    assert_compiles(single, x, y.float(), fullgraph=True, rtol=1e-5, atol=1e-5)
    assert_state_dict_round_trip(lambda: randomize(GauntTensorProduct(2, 2, 2, channels=2, parities=parities)),
                                 x, y.float())


def test_errors():
    with pytest.raises(ValueError, match="GauntTensorProduct: channels=0 must be a positive int"):
        GauntTensorProduct(1, 1, 1, channels=0)
    with pytest.raises(ValueError, match="GauntTensorProduct: L_out=-2 must be an int >= 0"):
        GauntTensorProduct(1, 1, -2, channels=1)
    with pytest.raises(ValueError, match="parities='odd'"):
        GauntTensorProduct(1, 1, 1, channels=1, parities="odd")
    layer = GauntTensorProduct(1, 2, 2, channels=3)
    with pytest.raises(ValueError, match=r"GauntTensorProduct: y must have shape \(..., 3, 9\)"):
        layer(torch.randn(4, 3, 4), torch.randn(4, 3, 16))
    with pytest.raises(ValueError, match=r"x must have shape \(..., 3, 2, 4\)"):
        GauntTensorProduct(1, 1, 1, channels=3, parities="all")(torch.randn(4, 3, 4), torch.randn(4, 3, 2, 4))
