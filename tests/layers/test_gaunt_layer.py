"""GauntTensorProduct: shapes, per-degree weights, equivariance (both parity classes), autograd, errors."""

import pytest
import torch

from kernelnn.layers.gaunt import gaunt_tensor_product
from kernelnn.layers.gaunt_layer import GauntTensorProduct
from tests.conftest import assert_state_dict_round_trip, gradcheck_module
from tests.layers.test_gaunt import random_rotation, relative_error, wigner_d_from_harmonics


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


def transform(features, d, det, parities):
    """Apply an O(3) element: class 0 with D, class 1 (pseudo) with det * D."""
    if parities == "sphere":
        return features @ d.T
    return torch.stack([features[..., 0, :] @ d.T, det * (features[..., 1, :] @ d.T)], -2)


@pytest.mark.parametrize("parities", ["sphere", "all"])
@pytest.mark.parametrize("mix_channels", [False, True])
@pytest.mark.parametrize("improper", [False, True])
def test_equivariance(parities, mix_channels, improper):
    layer = randomize(GauntTensorProduct(3, 2, 4, channels=3, parities=parities, mix_channels=mix_channels))
    layer = layer.double()
    classes = (2,) if parities == "all" else ()
    x, y = torch.randn(5, 3, *classes, 16, dtype=torch.float64), torch.randn(5, 3, *classes, 9, dtype=torch.float64)
    matrix = random_rotation(3) * (-1 if improper else 1)
    det = -1.0 if improper else 1.0
    d1, d2, d3 = (wigner_d_from_harmonics(L, matrix) for L in (3, 2, 4))
    out = layer(transform(x, d1, det, parities), transform(y, d2, det, parities))
    assert relative_error(out, transform(layer(x, y), d3, det, parities)) <= 1e-10


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

    assert gradcheck_module(WithFixedY(), torch.randn(3, 2, *classes, 9, dtype=torch.float64))
    x = torch.randn(3, 2, *classes, 9)
    single = GauntTensorProduct(2, 2, 2, channels=2, parities=parities, mix_channels=True)
    compiled = torch.compile(single, fullgraph=True)
    torch.testing.assert_close(compiled(x, y.float()), single(x, y.float()), rtol=1e-5, atol=1e-5)
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
