r"""A U-Net, and the same U-Net turned into a neural operator (Berner, Liu-Schiaffini, Kossaifi et al. 2025,
"Principled approaches for extending neural architectures to function spaces for operator learning").

The pixel U-Net (``operator=False``, ``model=unet``) is the usual one: two ``3 x 3`` convolutions per level (``3``
on 1-D fields), max pooling down, bilinear (linear) upsampling up, skip connections by concatenation. Its
receptive field is counted in pixels, so the same weights compute a different function on a finer grid of the same
input.

The operator U-Net (``operator=True``, ``model=uno``) keeps the architecture and replaces each part that depends
on the pixel by its continuous counterpart, as the paper's recipe prescribes:

- every convolution becomes a local integral operator (:class:`~kernelnn.layers.LocalIntegralConv2d`, or
  :class:`~kernelnn.layers.LocalIntegralConv1d` on 1-D fields) whose
  kernel is a function of the physical offset with a fixed physical radius: the radius a ``kernel_size`` pixel
  kernel has on the training grid at that level (``kernel_size / 2`` cells);
- pooling and upsampling become Fourier resampling (:func:`~kernelnn.layers.fourier_resample`) to grids fixed
  at construction: level ``l >= 1`` has ``resolution / 2^l`` points per axis whatever the input grid, so the
  coarse levels are band-limited operators and only the finest level follows the input's resolution;
- skip connections concatenate fields on the same grid, which is already resolution-independent.

On the training grid both compute the same kind of function; on finer grids of one smooth input the operator
U-Net's outputs converge (the rectangle rule of each integral converges, the coarse levels see the same
coefficients), and the pixel U-Net's do not. ``benchmarks/bench_unet.py`` measures both curves.
The name ``uno`` is this operator U-Net, not the U-shaped neural operator (U-NO) of Rahman et al.

The authors' code (``neuraloperator/NNs-to-NOs``) reaches the same property differently: it keeps the pixel
kernels learned at a base resolution and interpolates them to more taps on finer grids, and it halves the grid at
each level relative to the input. Here kernels are functions of the offset on a fixed basis (DISCO, as in
Liu-Schiaffini et al. 2024), and the coarse levels keep the training resolution's grids.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from kernelnn.layers.fourier_resample import fourier_resample
from kernelnn.layers.input_checks import check_dtype_matches, check_float_tensor, check_positive_ints
from kernelnn.layers.local_integral import BASES, NORMALIZATIONS, LocalIntegralConv1d, LocalIntegralConv2d
from kernelnn.registry import ACTIVATIONS


class UNet(nn.Module):
    """U-Net on 1-D or 2-D fields ``(batch, in_channels, *spatial) -> (batch, out_channels, *spatial)``.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of the input and output fields.
    dim : int
        Spatial dims, 1 or 2 (filled from the data by ``train.py``).
    hidden_channels : int
        Channels of the finest level; level ``l`` has ``hidden_channels * 2^l``.
    levels : int
        Levels, the finest included (``levels - 1`` down- and upsamplings).
    operator : bool
        ``True``: the operator U-Net (local integral operators and Fourier resampling); ``False``: the pixel U-Net.
    resolution : int or sequence of ``dim`` ints, optional
        The training grid (filled from the data by ``train.py``). The operator U-Net needs it: it fixes the
        coarse levels' grids and the kernels' physical radii. The pixel U-Net ignores it.
    kernel_size : int
        Odd pixel kernel size of the pixel U-Net; for the operator U-Net it sets the kernels' radius,
        ``kernel_size / 2`` cells of the training grid at each level (``model=uno`` uses 5: with 3 the training
        grid samples each basis function at a handful of pixels, and zero-shot errors grow; benchmarks/RESULTS.md).
    kernel_shape, basis, normalization
        The operator U-Net's kernel basis and its normalisation (:class:`~kernelnn.layers.LocalIntegralConv2d`;
        ``None``: ``(3, 4)``). On 1-D fields ``kernel_shape`` is the number of piecewise-linear hats
        (:class:`~kernelnn.layers.LocalIntegralConv1d`; ``None``: 3, the 2-D default's radial collocation) and
        ``basis`` must be ``"piecewise linear"``.
    periodic : bool
        Periodic domain (circular padding), else zero padding; ``train.py`` fills it from the data when the config
        leaves it null (``None`` passed here is ``False``). The pixel U-Net's (bi)linear upsampling does not wrap
        around: at a periodic boundary it clamps.
    activation : str
        A name from :data:`kernelnn.registry.ACTIVATIONS`.
    """

    def __init__(self, in_channels: int, out_channels: int, dim: int = 2, hidden_channels: int = 32, levels: int = 3,
                 operator: bool = True, resolution: Sequence[int] | None = None, kernel_size: int = 3,
                 kernel_shape: int | Sequence[int] | None = None, basis: str = "piecewise linear",
                 periodic: bool | None = False, activation: str = "gelu", normalization: str = "discrete") -> None:
        super().__init__()
        name = type(self).__name__
        check_positive_ints(name, in_channels=in_channels, out_channels=out_channels, dim=dim,
                            hidden_channels=hidden_channels, levels=levels, kernel_size=kernel_size)
        if dim not in (1, 2):
            raise ValueError(f"{name}: dim={dim}; the U-Net is built for 1-D and 2-D fields (dim=1 or 2)")
        if dim == 1 and operator and basis != "piecewise linear":
            raise ValueError(f"{name}: basis={basis!r}; on 1-D fields the operator U-Net's kernels are piecewise-"
                             "linear hats (basis='piecewise linear')")
        if kernel_size % 2 == 0:
            raise ValueError(f"{name}: kernel_size={kernel_size} must be odd")
        if basis not in BASES:
            raise ValueError(f"{name}: basis={basis!r} is not one of {list(BASES)}")
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"{name}: normalization={normalization!r} is not one of {list(NORMALIZATIONS)}")
        for flag, value in (("operator", operator), ("periodic", periodic)):
            if value is not None and not isinstance(value, bool):
                raise ValueError(f"{name}: {flag}={value!r} must be true or false")
        if operator and kernel_size < 3:
            raise ValueError(f"{name}: kernel_size={kernel_size}; the operator U-Net needs at least 3 (a kernel "
                             "narrower than a cell of the training grid is a point-wise map there)")
        self.in_channels, self.out_channels, self.dim = in_channels, out_channels, dim
        self.levels, self.operator, self.periodic = levels, bool(operator), bool(periodic)
        self.kernel_size = kernel_size
        self.level_shapes: list[tuple[int, int]] | None = None
        if resolution is not None:
            resolution = [resolution] * dim if isinstance(resolution, int) else list(resolution)
            check_positive_ints(name, **{f"resolution[{i}]": n for i, n in enumerate(resolution)})
            if len(resolution) != dim:
                raise ValueError(f"{name}: resolution={resolution} must be {dim} grid size{'s' if dim > 1 else ''} "
                                 f"for dim={dim}")
        if self.operator:
            if resolution is None:
                raise ValueError(f"{name}: operator=True needs resolution, the training grid: it fixes the "
                                 "coarse levels' grids and the kernels' physical radii")
            self.level_shapes = [tuple(max(1, math.ceil(n / 2**level)) for n in resolution) for level in range(levels)]
        self.resolution = resolution
        if kernel_shape is None:
            kernel_shape = 3 if dim == 1 else (3, 4)
        kernel_shape = tuple(kernel_shape) if not isinstance(kernel_shape, int) else kernel_shape
        if dim == 1 and not isinstance(kernel_shape, int) and len(kernel_shape) != 1:
            raise ValueError(f"{name}: kernel_shape={list(kernel_shape)}; on 1-D fields it is the number of hats, "
                             "one int")
        widths = [hidden_channels * 2**level for level in range(levels)]

        def conv(c_in: int, c_out: int, level: int) -> nn.Module:
            if not self.operator:
                return (nn.Conv1d if dim == 1 else nn.Conv2d)(c_in, c_out, kernel_size, padding=kernel_size // 2,
                                                              padding_mode="circular" if self.periodic else "zeros")
            cell = max(1 / n for n in self.level_shapes[level])
            if dim == 1:
                return LocalIntegralConv1d(c_in, c_out, radius=kernel_size / 2 * cell, kernel_shape=kernel_shape,
                                           periodic=self.periodic, normalization=normalization)
            return LocalIntegralConv2d(c_in, c_out, radius=kernel_size / 2 * cell, kernel_shape=kernel_shape,
                                       basis=basis, periodic=self.periodic, normalization=normalization)

        def block(c_in: int, c_out: int, level: int) -> nn.Sequential:
            return nn.Sequential(conv(c_in, c_out, level), ACTIVATIONS.build(activation, owner=name,
                                                                             argument="activation"),
                                 conv(c_out, c_out, level), ACTIVATIONS.build(activation, owner=name,
                                                                              argument="activation"))

        self.encoder = nn.ModuleList(block(in_channels if level == 0 else widths[level - 1], widths[level], level)
                                     for level in range(levels))
        self.decoder = nn.ModuleList(block(widths[level + 1] + widths[level], widths[level], level)
                                     for level in range(levels - 1))
        self.projection = (nn.Conv1d if dim == 1 else nn.Conv2d)(widths[0], out_channels, 1)
        if self.operator and self.periodic:  # every level's kernel must fit its (fixed or training) grid
            for level, shape in enumerate(self.level_shapes):
                conv = self.encoder[level][0]
                pixels = [2 * p + 1 for p in conv.half_widths(shape)]
                if any(k > n for k, n in zip(pixels, shape, strict=True)):
                    raise ValueError(f"{name}: levels={levels} on a {_grid(resolution)} training grid gives level "
                                     f"{level} a {_grid(shape)} grid, smaller than its {_grid(pixels)}-pixel kernel; "
                                     "use fewer levels")

    def extra_repr(self) -> str:
        return (f"operator={self.operator}, levels={self.levels}, level_shapes={self.level_shapes}, "
                f"periodic={self.periodic}")

    def check_input(self, x: torch.Tensor) -> None:
        name = type(self).__name__
        check_float_tensor(x, name)
        if x.dim() != self.dim + 2 or x.shape[1] != self.in_channels:
            axes = "L" if self.dim == 1 else "H, W"
            raise ValueError(f"{name}: input must have shape (batch, {self.in_channels}, {axes}), "
                             f"got {tuple(x.shape)}")
        check_dtype_matches(x, self, name)
        spatial = tuple(x.shape[2:])
        if not self.operator and min(spatial) < 2 ** (self.levels - 1):
            raise ValueError(f"{name}: a {_grid(spatial)} grid cannot be pooled {self.levels - 1} times "
                             f"(levels={self.levels}); give at least {2 ** (self.levels - 1)} points per axis")

    def _down(self, x: torch.Tensor, level: int) -> torch.Tensor:
        if self.operator:
            return fourier_resample(x, self.level_shapes[level])
        return (F.max_pool1d if self.dim == 1 else F.max_pool2d)(x, 2)

    def _up(self, x: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
        if self.operator:
            return fourier_resample(x, shape)
        return F.interpolate(x, size=tuple(shape), mode="linear" if self.dim == 1 else "bilinear",
                             align_corners=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        skips = []
        for level, encode in enumerate(self.encoder):
            x = encode(x if level == 0 else self._down(x, level))
            skips.append(x)
        x = skips.pop()
        for level in reversed(range(self.levels - 1)):
            skip = skips[level]
            x = self.decoder[level](torch.cat([self._up(x, skip.shape[2:]), skip], dim=1))
        return self.projection(x)


def _grid(shape: Sequence[int]) -> str:
    return "x".join(str(n) for n in shape)
