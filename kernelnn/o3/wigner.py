r"""Wigner 3j symbols and Wigner D matrices in e3nn's real basis, for any degree, exact in float64.

**3j symbols.** The Clebsch-Gordan coefficients :math:`\langle l_1 m_1 l_2 m_2 | l_3 m_3\rangle` of the complex
(Condon-Shortley) basis come from Racah's closed formula, evaluated in exact rational arithmetic (a square root
of a rational times a rational, rounded once). They are carried to the real basis of e3nn's spherical harmonics by
the unitary change of basis :math:`Q_l` below (the one e3nn uses, with its factor :math:`(-i)^l` that makes the
result real), and normalised to unit Frobenius norm, as ``e3nn.o3.wigner_3j`` is:

.. math::
    C_{abc} = \frac{1}{Z}\sum_{m_1 m_2 m_3} Q^{(l_1)}_{m_1 a} Q^{(l_2)}_{m_2 b} \overline{Q^{(l_3)}_{m_3 c}}
    \langle l_1 m_1 l_2 m_2 | l_3 m_3\rangle, \qquad \sum_{abc} C_{abc}^2 = 1,

and :math:`C` is invariant: :math:`C_{abc} = C_{a'b'c'} D^{l_1}_{a'a} D^{l_2}_{b'b} D^{l_3}_{c'c}`.

**D matrices.** :math:`D_1(R) = R` on the components ``(x, y, z)`` of ``1o``; higher degrees follow from the
coupling :math:`(l-1) \otimes 1 \to l`: the columns of :math:`P = \sqrt{2l+1}\, C^{(l-1, 1, l)}` (reshaped to
:math:`(3(2l-1), 2l+1)`) are orthonormal and span the degree-``l`` part of the product, so
:math:`D_l = P^\top (D_{l-1} \otimes D_1) P`: exact to rounding, no angles and no matrix exponentials.
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction

import torch


def _check_degrees(l1: int, l2: int, l3: int) -> None:
    for name, l in (("l1", l1), ("l2", l2), ("l3", l3)):
        if not isinstance(l, int) or isinstance(l, bool) or l < 0:
            raise ValueError(f"wigner_3j: {name}={l!r} must be an integer >= 0")
    if not abs(l1 - l2) <= l3 <= l1 + l2:
        raise ValueError(f"wigner_3j: (l1, l2, l3)=({l1}, {l2}, {l3}) breaks the triangle rule |l1 - l2| <= l3 <= "
                         "l1 + l2: the coupling is zero")


def clebsch_gordan_complex(l1: int, m1: int, l2: int, m2: int, l3: int, m3: int) -> float:
    r""":math:`\langle l_1 m_1 l_2 m_2 | l_3 m_3\rangle` in the Condon-Shortley convention (Racah's formula),
    computed in exact rational arithmetic and rounded once."""
    if m3 != m1 + m2 or abs(m1) > l1 or abs(m2) > l2 or abs(m3) > l3 or not abs(l1 - l2) <= l3 <= l1 + l2:
        return 0.0
    f = math.factorial
    radicand = Fraction((2 * l3 + 1) * f(l3 + l1 - l2) * f(l3 - l1 + l2) * f(l1 + l2 - l3), f(l1 + l2 + l3 + 1))
    radicand *= f(l3 + m3) * f(l3 - m3) * f(l1 - m1) * f(l1 + m1) * f(l2 - m2) * f(l2 + m2)
    total = Fraction(0)
    for k in range(max(0, l2 - l3 - m1, l1 - l3 + m2), min(l1 + l2 - l3, l1 - m1, l2 + m2) + 1):
        term = Fraction(1, f(k) * f(l1 + l2 - l3 - k) * f(l1 - m1 - k) * f(l2 + m2 - k) * f(l3 - l2 + m1 + k)
                        * f(l3 - l1 - m2 + k))
        total += -term if k % 2 else term
    # sqrt(radicand) * total, with the square root taken on the exact square to round once.
    square = radicand * total * total
    value = math.sqrt(square.numerator) / math.sqrt(square.denominator) if square else 0.0
    return math.copysign(value, float(total))


def real_to_complex(l: int) -> torch.Tensor:
    r""":math:`Q_l`, ``(2l+1, 2l+1)`` complex128: complex harmonics (rows, ``m = -l..l``) from e3nn's real ones
    (columns), :math:`Y^{\mathbb C}_m = \sum_a Q_{ma} Y^{\mathbb R}_a`, including e3nn's factor :math:`(-i)^l`."""
    q = torch.zeros(2 * l + 1, 2 * l + 1, dtype=torch.complex128)
    s = 2 ** -0.5
    for m in range(1, l + 1):
        q[l - m, l + m] = s
        q[l - m, l - m] = -1j * s
        q[l + m, l + m] = (-1) ** m * s
        q[l + m, l - m] = 1j * (-1) ** m * s
    q[l, l] = 1
    return q * (-1j) ** l


@functools.cache
def _wigner_3j(l1: int, l2: int, l3: int) -> torch.Tensor:
    cg = torch.zeros(2 * l1 + 1, 2 * l2 + 1, 2 * l3 + 1, dtype=torch.complex128)
    for m1 in range(-l1, l1 + 1):
        for m2 in range(max(-l2, -l3 - m1), min(l2, l3 - m1) + 1):
            cg[l1 + m1, l2 + m2, l3 + m1 + m2] = clebsch_gordan_complex(l1, m1, l2, m2, l3, m1 + m2)
    q1, q2, q3 = real_to_complex(l1), real_to_complex(l2), real_to_complex(l3)
    # One factor at a time (a four-operand einsum without a contraction planner builds an O(l^6) intermediate).
    c = torch.einsum("ia,ijk->ajk", q1, cg)
    c = torch.einsum("jb,ajk->abk", q2, c)
    c = torch.einsum("kc,abk->abc", q3.conj(), c)
    if c.imag.abs().max() > 1e-12:  # the (-i)^l factors make it real; anything else is a bug
        raise AssertionError(f"wigner_3j({l1}, {l2}, {l3}): the real-basis tensor has an imaginary part")
    c = c.real
    c = c / torch.linalg.norm(c)
    c[c.abs() < 1e-15] = 0.0  # exact zeros where the coupling vanishes (rounding of the basis change)
    return c


def wigner_3j(l1: int, l2: int, l3: int, dtype: torch.dtype | None = None,
              device: torch.device | str | None = None) -> torch.Tensor:
    r"""The Wigner 3j symbol :math:`C^{(l_1 l_2 l_3)}` in e3nn's real basis (module docstring):
    ``(2l1+1, 2l2+1, 2l3+1)``, unit Frobenius norm, computed in float64 and cached; equal to
    ``e3nn.o3.wigner_3j`` to rounding.

    Example
    -------
    >>> c = wigner_3j(1, 1, 0)
    >>> torch.allclose(c[:, :, 0], torch.eye(3, dtype=torch.float64) / 3 ** 0.5)
    True
    """
    _check_degrees(l1, l2, l3)
    return _wigner_3j(l1, l2, l3).to(dtype=dtype or torch.float64, device=device, copy=True)


def wigner_D(l: int, rotation: torch.Tensor) -> torch.Tensor:  # noqa: N802 (the standard name)
    r""":math:`D_l(R)`, ``(..., 2l+1, 2l+1)``: how degree-``l`` features in e3nn's real basis transform under the
    rotation matrices ``rotation`` ``(..., 3, 3)`` (``det = +1``), in their dtype:
    :math:`Y_l(R v) = D_l(R)\, Y_l(v)`, :math:`D_l(R_1 R_2) = D_l(R_1) D_l(R_2)`, :math:`D_1(R) = R`.

    Example
    -------
    >>> R = torch.linalg.matrix_exp(torch.tensor([[0., -1, 0], [1, 0, 0], [0, 0, 0]], dtype=torch.float64))
    >>> torch.allclose(wigner_D(1, R), R)
    True
    """
    if not isinstance(l, int) or isinstance(l, bool) or l < 0:
        raise ValueError(f"wigner_D: l={l!r} must be an integer >= 0")
    rotation = torch.as_tensor(rotation)
    if rotation.shape[-2:] != (3, 3):
        raise ValueError(f"wigner_D: rotation must have shape (..., 3, 3), got {tuple(rotation.shape)}")
    batch = rotation.shape[:-2]
    if l == 0:
        return torch.ones(*batch, 1, 1, dtype=rotation.dtype, device=rotation.device)
    d = rotation
    for k in range(2, l + 1):
        p = wigner_3j(k - 1, 1, k, dtype=rotation.dtype, device=rotation.device)
        p = p.reshape(3 * (2 * k - 1), 2 * k + 1) * math.sqrt(2 * k + 1)
        product = torch.einsum("...ab,...cd->...acbd", d, rotation).reshape(*batch, 3 * (2 * k - 1), 3 * (2 * k - 1))
        d = p.T @ product @ p
    return d
