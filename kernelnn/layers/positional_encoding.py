r"""Positional encodings of coordinates: what a coordinate network reads instead of the raw coordinates.

On the sphere, a point is ``(longitude, latitude)`` in degrees, ``lon`` in ``[-180, 180]`` and ``lat`` in
``[-90, 90]`` (the order of Rußwurm et al.'s ``locationencoder`` and of GeoJSON):

- :class:`SphericalHarmonicsEncoding`: the real spherical harmonics up to degree ``L`` (Rußwurm, Klemmer, Rolf,
  Zbinden & Tuia, "Geographic location encoding with spherical harmonics and sinusoidal representation networks",
  ICLR 2024). Orthonormal functions natively on the sphere: smooth at the poles and across the date line.
- :class:`DoubleFourierSphere`: sines and cosines of longitude and latitude at several scales (the "grid" of
  Space2Vec and "sphereC+" of Sphere2Vec, Mai et al.), the embeddings the paper compares against; they treat the
  sphere as a rectangle, which puts artefacts at the poles.
- :class:`LonLatEncoding`: the raw angles in radians (the paper's "direct").

In Euclidean boxes: :class:`FourierFeatures`, random Fourier features ``[cos 2 pi B v, sin 2 pi B v]`` with
``B ~ N(0, sigma^2)`` (Tancik et al., "Fourier features let networks learn high frequency functions in low
dimensional domains", NeurIPS 2020; their ``sigma = 10`` is for coordinates in ``[0, 1]``: on ``[-1, 1]`` the same
bandwidth is ``sigma = 5``).

Every encoding maps ``(..., in_features) -> (..., out_features)`` and says its ``out_features``; they are registered
in :data:`kernelnn.registry.ENCODINGS`, so a coordinate network picks one by name.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from kernelnn.layers.input_checks import check_float_tensor, check_positive_ints
from kernelnn.layers.spherical_harmonics import spherical_harmonics_feature_major, spherical_harmonics_from_parts
from kernelnn.registry import ENCODINGS


def check_lonlat(x: torch.Tensor, owner: str) -> None:
    """``x`` is ``(..., 2)`` floating (longitude, latitude) in degrees within ``[-180, 180] x [-90, 90]``; the range
    check reads the values, so it is skipped while ``torch.compile`` traces."""
    check_float_tensor(x, owner)
    if x.dim() < 1 or x.shape[-1] != 2:
        raise ValueError(f"{owner}: input must have shape (..., 2), (longitude, latitude) in degrees, "
                         f"got {tuple(x.shape)}")
    if torch.compiler.is_compiling() or x.numel() == 0:
        return
    lon, lat = x[..., 0], x[..., 1]
    for name, values, bound in (("longitude", lon, 180), ("latitude", lat, 90)):
        bad = ~(values.abs() <= bound)  # NaN is outside too
        if bad.any():
            value = values[bad][0].item()
            hint = " (longitudes in [0, 360): use ((lon + 180) % 360) - 180)" if name == "longitude" else ""
            raise ValueError(f"{owner}: input {name} {value:g} is outside [-{bound}, {bound}] degrees "
                             f"({int(bad.sum())} of {values.numel()} points); the input is (longitude, latitude)"
                             f"{hint}")


def _check_degree(owner: str, L: object) -> None:
    if isinstance(L, bool) or not isinstance(L, int) or L < 1:
        raise ValueError(f"{owner}: L={L!r} must be an int >= 1 (the highest spherical-harmonic degree)")


@ENCODINGS.register("spherical_harmonics", example={"L": 3})
class SphericalHarmonicsEncoding(nn.Module):
    r"""Real spherical harmonics of a point on the sphere: ``(..., 2) -> (..., (L + 1)^2)``.

    .. math::  \mathrm{PE}(\lambda, \varphi) = \bigl(Y_l^m(\theta, \lambda)\bigr)_{0 \le l \le L,\ -l \le m \le l},
               \qquad \theta = 90^\circ - \varphi \text{ (colatitude)},

    with kernelnn's real harmonics (:mod:`kernelnn.layers.spherical_harmonics`: orthonormal on the sphere, no
    Condon-Shortley phase, index ``l^2 + l + m``), polar axis through the geographic poles and azimuth the
    longitude, so ``Y_l^m`` varies as ``cos(m lon)`` / ``sin(|m| lon)``. Computed in closed form by the stable
    Legendre recursion (no division at the poles). Without gradients (inference, or coordinates that need none,
    as in training) the recursion runs in chunks in place and the output is a transposed view of a feature-major
    tensor (``.reshape`` works on it, ``.view`` may not); on the CPU it runs at close to the cost of writing the
    output (``benchmarks/RESULTS.md``).

    Rußwurm et al. count ``L`` Legendre polynomials, degrees ``0 .. L - 1`` (``L^2`` features); here ``L`` is the
    highest degree, so their ``L = 10`` is ``L = 9``. Their harmonics equal these up to the sign ``(-1)^l`` (they
    measure the polar angle from the south pole), which a following linear layer absorbs.

    Parameters
    ----------
    L : int
        Highest degree, at least 1 (the paper uses 10 to 40 polynomials; features grow as ``(L + 1)^2``).
    normalization : str
        ``"integral"`` (orthonormal on the sphere, as the paper) or ``"component"`` (times ``sqrt(4 pi)``).

    Shapes: ``(..., 2)`` (longitude, latitude) in degrees ``-> (..., (L + 1)^2)``.

    Example
    -------
    >>> SphericalHarmonicsEncoding(10)(torch.tensor([[8.5, 47.4]])).shape
    torch.Size([1, 121])
    """

    in_features = 2

    def __init__(self, L: int, normalization: str = "integral") -> None:
        super().__init__()
        _check_degree("SphericalHarmonicsEncoding", L)
        if normalization not in ("integral", "component"):
            raise ValueError(f"SphericalHarmonicsEncoding: normalization={normalization!r} is not one of "
                             "['integral', 'component']")
        self.L, self.normalization = L, normalization
        self.out_features = (L + 1) ** 2

    def extra_repr(self) -> str:
        return f"L={self.L}, out_features={self.out_features}, normalization={self.normalization!r}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_lonlat(x, "SphericalHarmonicsEncoding")
        dtype = x.dtype
        if dtype in (torch.float16, torch.bfloat16):  # the recursion's high degrees need float32
            x = x.float()
        with torch.autocast(x.device.type, enabled=False):
            lon, lat = torch.deg2rad(x).unbind(-1)
            cos_lat = torch.cos(lat)
            parts = (torch.sin(lat), cos_lat * torch.cos(lon), cos_lat * torch.sin(lon))
            if (torch.is_grad_enabled() and x.requires_grad) or torch.compiler.is_compiling():
                y = spherical_harmonics_from_parts(self.L, *parts, self.normalization)
            else:  # many points, no gradient: the chunked in-place recursion, returned as a transposed view
                flat = [p.reshape(-1) for p in parts]
                y = spherical_harmonics_feature_major(self.L, *flat, self.normalization).T
                y = y.reshape(*x.shape[:-1], self.out_features)
        return y.to(dtype)


def _geometric_frequencies(n_scales: int, min_period: float, max_period: float) -> torch.Tensor:
    """``360 / period`` (cycles per turn) for ``n_scales`` periods geometric from ``max_period`` down to
    ``min_period`` degrees."""
    if n_scales == 1:
        return torch.tensor([360 / max_period], dtype=torch.float64)
    s = torch.arange(n_scales, dtype=torch.float64) / (n_scales - 1)
    return 360 / (max_period * (min_period / max_period) ** s)


@ENCODINGS.register("double_fourier_sphere", example={"n_scales": 3})
class DoubleFourierSphere(nn.Module):
    r"""Multi-scale sines and cosines of longitude and latitude (double-Fourier-sphere embeddings):
    ``(..., 2) -> (..., out_features)``.

    With angles in radians and ``S`` frequencies ``w_s = 360 / p_s`` (periods ``p_s`` in degrees, geometric from
    ``max_period`` down to ``min_period``), rounded to whole numbers for the longitude so that every feature is
    continuous across the date line (a double Fourier series of the sphere has integer longitude frequencies; the
    reference code's fractional ones jump at 180 degrees):

    - ``variant="grid"`` (Space2Vec's grid cell): ``[sin w_s lon, cos w_s lon, sin w_s lat, cos w_s lat]``, ``4 S``;
    - ``variant="spherec+"`` (Sphere2Vec): ``[sin w_s lat, cos w_s lat, sin w_s lon, cos w_s lon,
      cos w_s lat cos w_s lon, cos w_s lat sin w_s lon]``, ``6 S``.

    Both treat ``(lon, lat)`` as a rectangle: near a pole, points close on the sphere can be far apart in longitude
    and get very different features (the artefact Rußwurm et al. 2024 show). Periods are in degrees, as the
    authors intended (their code multiplies degrees by ``1 / period`` without ``2 pi``, which its maintainer called
    a mistake: ``MarcCoru/locationencoder#5``); with the default ``max_period=360`` the coarsest longitude term is
    ``360``-periodic.

    Parameters
    ----------
    n_scales : int
        Number of frequencies ``S``.
    min_period, max_period : float
        Shortest and longest period in degrees (the paper's ``min_radius`` and ``max_radius``; defaults 10, 360).
    variant : str
        ``"grid"`` or ``"spherec+"``.

    Shapes: ``(..., 2)`` (longitude, latitude) in degrees ``-> (..., 4 S)`` or ``(..., 6 S)``.
    """

    in_features = 2
    VARIANTS = {"grid": 4, "spherec+": 6}

    def __init__(self, n_scales: int = 16, min_period: float = 10.0, max_period: float = 360.0,
                 variant: str = "spherec+") -> None:
        super().__init__()
        check_positive_ints("DoubleFourierSphere", n_scales=n_scales)
        if variant not in self.VARIANTS:
            raise ValueError(f"DoubleFourierSphere: variant={variant!r} is not one of {list(self.VARIANTS)}")
        if not (0 < min_period <= max_period < math.inf):
            raise ValueError(f"DoubleFourierSphere: min_period={min_period} and max_period={max_period} must satisfy "
                             "0 < min_period <= max_period (degrees)")
        self.n_scales, self.min_period, self.max_period, self.variant = n_scales, min_period, max_period, variant
        self.out_features = self.VARIANTS[variant] * n_scales
        frequencies = _geometric_frequencies(n_scales, min_period, max_period)
        self.register_buffer("frequencies", frequencies, persistent=False)  # latitude, float64
        self.register_buffer("longitude_frequencies", frequencies.round().clamp_min(1), persistent=False)

    def extra_repr(self) -> str:
        return (f"n_scales={self.n_scales}, min_period={self.min_period:g}, max_period={self.max_period:g}, "
                f"variant={self.variant!r}, out_features={self.out_features}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_lonlat(x, "DoubleFourierSphere")
        dtype = x.dtype
        with torch.autocast(x.device.type, enabled=False):
            x = x.float() if dtype in (torch.float16, torch.bfloat16) else x
            lon_deg, lat_deg = torch.deg2rad(x).unbind(-1)
            lon = lon_deg[..., None] * self.longitude_frequencies.to(x.dtype)  # (..., S)
            lat = lat_deg[..., None] * self.frequencies.to(x.dtype)
            if self.variant == "grid":
                parts = [torch.sin(lon), torch.cos(lon), torch.sin(lat), torch.cos(lat)]
            else:
                cos_lat, cos_lon, sin_lon = torch.cos(lat), torch.cos(lon), torch.sin(lon)
                parts = [torch.sin(lat), cos_lat, sin_lon, cos_lon, cos_lat * cos_lon, cos_lat * sin_lon]
            out = torch.cat(parts, -1)
        return out.to(dtype)


@ENCODINGS.register("lonlat", example={})
class LonLatEncoding(nn.Module):
    """The raw angles, ``(..., 2)`` degrees ``-> (..., 2)`` radians in ``[-pi, pi] x [-pi/2, pi/2]`` (the paper's
    "direct" baseline, centred: its code subtracts ``pi`` from both, which is not what its comment says)."""

    point_wise = True  # (..., 2) -> (..., 2): features last, any leading dims (not element-wise: the 2 is checked)

    in_features = out_features = 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_lonlat(x, "LonLatEncoding")
        return torch.deg2rad(x)


@ENCODINGS.register("fourier_features", example={"in_features": 2, "n_frequencies": 4})
class FourierFeatures(nn.Module):
    r"""Random Fourier features of Euclidean coordinates: ``(..., d) -> (..., 2 m)``,
    ``[cos(2 pi v B^T), sin(2 pi v B^T)]`` with ``B`` ``(m, d)`` drawn once from ``N(0, sigma^2)`` (Tancik et al.
    2020; their image experiments use ``m = 256``, ``sigma = 10`` on coordinates in ``[0, 1]``).

    ``B`` is a fixed buffer kept in the state dict (it is random, not derived), so a reloaded model is the same
    function.

    Parameters
    ----------
    in_features : int
        Coordinate dimension ``d``.
    n_frequencies : int
        Number ``m`` of random frequencies.
    sigma : float
        Standard deviation of the frequencies (in cycles per unit of the coordinates).
    seed : int, optional
        Seed of ``B``'s own generator; ``None`` (default): torch's global generator, so runs with different seeds
        draw different frequencies.
    """

    def __init__(self, in_features: int, n_frequencies: int = 256, sigma: float = 10.0,
                 seed: int | None = None) -> None:
        super().__init__()
        check_positive_ints("FourierFeatures", in_features=in_features, n_frequencies=n_frequencies)
        if not 0 < sigma < math.inf:
            raise ValueError(f"FourierFeatures: sigma={sigma} must be a positive number")
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        self.in_features, self.n_frequencies, self.sigma = in_features, n_frequencies, sigma
        self.out_features = 2 * n_frequencies
        self.register_buffer("frequencies", torch.randn(n_frequencies, in_features, generator=generator) * sigma)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, n_frequencies={self.n_frequencies}, sigma={self.sigma:g}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_float_tensor(x, "FourierFeatures")
        if x.dim() < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"FourierFeatures: input must have shape (..., {self.in_features}), got {tuple(x.shape)}")
        dtype = x.dtype
        with torch.autocast(x.device.type, enabled=False):
            x = x.float() if dtype in (torch.float16, torch.bfloat16) else x
            angles = 2 * math.pi * x @ self.frequencies.to(x.dtype).T
            out = torch.cat([torch.cos(angles), torch.sin(angles)], -1)
        return out.to(dtype)


@ENCODINGS.register("identity", example={"in_features": 2})
class IdentityEncoding(nn.Module):
    """The coordinates as they are, ``(..., d) -> (..., d)``: a coordinate network without an encoding."""

    point_wise = True  # (..., d) -> (..., d): features last, any leading dims (not element-wise: d is checked)

    def __init__(self, in_features: int) -> None:
        super().__init__()
        check_positive_ints("IdentityEncoding", in_features=in_features)
        self.in_features = self.out_features = in_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_float_tensor(x, "IdentityEncoding")
        if x.dim() < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"IdentityEncoding: input must have shape (..., {self.in_features}), "
                             f"got {tuple(x.shape)}")
        return x
