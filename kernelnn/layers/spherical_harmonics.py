r"""Real spherical harmonics in e3nn's convention, for any degree.

Layout and convention (those of ``e3nn.o3.spherical_harmonics``, checked against it up to its cap, l = 12):
features have last dimension :math:`(L+1)^2`, index ``l*l + (m + l)`` for ``m = -l..l``; the polar axis is
:math:`+y`, the azimuth :math:`\varphi = \operatorname{atan2}(x, z)`; with ``normalization="integral"`` they are
the orthonormal real harmonics without the Condon-Shortley phase,

.. math::
    Y_{l0} = \bar P_l^0(\cos\theta), \quad
    Y_{lm} = \sqrt2\, \bar P_l^{m}(\cos\theta) \cos(m\varphi), \quad
    Y_{l,-m} = \sqrt2\, \bar P_l^{m}(\cos\theta) \sin(m\varphi) \quad (m > 0),

with :math:`\bar P_l^m = \sqrt{\tfrac{2l+1}{4\pi}\tfrac{(l-m)!}{(l+m)!}} P_l^m`. ``normalization="component"``
multiplies by :math:`\sqrt{4\pi}` (each degree then has squared norm :math:`2l+1` on unit vectors).

The associated Legendre functions come from the standard stable three-term recursion on
:math:`\bar P_l^m / \sin^m\theta` (a polynomial in :math:`\cos\theta`), and :math:`\sin^m\theta\, e^{im\varphi} =
(z + i x)^m` for unit vectors, so there is no division at the poles and everything is differentiable.
"""

from __future__ import annotations

import math

import torch

NORMALIZATIONS = ("integral", "component")


def sh_dim(L: int) -> int:
    return (L + 1) ** 2


def degrees_of(L: int) -> torch.Tensor:
    """Degree of each coefficient in e3nn's layout: ``l`` repeated ``2l + 1`` times, ``((L+1)^2,)``."""
    return torch.repeat_interleave(torch.arange(L + 1), 2 * torch.arange(L + 1) + 1)


def degree_of_dim(n: int, owner: str, argument: str) -> int:
    """``L`` with ``(L + 1)^2 == n``; a clear error when ``n`` is not such a square."""
    L = math.isqrt(n) - 1
    if n < 1 or (L + 1) ** 2 != n:
        raise ValueError(f"{owner}: {argument} has last dimension {n}, which is not (L+1)^2 for an integer L >= 0 "
                         "(real spherical-harmonic coefficients in e3nn's layout)")
    return L


def _legendre_over_sin_powers(L: int, c: torch.Tensor) -> list[list[torch.Tensor]]:
    r""":math:`Q_l^m = \bar P_l^m(c) / \sin^m\theta` for ``0 <= m <= l <= L`` as ``Q[m][l - m]``."""
    one = torch.ones_like(c)
    q: list[list[torch.Tensor]] = []
    diagonal = one * math.sqrt(1 / (4 * math.pi))
    for m in range(L + 1):
        if m > 0:
            diagonal = diagonal * math.sqrt((2 * m + 1) / (2 * m))
        column = [diagonal]
        if m + 1 <= L:
            column.append(math.sqrt(2 * m + 3) * c * diagonal)
        for l in range(m + 2, L + 1):
            a = math.sqrt((4 * l * l - 1) / (l * l - m * m))
            b = math.sqrt(((l - 1) ** 2 - m * m) / (4 * (l - 1) ** 2 - 1))
            column.append(a * (c * column[-1] - b * column[-2]))
        q.append(column)
    return q


def spherical_harmonics_from_parts(L: int, cos_theta: torch.Tensor, sin_cos: torch.Tensor,
                                   sin_sin: torch.Tensor, normalization: str = "integral") -> torch.Tensor:
    r"""Real harmonics up to ``L`` from :math:`\cos\theta` and the two parts of
    :math:`\sin\theta\, e^{i\varphi}` (``sin_cos`` = :math:`\sin\theta\cos\varphi`, ``sin_sin`` =
    :math:`\sin\theta\sin\varphi`): ``(..., (L+1)^2)``.

    :math:`\sin\theta` may be negative: that continues each harmonic to :math:`\theta \in (\pi, 2\pi)` as the
    trigonometric polynomial in :math:`\theta` that it is (used by the 2-D Fourier route of the Gaunt product).
    """
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"spherical_harmonics: normalization={normalization!r}; valid: {', '.join(NORMALIZATIONS)}")
    q = _legendre_over_sin_powers(L, cos_theta)
    # (sin e^{i phi})^m = re_m + i im_m, by repeated complex multiplication.
    re, im = [torch.ones_like(cos_theta)], [torch.zeros_like(cos_theta)]
    for _ in range(L):
        re, im = re + [re[-1] * sin_cos - im[-1] * sin_sin], im + [re[-1] * sin_sin + im[-1] * sin_cos]
    root2 = math.sqrt(2)
    out = []
    for l in range(L + 1):
        negative = [root2 * q[m][l - m] * im[m] for m in range(l, 0, -1)]
        positive = [root2 * q[m][l - m] * re[m] for m in range(1, l + 1)]
        out += [*negative, q[0][l], *positive]
    y = torch.stack(out, -1)
    return y * math.sqrt(4 * math.pi) if normalization == "component" else y


def _recursion_coefficients(L: int, dtype: torch.dtype) -> tuple[list[float], dict[int, tuple]]:
    """The diagonal ``Q_m^m`` and, per degree ``l >= 2``, the column vectors ``a_lm`` and ``a_lm b_lm`` over
    ``m = 0 .. l - 2`` of the recursion in :func:`_legendre_over_sin_powers`."""
    diagonal = [math.sqrt(1 / (4 * math.pi))]
    for m in range(1, L + 1):
        diagonal.append(diagonal[-1] * math.sqrt((2 * m + 1) / (2 * m)))
    steps = {}
    for l in range(2, L + 1):
        m = torch.arange(l - 1, dtype=torch.float64)
        a = torch.sqrt((4 * l * l - 1) / (l * l - m * m))
        b = torch.sqrt(((l - 1) ** 2 - m * m) / (4 * (l - 1) ** 2 - 1))
        steps[l] = (a.to(dtype)[:, None], (a * b).to(dtype)[:, None])
    return diagonal, steps


@torch.no_grad()
def spherical_harmonics_feature_major(L: int, cos_theta: torch.Tensor, sin_cos: torch.Tensor, sin_sin: torch.Tensor,
                                      normalization: str = "integral", chunk: int | None = None) -> torch.Tensor:
    """:func:`spherical_harmonics_from_parts` of flat ``(N,)`` inputs as a ``((L+1)^2, N)`` tensor, without
    gradients, for many points: the recursion runs over chunks of ``chunk`` points in reused buffers (each
    operation vectorised over the orders ``m``) and writes each harmonic's row in place, so memory traffic is about
    one write of the output. ``.T`` gives the usual ``(N, (L+1)^2)`` layout as a view. ``chunk``: 2^17 points on
    the CPU (at L = 20 and 10^6 points, 2 threads: 0.88 s against 1.2 s with 2^13, whose many small operations
    cost more than the buffers' cache misses), 2^20 elsewhere (fewer kernel launches)."""
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"spherical_harmonics: normalization={normalization!r}; valid: {', '.join(NORMALIZATIONS)}")
    n_points, dtype, device = cos_theta.numel(), cos_theta.dtype, cos_theta.device
    chunk = chunk or (2**17 if device.type == "cpu" else 2**20)
    out = torch.empty((L + 1) ** 2, n_points, dtype=dtype, device=device)
    diagonal, steps = _recursion_coefficients(L, dtype)
    steps = {l: (a.to(device), ab.to(device)) for l, (a, ab) in steps.items()}
    root2 = math.sqrt(2)
    scale = math.sqrt(4 * math.pi) if normalization == "component" else 1.0
    q_a, q_b, re, im, tmp = (torch.empty(L + 1, min(chunk, max(n_points, 1)), dtype=dtype, device=device)
                             for _ in range(5))
    for start in range(0, n_points, chunk):
        n = min(chunk, n_points - start)
        rows = slice(start, start + n)
        c, sc, ss = cos_theta[rows], sin_cos[rows], sin_sin[rows]
        y, r, i, t = out[:, rows], re[:, :n], im[:, :n], tmp[:, :n]
        r[0].fill_(root2)  # sqrt(2) (sin e^{i phi})^m: the factor of every m != 0 harmonic
        i[0].fill_(0.0)
        for m in range(1, L + 1):
            torch.mul(r[m - 1], sc, out=r[m]).addcmul_(i[m - 1], ss, value=-1)
            torch.mul(r[m - 1], ss, out=i[m]).addcmul_(i[m - 1], sc)
        older, old = q_a[:, :n], q_b[:, :n]  # rows m of Q_{l-2}, Q_{l-1}
        for l in range(L + 1):
            q = older  # Q_l overwrites Q_{l-2}, row by row after reading it
            if l >= 2:
                a, ab = steps[l]
                torch.mul(old[: l - 1], c, out=t[: l - 1]).mul_(a)
                q[: l - 1].mul_(ab).neg_().add_(t[: l - 1])
            if l >= 1:
                torch.mul(c, math.sqrt(2 * l + 1) * diagonal[l - 1], out=q[l - 1])
            q[l].fill_(diagonal[l])
            first = l * l
            if l:
                torch.mul(q[1: l + 1], i[1: l + 1], out=t[:l])
                y[first: first + l].copy_(t[:l].flip(0))  # m = -l .. -1
                torch.mul(q[1: l + 1], r[1: l + 1], out=y[first + l + 1: first + 2 * l + 1])
            y[first + l].copy_(q[0])
            older, old = old, q
    return out.mul_(scale) if scale != 1.0 else out


def spherical_harmonics(L: int, vectors: torch.Tensor, normalization: str = "integral") -> torch.Tensor:
    """Real spherical harmonics up to degree ``L`` of the directions of ``vectors`` ``(..., 3)`` (normalised
    here; zero vectors are not allowed): ``(..., (L+1)^2)``, e3nn's layout and convention (module docstring)."""
    if isinstance(L, bool) or not isinstance(L, int) or L < 0:
        raise ValueError(f"spherical_harmonics: L={L!r} must be an int >= 0")
    if vectors.shape[-1:] != (3,):
        raise ValueError(f"spherical_harmonics: vectors must have shape (..., 3), got {tuple(vectors.shape)}")
    unit = vectors / vectors.norm(dim=-1, keepdim=True)
    x, y, z = unit.unbind(-1)
    return spherical_harmonics_from_parts(L, y, z, x, normalization)


def spherical_harmonics_on_angles(L: int, theta: torch.Tensor, phi: torch.Tensor,
                                  normalization: str = "integral") -> torch.Tensor:
    r"""Harmonics at polar angle :math:`\theta` (from :math:`+y`) and azimuth :math:`\varphi`
    (:math:`\operatorname{atan2}(x, z)`), broadcast together: ``(..., (L+1)^2)``. :math:`\theta` outside
    :math:`[0, \pi]` continues the harmonics periodically (see :func:`spherical_harmonics_from_parts`)."""
    theta, phi = torch.broadcast_tensors(theta, phi)
    s = torch.sin(theta)
    return spherical_harmonics_from_parts(L, torch.cos(theta), s * torch.cos(phi), s * torch.sin(phi),
                                          normalization)
