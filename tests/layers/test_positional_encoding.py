"""Positional encodings of coordinates: spherical harmonics are orthonormal and smooth at the poles, double-Fourier-
sphere features are not, Fourier features are the formula, and bad coordinates are named."""

import math

import pytest
import torch

from kernelnn.layers import DoubleFourierSphere, FourierFeatures, LonLatEncoding, SphericalHarmonicsEncoding


def sphere_quadrature(n_lat=40, n_lon=80):
    """Gauss-Legendre nodes in sin(lat) times equal steps in longitude: exact for the products of harmonics up to
    degree n_lat - 1 each. Returns (points (n, 2) in degrees, weights (n,)) in float64."""
    import numpy as np

    nodes, weights = np.polynomial.legendre.leggauss(n_lat)
    lat = torch.rad2deg(torch.asin(torch.from_numpy(nodes)))
    lon = torch.arange(n_lon, dtype=torch.float64) * 360 / n_lon - 180
    lon, lat = torch.meshgrid(lon, lat, indexing="ij")
    w = torch.from_numpy(weights)[None, :].expand(n_lon, n_lat) * (2 * math.pi / n_lon)
    return torch.stack([lon, lat], -1).reshape(-1, 2), w.reshape(-1)


def test_spherical_harmonics_are_orthonormal_on_the_sphere():
    points, weights = sphere_quadrature()
    y = SphericalHarmonicsEncoding(8)(points)
    gram = y.T @ (weights[:, None] * y)
    torch.testing.assert_close(gram, torch.eye(81, dtype=torch.float64), rtol=0, atol=1e-12)


def test_spherical_harmonics_low_degrees_in_closed_form():
    """Y_00 = 1 / (2 sqrt(pi)); degree 1 is sqrt(3 / (4 pi)) (cos lat sin lon, sin lat, cos lat cos lon) at
    m = -1, 0, 1: the polar axis through the geographic poles, the azimuth the longitude."""
    lon, lat = torch.tensor([17.0, -120.0, 179.0], dtype=torch.float64), torch.tensor([5.0, -61.0, 88.0],
                                                                                       dtype=torch.float64)
    y = SphericalHarmonicsEncoding(1)(torch.stack([lon, lat], -1))
    lon, lat = torch.deg2rad(lon), torch.deg2rad(lat)
    c = math.sqrt(3 / (4 * math.pi))
    expected = torch.stack([torch.full_like(lon, 0.5 / math.sqrt(math.pi)), c * torch.cos(lat) * torch.sin(lon),
                            c * torch.sin(lat), c * torch.cos(lat) * torch.cos(lon)], -1)
    torch.testing.assert_close(y, expected)


def test_at_a_pole_spherical_harmonics_ignore_longitude_and_double_fourier_features_do_not():
    """The pole is one point: every longitude there must give the same features. The harmonics do; the
    double-Fourier-sphere embeddings give a different feature vector per longitude (their polar artefact)."""
    pole = torch.stack([torch.linspace(-180, 180, 7, dtype=torch.float64), torch.full((7,), 90.0,
                                                                                    dtype=torch.float64)], -1)
    sh = SphericalHarmonicsEncoding(12)(pole)
    torch.testing.assert_close(sh, sh[:1].expand_as(sh), rtol=0, atol=1e-12)
    for variant in ("grid", "spherec+"):
        dfs = DoubleFourierSphere(8, variant=variant).double()(pole)
        assert (dfs - dfs[:1]).abs().max() > 0.5, variant


def test_double_fourier_sphere_formula():
    """Periods geometric from 360 down to 10 degrees: frequencies 1 ... 36 cycles per turn."""
    enc = DoubleFourierSphere(3, min_period=10, max_period=360, variant="grid").double()
    torch.testing.assert_close(enc.frequencies, torch.tensor([1.0, 6.0, 36.0], dtype=torch.float64))
    x = torch.tensor([[30.0, -45.0]], dtype=torch.float64)
    lon, lat = torch.deg2rad(x[0, 0]) * enc.frequencies, torch.deg2rad(x[0, 1]) * enc.frequencies
    expected = torch.cat([torch.sin(lon), torch.cos(lon), torch.sin(lat), torch.cos(lat)])[None]
    torch.testing.assert_close(enc(x), expected)
    assert DoubleFourierSphere(5, variant="spherec+").out_features == 30 and enc.out_features == 12


def test_spherec_plus_formula_and_continuity_across_the_date_line():
    """sphereC+ per scale: sin lat, cos lat, sin lon, cos lon, cos lat cos lon, cos lat sin lon (angles times the
    scale's frequency; longitude frequencies whole numbers), and the same features at -180 and +180 degrees."""
    enc = DoubleFourierSphere(4, min_period=10, max_period=360, variant="spherec+").double()
    torch.testing.assert_close(enc.longitude_frequencies, enc.frequencies.round())
    x = torch.tensor([[-75.0, 33.0]], dtype=torch.float64)
    lon, lat = torch.deg2rad(x[0, 0]) * enc.longitude_frequencies, torch.deg2rad(x[0, 1]) * enc.frequencies
    expected = torch.cat([torch.sin(lat), torch.cos(lat), torch.sin(lon), torch.cos(lon),
                          torch.cos(lat) * torch.cos(lon), torch.cos(lat) * torch.sin(lon)])[None]
    torch.testing.assert_close(enc(x), expected)
    meridian = torch.tensor([[-180.0, 12.0], [180.0, 12.0]], dtype=torch.float64)
    for variant in ("grid", "spherec+"):
        out = DoubleFourierSphere(16, variant=variant).double()(meridian)
        torch.testing.assert_close(out[0], out[1], rtol=0, atol=1e-12)


def test_fourier_features_formula_and_saved_frequencies():
    enc = FourierFeatures(2, n_frequencies=5, sigma=3.0, seed=1).double()
    x = torch.rand(4, 2, dtype=torch.float64)
    angles = 2 * math.pi * x @ enc.frequencies.T
    torch.testing.assert_close(enc(x), torch.cat([torch.cos(angles), torch.sin(angles)], -1))
    other = FourierFeatures(2, n_frequencies=5, sigma=3.0, seed=2).double()
    other.load_state_dict(enc.state_dict())  # random frequencies are part of the model, not rebuilt
    torch.testing.assert_close(other(x), enc(x))
    assert 2 < enc.frequencies.std() < 4
    torch.manual_seed(5)
    first = FourierFeatures(2, n_frequencies=5).frequencies
    torch.manual_seed(6)
    assert not torch.equal(FourierFeatures(2, n_frequencies=5).frequencies, first)  # the run's seed draws B


def test_lonlat_is_radians():
    torch.testing.assert_close(LonLatEncoding()(torch.tensor([[180.0, -90.0]])), torch.tensor([[math.pi,
                                                                                              -math.pi / 2]]))


@pytest.mark.parametrize(("build", "x", "message"), [
    (lambda: SphericalHarmonicsEncoding(0), None, r"SphericalHarmonicsEncoding: L=0 must be an int >= 1"),
    (lambda: SphericalHarmonicsEncoding(True), None, r"SphericalHarmonicsEncoding: L=True must be an int >= 1"),
    (lambda: SphericalHarmonicsEncoding(3), torch.tensor([[10.0, 95.0]]),
     r"SphericalHarmonicsEncoding: input latitude 95 is outside \[-90, 90\] degrees \(1 of 1 points\)"),
    (lambda: SphericalHarmonicsEncoding(3), torch.tensor([[-181.0, 0.0], [0.0, 0.0]]),
     r"input longitude -181 is outside \[-180, 180\]"),
    (lambda: SphericalHarmonicsEncoding(3), torch.tensor([[float("nan"), 0.0]]), r"input longitude nan is outside"),
    (lambda: SphericalHarmonicsEncoding(3), torch.zeros(4, 3), r"input must have shape \(\.\.\., 2\), \(longitude, "
                                                                 r"latitude\) in degrees, got \(4, 3\)"),
    (lambda: SphericalHarmonicsEncoding(3), torch.zeros(4, 2, dtype=torch.long), r"dtype must be floating point"),
    (lambda: DoubleFourierSphere(4, variant="theory"), None, r"DoubleFourierSphere: variant='theory' is not one of"),
    (lambda: DoubleFourierSphere(4, min_period=0), None, r"min_period=0 and max_period=360.0 must satisfy"),
    (lambda: DoubleFourierSphere(4), torch.tensor([[0.0, -90.5]]), r"DoubleFourierSphere: input latitude -90.5"),
    (lambda: FourierFeatures(2, sigma=-1.0), None, r"FourierFeatures: sigma=-1.0 must be a positive number"),
    (lambda: FourierFeatures(3), torch.zeros(4, 2), r"FourierFeatures: input must have shape \(\.\.\., 3\)"),
])
def test_bad_arguments_and_coordinates_are_named(build, x, message):
    with pytest.raises((ValueError, TypeError), match=message):
        build()(x)


def test_empty_inputs_and_leading_dims():
    assert SphericalHarmonicsEncoding(4)(torch.zeros(0, 2)).shape == (0, 25)
    assert SphericalHarmonicsEncoding(4)(torch.zeros(3, 5, 2)).shape == (3, 5, 25)


@pytest.mark.parametrize("normalization", ["integral", "component"])
def test_the_fast_inference_path_equals_the_differentiable_one(normalization):
    """Without gradients the harmonics come from the chunked in-place recursion (a transposed view); with them,
    from the differentiable one: the same numbers, any leading shape, chunk boundaries included."""
    from kernelnn.layers.spherical_harmonics import spherical_harmonics_feature_major

    torch.manual_seed(0)
    points = (torch.rand(3, 7, 2, dtype=torch.float64) - 0.5) * torch.tensor([360.0, 180.0], dtype=torch.float64)
    encoding = SphericalHarmonicsEncoding(7, normalization)
    fast = encoding(points)
    slow = encoding(points.clone().requires_grad_())
    assert slow.requires_grad and not fast.requires_grad and fast.shape == (3, 7, 64)
    torch.testing.assert_close(fast, slow.detach(), rtol=0, atol=1e-13)
    c, s1, s2 = (torch.rand(21, dtype=torch.float64) for _ in range(3))
    torch.testing.assert_close(spherical_harmonics_feature_major(5, c, s1, s2, chunk=4),
                               spherical_harmonics_feature_major(5, c, s1, s2, chunk=100))
