"""Every model (and the spherical / multigrid layers) validates its input through one public method, check_input(x)."""

import pytest
import torch

from kernelnn.layers import MgConv, SphericalConv
from kernelnn.models import (
    CNN,
    FNO,
    KAN,
    MLP,
    TFNO,
    EquivariantNet,
    FrameCNN,
    MgNO,
    SpatioTemporalFNO,
    SphericalFNO,
)

# (module, a valid input, an input of the wrong rank or size, what the error names)
CASES = {
    "FNO": (lambda: FNO(1, 1, n_modes=(2, 2), hidden_channels=4, n_layers=1, projection_channels=4),
            (2, 1, 8, 8), (2, 1, 8), r"FNO: input must have shape \(batch, 1, n, n\) for dim=2, got shape \(2, 1, 8\)"),
    "TFNO": (lambda: TFNO(1, 1, n_modes=(2, 2), hidden_channels=4, n_layers=1, projection_channels=4),
             (2, 1, 8, 8), (2, 1, 2, 2), r"TFNO: n_modes=\[2, 2\] exceeds the Nyquist limit of a 2x2 input"),
    "SpatioTemporalFNO": (lambda: SpatioTemporalFNO(2, 3, n_modes=(2, 2, 2), hidden_channels=4, n_layers=1,
                                                    projection_channels=4),
                          (1, 2, 8, 8), (1, 3, 8, 8), r"SpatioTemporalFNO: input must have shape \(batch, 2, X, Y\)"),
    "SphericalFNO": (lambda: SphericalFNO(1, 1, n_modes=2, hidden_channels=4, n_layers=1), (1, 1, 8, 16),
                     (1, 1, 8), r"SphericalFNO: input must have shape \(batch, 1, nlat, nlon\), got \(1, 1, 8\)"),
    "SphericalConv": (lambda: SphericalConv(1, 2, 6), (1, 1, 16, 32), (1, 1, 8, 16),
                      "SphericalConv: n_modes=6 exceeds the 4 degrees a 8x16 equiangular grid resolves"),
    "MgNO": (lambda: MgNO(1, 1, hidden_channels=2, n_layers=1, levels=3), (1, 1, 8, 8), (1, 1, 6, 8),
             r"MgNO: spatial size \(6, 8\) must be divisible by 2\*\*\(levels-1\) = 4 for levels=3"),
    "MgConv": (lambda: MgConv(1, 2, levels=2), (1, 1, 8, 8), (1, 2, 8, 8),
               r"MgConv: input must have shape \(batch, 1, n, n\), got \(1, 2, 8, 8\)"),
    "MLP": (lambda: MLP(3, 2, hidden=[4]), (5, 3), (5, 4), r"MLP: input must have shape \(\.\.\., 3\), got \(5, 4\)"),
    "KAN": (lambda: KAN([3, 2]), (5, 3), (5, 2), r"KAN: input must have shape \(\.\.\., 3\), got \(5, 2\)"),
    "CNN": (lambda: CNN(1, 3, channels=[2]), (2, 1, 8, 8), (2, 1, 1, 1),
            r"CNN: images of size \(1, 1\) are too small for 1 pooling stages of factor 2"),
    "FrameCNN": (lambda: FrameCNN(1, 3, channels=[2]), (2, 3, 1, 8, 8), (2, 1, 8, 8),
                 r"FrameCNN: input must have shape \(batch, time, 1, H, W\), got \(2, 1, 8, 8\)"),
    "EquivariantNet": (lambda: EquivariantNet(2, L=1, channels=2, layers=1), (2, 4, 3), (2, 4, 2),
                       r"EquivariantNet: positions must have shape \(batch, n_points, 3\), got \(2, 4, 2\)"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_check_input_accepts_valid_and_names_the_module_in_every_error(name):
    build, good, bad, message = CASES[name]
    module = build()
    assert not hasattr(module, "check_input_shape")
    module.check_input(torch.randn(*good))
    with pytest.raises(ValueError, match=message):
        module.check_input(torch.randn(*bad))
    with pytest.raises(ValueError, match=message):  # forward runs the same check
        module(torch.randn(*bad))
    argument = "positions" if name == "EquivariantNet" else "input"
    with pytest.raises(TypeError, match=f"{name}: {argument} must be a torch.Tensor, got list"):
        module.check_input([[0.0]])
    with pytest.raises(TypeError, match=f"{name}: {argument}( dtype)? must be floating point, got torch.int64"):
        module.check_input(torch.ones(*good, dtype=torch.long))
