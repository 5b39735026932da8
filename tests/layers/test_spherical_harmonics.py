"""Real spherical harmonics in e3nn's convention for any degree."""

import math

import numpy as np
import pytest
import torch
from scipy.special import lpmv

from kernelnn.layers.spherical_harmonics import degree_of_dim, spherical_harmonics, spherical_harmonics_on_angles


def scipy_real_harmonics(L: int, vectors: np.ndarray) -> np.ndarray:
    """The convention written out with scipy's associated Legendre functions (which carry the Condon-Shortley
    phase, removed here): polar axis +y, azimuth atan2(x, z), orthonormal."""
    unit = vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)
    cos_theta, phi = unit[:, 1], np.arctan2(unit[:, 0], unit[:, 2])
    columns = []
    for l in range(L + 1):
        for m in range(-l, l + 1):
            a = abs(m)
            norm = math.sqrt((2 * l + 1) / (4 * math.pi) * math.factorial(l - a) / math.factorial(l + a))
            legendre = (-1) ** a * lpmv(a, l, cos_theta) * norm
            trig = 1.0 if m == 0 else math.sqrt(2) * (np.cos(a * phi) if m > 0 else np.sin(a * phi))
            columns.append(legendre * trig)
    return np.stack(columns, -1)


def test_matches_the_convention_written_with_scipy_up_to_degree_20():
    vectors = torch.randn(40, 3, dtype=torch.float64)
    ours = spherical_harmonics(20, vectors).numpy()
    np.testing.assert_allclose(ours, scipy_real_harmonics(20, vectors.numpy()), rtol=0, atol=1e-11)


@pytest.mark.parametrize("normalization", ["integral", "component"])
def test_matches_e3nn(normalization):
    o3 = pytest.importorskip("e3nn.o3")
    vectors = torch.randn(50, 3, dtype=torch.float64)
    expected = o3.spherical_harmonics(list(range(13)), vectors, normalize=True, normalization=normalization)
    torch.testing.assert_close(spherical_harmonics(12, vectors, normalization), expected, rtol=0, atol=1e-12)


def test_poles_angles_and_norms():
    poles = torch.tensor([[0.0, 1.0, 0.0], [0.0, -2.0, 0.0]], dtype=torch.float64)
    y = spherical_harmonics(6, poles)
    assert torch.isfinite(y).all()
    m_zero = torch.tensor([l * l + l for l in range(7)])
    others = torch.ones(49, dtype=torch.bool)
    others[m_zero] = False
    assert y[:, others].abs().max() < 1e-15  # only m = 0 survives on the polar axis
    vectors = torch.randn(30, 3, dtype=torch.float64)
    unit = vectors / vectors.norm(dim=-1, keepdim=True)
    by_angles = spherical_harmonics_on_angles(6, torch.arccos(unit[:, 1]), torch.atan2(unit[:, 0], unit[:, 2]))
    torch.testing.assert_close(by_angles, spherical_harmonics(6, vectors))
    component = spherical_harmonics(5, vectors, "component")
    norms = torch.stack([component[:, l * l:(l + 1) ** 2].pow(2).sum(-1) for l in range(6)], -1)
    torch.testing.assert_close(norms, (2 * torch.arange(6, dtype=torch.float64) + 1).expand(30, 6))


def test_gradients_are_finite_and_errors_are_clear():
    vectors = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: spherical_harmonics(4, v), (vectors,))
    with pytest.raises(ValueError, match=r"vectors must have shape \(..., 3\)"):
        spherical_harmonics(2, torch.randn(4, 2))
    with pytest.raises(ValueError, match="L=-1 must be an int >= 0"):
        spherical_harmonics(-1, torch.randn(4, 3))
    with pytest.raises(ValueError, match="normalization='norm'"):
        spherical_harmonics(2, torch.randn(4, 3), "norm")
    with pytest.raises(ValueError, match="last dimension 8, which is not"):
        degree_of_dim(8, "f", "x")
