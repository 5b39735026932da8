"""Wigner 3j symbols and D matrices: invariance, orthogonality, harmonics, high degrees, and e3nn's values."""

import math

import pytest
import torch

from kernelnn.layers.spherical_harmonics import spherical_harmonics
from kernelnn.o3 import clebsch_gordan_complex, wigner_3j, wigner_D
from kernelnn.testing import random_rotation

TRIPLES = [(l1, l2, l3) for l1 in range(5) for l2 in range(5) for l3 in range(abs(l1 - l2), l1 + l2 + 1)]


@pytest.mark.parametrize("l", [0, 1, 2, 5, 10])
def test_D_moves_spherical_harmonics(l):
    r = random_rotation(torch.Generator().manual_seed(l))
    v = torch.randn(20, 3, dtype=torch.float64)
    y = spherical_harmonics(l, v)[..., l * l:]
    torch.testing.assert_close(spherical_harmonics(l, v @ r.T)[..., l * l:], y @ wigner_D(l, r).T)


def test_D_is_a_homomorphism_and_batches():
    a, b = random_rotation(), random_rotation()
    for l in (1, 3, 7):
        torch.testing.assert_close(wigner_D(l, a @ b), wigner_D(l, a) @ wigner_D(l, b))
        torch.testing.assert_close(wigner_D(l, a.T), wigner_D(l, a).T)
    torch.testing.assert_close(wigner_D(1, a), a)
    batch = torch.stack([a, b]).expand(3, 2, 3, 3)
    assert wigner_D(4, batch).shape == (3, 2, 9, 9)
    torch.testing.assert_close(wigner_D(4, batch)[2, 1], wigner_D(4, b))
    assert wigner_D(2, a.float()).dtype == torch.float32


@pytest.mark.parametrize("triple", TRIPLES + [(6, 7, 9), (10, 10, 20), (12, 5, 9)])
def test_3j_is_invariant_and_normalised(triple):
    l1, l2, l3 = triple
    c = wigner_3j(l1, l2, l3)
    r = random_rotation(torch.Generator().manual_seed(sum(triple)))
    rotated = torch.einsum("abc,ai,bj,ck->ijk", c, wigner_D(l1, r), wigner_D(l2, r), wigner_D(l3, r))
    torch.testing.assert_close(rotated, c, atol=1e-13, rtol=0)
    assert math.isclose(float(c.square().sum()), 1.0, rel_tol=1e-14)


def test_3j_of_one_pair_are_orthogonal_couplings():
    l1, l2 = 3, 2
    blocks = torch.cat([wigner_3j(l1, l2, l3) * math.sqrt(2 * l3 + 1) for l3 in range(1, 6)], -1)
    q = blocks.reshape((2 * l1 + 1) * (2 * l2 + 1), -1)
    torch.testing.assert_close(q.T @ q, torch.eye(q.shape[1], dtype=torch.float64))  # a change of basis
    torch.testing.assert_close(q @ q.T, torch.eye(q.shape[0], dtype=torch.float64))


def test_known_values():
    torch.testing.assert_close(wigner_3j(0, 2, 2)[0], torch.eye(5, dtype=torch.float64) / math.sqrt(5))
    # Textbook Clebsch-Gordan coefficients: <1 1 1 -1 | 0 0> = 1/sqrt(3), <1/2 ...> aside, <1 0 1 0 | 2 0> = sqrt(2/3)
    assert math.isclose(clebsch_gordan_complex(1, 1, 1, -1, 0, 0), 1 / math.sqrt(3))
    assert math.isclose(clebsch_gordan_complex(1, 0, 1, 0, 2, 0), math.sqrt(2 / 3))
    assert math.isclose(clebsch_gordan_complex(1, 0, 1, 0, 1, 0), 0.0, abs_tol=1e-15)
    assert clebsch_gordan_complex(1, 1, 1, 1, 1, 1) == 0.0  # m3 != m1 + m2


def test_3j_match_e3nn():
    o3 = pytest.importorskip("e3nn.o3")
    for l1, l2, l3 in TRIPLES + [(5, 6, 7), (6, 6, 12)]:
        expected = o3.wigner_3j(l1, l2, l3, dtype=torch.float64)
        torch.testing.assert_close(wigner_3j(l1, l2, l3), expected, atol=1e-12, rtol=0)


@pytest.mark.parametrize("args, message", [((1, 1, 3), "triangle rule"), ((-1, 1, 1), "l1=-1"),
                                           ((1, 1.0, 1), "l2=1.0")])
def test_bad_degrees(args, message):
    with pytest.raises(ValueError, match=message):
        wigner_3j(*args)


def test_bad_D_arguments():
    with pytest.raises(ValueError, match="rotation must have shape"):
        wigner_D(2, torch.eye(2))
    with pytest.raises(ValueError, match="l=-1"):
        wigner_D(-1, torch.eye(3))
