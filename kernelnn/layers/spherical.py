r"""Spectral convolution on the sphere through the spherical harmonic transform (torch-harmonics).

Source: Bonev et al., "Spherical Fourier Neural Operators" (ICML 2023). The input field on an
equiangular (or Gauss-Legendre) latitude-longitude grid is transformed with ``RealSHT`` into coefficients
:math:`\hat u_{lm}` (``m >= 0``), the degrees :math:`l < l_{max}` are multiplied by learned complex
weights, and ``InverseRealSHT`` maps back. ``operator_type="driscoll-healy"`` uses one *real* weight matrix
per degree, :math:`\hat y_{lm} = W_l \hat u_{lm}`: a convolution with a zonal kernel (Funk-Hecke), equivariant
under all rotations of the sphere. The weights must be real: on a real field a complex :math:`W_l` acts as
:math:`\bar W_l` on the orders :math:`-m`, which breaks equivariance under rotations that mix :math:`m` and
:math:`-m`. ``"diagonal"`` uses a complex weight per :math:`(l, m)`: equivariant about the polar axis
(longitude shifts) only.
"""

from __future__ import annotations

import torch
from torch import nn

from kernelnn.layers.spectral import autocast_output_dtype

OPERATOR_TYPES = ("driscoll-healy", "diagonal")
GRIDS = ("equiangular", "legendre-gauss")


class SphericalConv(nn.Module):
    """Spectral convolution on the sphere, ``(batch, in, nlat, nlon) -> (batch, out, *output_shape)``.

    Parameters
    ----------
    in_channels, out_channels : int
    n_modes : int
        Kept degrees ``l < n_modes`` (and orders ``m < n_modes``); at most what the grid resolves.
    operator_type : str
        ``"driscoll-healy"`` (weights per degree) or ``"diagonal"`` (weights per degree and order).
    grid : str
        ``"equiangular"`` or ``"legendre-gauss"`` latitudes, as in torch-harmonics.

    The transforms are rebuilt per grid shape and device and cached outside the module, so they are not part
    of the state_dict. Under autocast the transform runs in float32 and the output has the autocast dtype.
    """

    def __init__(self, in_channels: int, out_channels: int, n_modes: int, operator_type: str = "driscoll-healy",
                 grid: str = "equiangular") -> None:
        super().__init__()
        name = type(self).__name__
        if operator_type not in OPERATOR_TYPES:
            raise ValueError(f"{name}: operator_type={operator_type!r} is not one of {OPERATOR_TYPES}")
        if grid not in GRIDS:
            raise ValueError(f"{name}: grid={grid!r} is not one of {GRIDS}")
        if not isinstance(n_modes, int) or n_modes < 1:
            raise ValueError(f"{name}: n_modes={n_modes!r} must be a positive int (kept degrees l < n_modes)")
        self.in_channels, self.out_channels, self.n_modes = in_channels, out_channels, n_modes
        self.operator_type, self.grid = operator_type, grid
        # Real (C_in, C_out, l) for driscoll-healy; complex (C_in, C_out, l, m) stored as (..., 2) for diagonal.
        shape = (in_channels, out_channels, n_modes) + ((n_modes, 2) if operator_type == "diagonal" else ())
        self.weight = nn.Parameter(torch.rand(*shape) / (in_channels * out_channels))
        self._transforms: dict = {}

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, n_modes={self.n_modes}, operator_type={self.operator_type!r}"

    def _sht(self, nlat: int, nlon: int, device: torch.device, inverse: bool, dtype=torch.float32):
        # The transforms' matrices depend on the grid: symbolic sizes (torch.export, dynamic compile) specialize.
        nlat, nlon = int(nlat), int(nlon)
        key = (nlat, nlon, str(device), inverse, dtype)
        if key not in self._transforms:
            # Imported here, not with kernelnn: torch-harmonics imports torch._dynamo and more (about a second).
            import torch_harmonics as th

            cls = th.InverseRealSHT if inverse else th.RealSHT
            self._transforms[key] = cls(nlat, nlon, grid=self.grid).to(device=device, dtype=dtype)
        return self._transforms[key]

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ``TypeError``/``ValueError`` unless ``x`` is a float tensor ``(batch, in_channels, nlat, nlon)``
        on a grid that resolves ``n_modes`` degrees."""
        name = type(self).__name__
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name}: input must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"{name}: input must have shape (batch, {self.in_channels}, nlat, nlon), "
                             f"got {tuple(x.shape)}")
        if not x.is_floating_point():
            raise TypeError(f"{name}: input dtype must be floating point, got {x.dtype}")
        self.check_grid(x.shape[2], x.shape[3])

    def check_grid(self, nlat: int, nlon: int, owner: str | None = None) -> None:
        """Raise ``ValueError`` (naming ``owner``, default this layer) unless a ``nlat x nlon`` grid resolves the
        ``n_modes`` kept degrees."""
        lmax = self._sht(nlat, nlon, torch.device("cpu"), False).lmax
        if self.n_modes > lmax:
            raise ValueError(f"{owner or type(self).__name__}: n_modes={self.n_modes} exceeds the {lmax} degrees a "
                             f"{nlat}x{nlon} {self.grid} grid resolves")

    def forward(self, x: torch.Tensor, output_shape: tuple[int, int] | None = None) -> torch.Tensor:
        self.check_input(x)
        out_dtype = autocast_output_dtype(x)
        nlat_out, nlon_out = output_shape or x.shape[2:]
        with torch.autocast(x.device.type, enabled=False):
            x = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
            sht = self._sht(x.shape[2], x.shape[3], x.device, False, x.dtype)
            isht = self._sht(nlat_out, nlon_out, x.device, True, x.dtype)
            if self.n_modes > isht.lmax:
                raise ValueError(f"{type(self).__name__}: n_modes={self.n_modes} exceeds the {isht.lmax} degrees of "
                                 f"the output grid {nlat_out}x{nlon_out}")
            if x.shape[0] == 0:  # MKL's FFT refuses an empty batch ("Inconsistent configuration parameters")
                return x.new_zeros(0, self.out_channels, nlat_out, nlon_out, dtype=out_dtype)
            coeffs = sht(x)[..., : self.n_modes, : self.n_modes]
            m = coeffs.shape[-1]
            if self.operator_type == "driscoll-healy":
                out = torch.einsum("bilm,iol->bolm", coeffs, self.weight.to(coeffs.dtype))
            else:
                w = torch.view_as_complex(self.weight.to(x.dtype))
                out = torch.einsum("bilm,iolm->bolm", coeffs, w[..., :m])
            full = out.new_zeros(out.shape[0], out.shape[1], isht.lmax, isht.mmax)
            full[..., : out.shape[2], :m] = out
            y = isht(full)
        return y.to(out_dtype)
