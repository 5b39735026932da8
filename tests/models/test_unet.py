"""The U-Net and the operator U-Net (model=unet / model=uno): the operator version's outputs converge as one
smooth input is sampled more finely, its coarse levels stay on fixed grids, and bad input is named."""

import math

import pytest
import torch

from kernelnn.layers import LocalIntegralConv1d
from kernelnn.models import UNet


def smooth_input(n):
    x = torch.arange(n, dtype=torch.float64) / n
    x, y = torch.meshgrid(x, x, indexing="ij")
    return (torch.sin(2 * math.pi * x) * torch.cos(4 * math.pi * y) + torch.exp(torch.sin(2 * math.pi * (x + y))))[
        None, None]


def self_convergence(model, resolutions=(32, 64, 128), reference=256):
    """Differences of the outputs at the 32-point grid's points from the output at ``reference``, relative to that
    output's variation about its mean (an untrained net's output is nearly its bias: the full norm would hide the
    field)."""
    with torch.no_grad():
        finest = model(smooth_input(reference))[..., :: reference // 32, :: reference // 32]
        scale = (finest - finest.mean()).norm()
        return [((model(smooth_input(n))[..., :: n // 32, :: n // 32] - finest).norm() / scale).item()
                for n in resolutions]


def test_the_operator_unets_outputs_converge_on_finer_grids():
    """Designed on 32 x 32 (coarse levels 16 and 8), applied to one smooth periodic input at 32 .. 256 points."""
    torch.manual_seed(0)
    model = UNet(1, 1, hidden_channels=8, levels=3, resolution=[32, 32], periodic=True).double()
    errors = self_convergence(model)
    assert all(b < 0.5 * a for a, b in zip(errors, errors[1:], strict=False)), errors
    assert errors[-1] < 2e-3, errors


def test_coarse_levels_have_the_training_grids_at_every_input_resolution():
    model = UNet(1, 1, hidden_channels=4, levels=3, resolution=[32, 24])
    assert model.level_shapes == [(32, 24), (16, 12), (8, 6)]
    shapes = []
    hooks = [encode.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[2:])))
             for encode in model.encoder]
    model(torch.randn(1, 1, 96, 48))
    for hook in hooks:
        hook.remove()
    assert shapes == [(96, 48), (16, 12), (8, 6)]


def test_the_kernel_radius_is_physical_so_finer_grids_get_wider_pixel_kernels():
    model = UNet(1, 1, hidden_channels=4, levels=2, resolution=[32, 32], kernel_size=3)
    conv = model.encoder[0][0]
    assert conv.radius == pytest.approx(1.5 / 32)
    assert conv.half_widths((32, 32)) == [1, 1] and conv.half_widths((128, 128)) == [6, 6]
    assert model.encoder[1][0].radius == pytest.approx(1.5 / 16)


def smooth_line(n):
    x = torch.arange(n, dtype=torch.float64) / n
    return (torch.sin(2 * math.pi * x) + torch.exp(torch.cos(4 * math.pi * x)))[None, None]


def test_the_1d_operator_unet_converges_and_the_1d_pixel_unet_does_not():
    """Burgers-like 1-D fields: designed on 64 points, one smooth periodic input at 64 .. 512 points, compared at
    the 64-point grid's points with the output at 1024 points."""
    torch.manual_seed(0)

    def errors(model):
        with torch.no_grad():
            finest = model(smooth_line(1024))[..., ::16]
            scale = (finest - finest.mean()).norm()
            return [((model(smooth_line(n))[..., :: n // 64] - finest).norm() / scale).item()
                    for n in (64, 128, 256, 512)]

    operator = UNet(1, 1, dim=1, hidden_channels=8, levels=3, resolution=64, kernel_size=5, periodic=True).double()
    assert isinstance(operator.encoder[0][0], LocalIntegralConv1d) and operator.level_shapes == [(64,), (32,), (16,)]
    op = errors(operator)
    assert all(b < 0.5 * a for a, b in zip(op, op[1:], strict=False)), op
    assert op[-1] < 2e-3, op
    pixel = UNet(1, 1, dim=1, hidden_channels=8, levels=3, operator=False, periodic=True).double()
    assert isinstance(pixel.encoder[0][0], torch.nn.Conv1d)
    px = errors(pixel)
    assert min(px) > 10 * op[-1], (px, op)


def test_the_pixel_unet_is_the_same_architecture_with_pixel_layers():
    pixel = UNet(3, 2, hidden_channels=8, levels=3, operator=False, periodic=True, resolution=32)
    assert isinstance(pixel.encoder[0][0], torch.nn.Conv2d) and pixel.encoder[0][0].padding_mode == "circular"
    out = pixel(torch.randn(2, 3, 20, 28))  # any size the pooling can halve twice, odd halves included
    assert out.shape == (2, 2, 20, 28)


def test_the_data_fills_periodicity_and_resolution():
    from kernelnn.data.bundle import DataBundle
    from kernelnn.training.assemble import fill_model_config

    bundle = DataBundle(name="toy", task="operator", train=torch.utils.data.TensorDataset(
        torch.randn(4, 1, 16, 8), torch.randn(4, 1, 16, 8)), tests={}, in_channels=1, out_channels=1, dim=2,
        periodic=True)
    filled = fill_model_config({"in_channels": None, "out_channels": None, "dim": None, "resolution": None,
                                "periodic": None}, bundle)
    assert filled == {"in_channels": 1, "out_channels": 1, "dim": 2, "resolution": [16, 8], "periodic": True}
    assert fill_model_config({"periodic": False}, bundle)["periodic"] is False  # an explicit choice is kept


@pytest.mark.parametrize(("kwargs", "x", "message"), [
    ({"dim": 3}, None, r"UNet: dim=3; the U-Net is built for 1-D and 2-D fields"),
    ({"dim": 1, "resolution": [32, 32]}, None, r"UNet: resolution=\[32, 32\] must be 1 grid size for dim=1"),
    ({"dim": 1, "resolution": 32, "kernel_shape": [3, 4]}, None,
     r"UNet: kernel_shape=\[3, 4\]; on 1-D fields it is the number of hats"),
    ({"dim": 1, "resolution": 32, "basis": "zernike"}, None, r"UNet: basis='zernike'; on 1-D fields"),
    ({"dim": 1, "resolution": 32}, torch.randn(2, 1, 8, 8), r"UNet: input must have shape \(batch, 1, L\)"),
    ({"kernel_size": 4}, None, r"UNet: kernel_size=4 must be odd"),
    ({"resolution": None}, None, r"UNet: operator=True needs resolution, the training grid"),
    ({"resolution": [16, 16, 16]}, None, r"UNet: resolution=\[16, 16, 16\] must be 2 grid sizes for dim=2"),
    ({"levels": 4, "periodic": True}, None, r"levels=4 on a 16x16 training grid gives level 3 a 2x2 grid, smaller "
                                            r"than its 3x3-pixel kernel"),
    ({"levels": 2, "periodic": True, "resolution": (6, 32)}, None, r"gives level 1 a 3x16 grid, smaller than its "
                                                                    r"3x17-pixel kernel"),
    ({"periodic": "no"}, None, r"UNet: periodic='no' must be true or false"),
    ({"kernel_size": 1}, None, r"UNet: kernel_size=1; the operator U-Net needs at least 3"),
    ({"normalization": "sum"}, None, r"UNet: normalization='sum' is not one of"),
    ({}, torch.randn(2, 3, 16, 16), r"UNet: input must have shape \(batch, 1, H, W\), got \(2, 3, 16, 16\)"),
    ({"operator": False}, torch.randn(2, 1, 3, 3), r"UNet: a 3x3 grid cannot be pooled 2 times"),
    ({}, torch.randn(2, 1, 16, 16, dtype=torch.float64), r"UNet: input dtype torch.float64 does not match"),
])
def test_bad_arguments_and_inputs_are_named(kwargs, x, message):
    with pytest.raises((ValueError, TypeError), match=message):
        UNet(1, 1, **{"hidden_channels": 4, "levels": 3, "resolution": [16, 16], **kwargs})(x)
