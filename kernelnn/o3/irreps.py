r"""Irreducible representations of O(3) in e3nn's notation and memory layout.

An irrep is a degree ``l >= 0`` and a parity ``p = +1`` (even, ``"e"``) or ``-1`` (odd, ``"o"``); it has
``2l + 1`` components. ``Irreps("8x0e + 8x1o + 4x2e")`` lists irreps with multiplicities, and a feature vector
holds them in that order, each multiplicity's ``2l + 1`` components contiguous (``mul``-major), exactly as
``e3nn.o3.Irreps`` lays them out, so tensors pass between kernelnn and e3nn unchanged. ``"1y"`` is the parity
:math:`(-1)^l` of spherical harmonics, as in e3nn.

Under an orthogonal matrix :math:`M = (-1)^k R` (``R`` a rotation) an irrep transforms by :math:`p^k D_l(R)`, with
:math:`D_l` the Wigner matrix of :mod:`kernelnn.o3.wigner` (for ``1o``: :math:`D(M) = M` on ``(x, y, z)``).

Example
-------
>>> irreps = Irreps("2x0e + 1x1o")
>>> irreps.dim, str(irreps), irreps.slices()
(5, '2x0e+1x1o', [slice(0, 2, None), slice(2, 5, None)])
>>> Irrep("1o") * Irrep("1o")
[0e, 1e, 2e]
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, NamedTuple

import torch

_IRREP = re.compile(r"^(\d+)\s*([eoy])$")
_TERM = re.compile(r"^(?:(\d+)\s*x\s*)?(\d+\s*[eoy])$")


class Irrep(tuple):
    """One irreducible representation: degree ``l`` and parity ``p`` (+1 even, -1 odd), a tuple ``(l, p)``.

    Built from ``Irrep("1o")``, ``Irrep(1, -1)``, ``Irrep((1, -1))`` or another irrep (an e3nn ``Irrep`` too).
    ``Irrep("1o") * Irrep("1e")`` lists the irreps of their tensor product, :math:`|l_1 - l_2| \\le l \\le
    l_1 + l_2` with parity :math:`p_1 p_2`.
    """

    def __new__(cls, l: Any, p: Any = None, argument: str = "irrep") -> Irrep:
        if p is None:
            if isinstance(l, Irrep):
                return l
            if isinstance(l, str):
                match = _IRREP.match(l.strip())
                if match is None:
                    raise ValueError(f"Irrep: {argument}={l!r} is not an irrep like '1o' (a degree, then the "
                                     "parity e, o or y)")
                degree = int(match[1])
                return super().__new__(cls, (degree, {"e": 1, "o": -1, "y": (-1) ** degree}[match[2]]))
            if isinstance(l, tuple) and len(l) == 2:
                l, p = l
        if isinstance(l, int) and not isinstance(l, bool) and l >= 0 and p in (1, -1) and not isinstance(p, bool):
            return super().__new__(cls, (int(l), int(p)))
        raise ValueError(f"Irrep: {argument}={l if p is None else (l, p)!r} is not an irrep; give '1o', or (l, p) "
                         "with an integer l >= 0 and p = +1 or -1")

    @classmethod
    def of(cls, value: Any, argument: str = "irrep") -> Irrep:
        """An ``Irrep`` from a string, a ``(l, p)`` pair or an irrep of e3nn; errors name ``argument``."""
        return cls(value, None, argument)

    def __getnewargs__(self) -> tuple[int, int]:  # pickling and copying
        return (self[0], self[1])

    @property
    def l(self) -> int:  # noqa: E743
        return self[0]

    @property
    def p(self) -> int:
        return self[1]

    @property
    def dim(self) -> int:
        return 2 * self.l + 1

    def __mul__(self, other: Any) -> list[Irrep]:  # type: ignore[override]
        other = Irrep.of(other, "other")
        p = self.p * other.p
        return [Irrep(l, p) for l in range(abs(self.l - other.l), self.l + other.l + 1)]

    def __rmul__(self, other: Any) -> Any:  # ``3 * Irrep("1o")`` -> Irreps
        if isinstance(other, int) and not isinstance(other, bool):
            return Irreps([(other, self)])
        return NotImplemented

    def __str__(self) -> str:
        return f"{self.l}{'e' if self.p == 1 else 'o'}"

    __repr__ = __str__


class MulIrrep(NamedTuple):
    """``mul`` copies of one irrep: ``mul * (2l + 1)`` components, ``(mul, 2l + 1)`` in memory."""

    mul: int
    ir: Irrep

    @property
    def dim(self) -> int:
        return self.mul * self.ir.dim

    def __str__(self) -> str:
        return f"{self.mul}x{self.ir}"

    __repr__ = __str__


class Irreps(tuple):
    """A direct sum of irreps with multiplicities, in e3nn's notation and layout (module docstring).

    Parameters
    ----------
    irreps : str, Irreps, e3nn Irreps, Irrep, or iterable of ``(mul, irrep)``
        ``"8x0e + 8x1o + 4x2e"`` (a term without ``x`` has multiplicity 1), or ``[(8, "0e"), (8, (1, -1))]``.

    Example
    -------
    >>> Irreps("8x0e + 8x1o").dim
    32
    >>> Irreps.spherical_harmonics(2)
    1x0e+1x1o+1x2e
    """

    def __new__(cls, irreps: Any = None, argument: str = "irreps") -> Irreps:
        if isinstance(irreps, Irreps):
            return irreps
        return super().__new__(cls, _parse(irreps, argument))

    # -- construction -----------------------------------------------------------------------------------
    @staticmethod
    def spherical_harmonics(lmax: int, p: int = -1) -> Irreps:
        """``1x0e + 1x1o + ... + 1x(lmax)y`` for ``p = -1`` (the harmonics' parity), all even for ``p = +1``."""
        if not isinstance(lmax, int) or lmax < 0:
            raise ValueError(f"Irreps.spherical_harmonics: lmax={lmax!r} must be an integer >= 0")
        return Irreps([(1, (l, p ** l)) for l in range(lmax + 1)])

    # -- sizes and layout -------------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return sum(term.dim for term in self)

    @property
    def num_irreps(self) -> int:
        return sum(term.mul for term in self)

    @property
    def ls(self) -> list[int]:
        """The degree of every irrep, each repeated by its multiplicity."""
        return [term.ir.l for term in self for _ in range(term.mul)]

    @property
    def lmax(self) -> int:
        if not self:
            raise ValueError("Irreps.lmax: the irreps are empty")
        return max(term.ir.l for term in self)

    def slices(self) -> list[slice]:
        """Where each term lies in a feature vector."""
        out, start = [], 0
        for term in self:
            out.append(slice(start, start + term.dim))
            start += term.dim
        return out

    def __getitem__(self, index: Any) -> Any:  # a slice of irreps is irreps, as in e3nn
        item = super().__getitem__(index)
        return Irreps(item) if isinstance(index, slice) else item

    def __contains__(self, ir: Any) -> bool:  # an irrep is in the irreps when some term has it, as in e3nn
        try:
            ir = Irrep.of(ir)
        except ValueError:
            return False
        return any(term.ir == ir for term in self)

    def count(self, ir: Any) -> int:  # type: ignore[override]
        ir = Irrep.of(ir)
        return sum(term.mul for term in self if term.ir == ir)

    def simplify(self) -> Irreps:
        """Merge neighbouring terms of one irrep and drop empty ones (the layout does not change)."""
        out: list[tuple[int, Irrep]] = []
        for mul, ir in self:
            if mul == 0:
                continue
            if out and out[-1][1] == ir:
                out[-1] = (out[-1][0] + mul, ir)
            else:
                out.append((mul, ir))
        return Irreps(out)

    def sort(self) -> tuple[Irreps, tuple[int, ...]]:
        """The terms sorted by ``(l, p)`` (odd first, as e3nn) and ``order``: ``sorted[i] = self[order[i]]``."""
        order = tuple(sorted(range(len(self)), key=lambda i: (self[i].ir.l, self[i].ir.p)))
        return Irreps([self[i] for i in order]), order

    # -- group action -----------------------------------------------------------------------------------
    def D_from_matrix(self, matrix: torch.Tensor) -> torch.Tensor:  # noqa: N802 (e3nn's name)
        """The block-diagonal matrix ``D(M)`` by which features transform under an orthogonal ``3 x 3`` matrix
        (float64, ``(dim, dim)``): ``p^k D_l(R)`` per irrep with ``M = (-1)^k R``."""
        from kernelnn.o3.wigner import wigner_D

        tolerance = 1e-5 if torch.as_tensor(matrix).dtype in (torch.float32, torch.float16, torch.bfloat16) else 1e-8
        matrix = torch.as_tensor(matrix, dtype=torch.float64)
        if matrix.shape != (3, 3) or not torch.allclose(matrix @ matrix.T, torch.eye(3, dtype=torch.float64),
                                                        atol=tolerance):
            raise ValueError(f"Irreps.D_from_matrix: matrix must be an orthogonal 3 x 3 matrix, got {matrix}")
        improper = bool(torch.linalg.det(matrix) < 0)
        rotation = -matrix if improper else matrix
        blocks = []
        for mul, ir in self:
            d = wigner_D(ir.l, rotation) * (ir.p if improper else 1)
            blocks += [d] * mul
        return torch.block_diag(*blocks) if blocks else torch.zeros(0, 0, dtype=torch.float64)

    # -- arithmetic and printing ------------------------------------------------------------------------
    def __add__(self, other: Any) -> Irreps:  # type: ignore[override]
        return Irreps(tuple(self) + tuple(Irreps(other, "other")))

    def __radd__(self, other: Any) -> Irreps:
        return Irreps(tuple(Irreps(other, "other")) + tuple(self))

    def __mul__(self, times: Any) -> Irreps:  # type: ignore[override]
        if not isinstance(times, int) or isinstance(times, bool):
            raise TypeError(f"Irreps: can only repeat by an integer, got {times!r}")
        return Irreps(tuple(self) * times)

    __rmul__ = __mul__

    def __eq__(self, other: Any) -> bool:
        try:
            other = Irreps(other)
        except (TypeError, ValueError):
            return False
        return tuple(self) == tuple(other)

    def __ne__(self, other: Any) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __str__(self) -> str:
        return "+".join(str(term) for term in self)

    __repr__ = __str__


def _parse(irreps: Any, argument: str) -> list[MulIrrep]:
    if irreps is None:
        return []
    if isinstance(irreps, Irrep):
        return [MulIrrep(1, irreps)]
    if isinstance(irreps, str) or type(irreps).__name__ == "Irreps":  # e3nn's Irreps: through its string
        text = str(irreps).strip()
        if not text:
            return []
        terms = []
        for part in text.split("+"):
            match = _TERM.match(part.strip())
            if match is None:
                raise ValueError(f"Irreps: {argument}={text!r}: the term {part.strip()!r} is not like '8x1o' "
                                 "(multiplicity x degree, then the parity e, o or y)")
            terms.append(MulIrrep(int(match[1] or 1), Irrep.of(match[2].replace(" ", ""), argument)))
        return terms
    if isinstance(irreps, Iterable):
        terms = []
        for item in irreps:
            if isinstance(item, MulIrrep) and isinstance(item.mul, int) and item.mul >= 0:
                terms.append(MulIrrep(item.mul, Irrep.of(item.ir, argument)))
                continue
            if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], int) and item[0] >= 0 \
                    and not isinstance(item[0], bool):
                terms.append(MulIrrep(item[0], Irrep.of(item[1], argument)))
                continue
            try:
                terms.append(MulIrrep(1, Irrep.of(item, argument)))
            except ValueError:
                raise ValueError(f"Irreps: {argument} has the entry {item!r}; each entry must be (mul, irrep) with "
                                 "an integer mul >= 0, or an irrep like '1o'") from None
        return terms
    raise TypeError(f"Irreps: {argument} must be a string like '8x0e + 4x1o', Irreps, or a list of (mul, irrep); "
                    f"got {type(irreps).__name__}")
