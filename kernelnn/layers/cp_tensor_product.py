r"""The CP tensor product of Tensor Decomposition Networks: the Clebsch-Gordan tensor of all chosen paths replaced
by a rank-``R`` CP decomposition, with path-weight sharing.

Stack the 3j symbols of every allowed path :math:`(l_1, l_2) \to l_3` between the terms of the inputs and the
output (each scaled by the constant :math:`\alpha` that e3nn's component / element normalisation gives it) into
one tensor :math:`M` of shape :math:`(I, J, K)`, ``I = sum (2 l_1 + 1)`` over the terms of ``irreps_in1`` and so
on. With one set of multiplicity weights shared by all paths (*path-weight sharing*), the exact product is
:math:`z_{uK} = \sum_{v} W_{uv} \sum_{IJ} M_{IJK}\, x_{uI}\, y_{vJ}` (mode ``"uvu"``). CP replaces :math:`M` by
:math:`\hat M_{IJK} = \sum_{r=1}^R A_{Ir} B_{Jr} C_{Kr}` (fitted once by ALS,
:func:`~kernelnn.o3.cp_decomposition.cp_als`, cached per process), so

.. math::
    z_{uK} = \sum_r C_{Kr}\, (A^\top x_u)_r \sum_v W_{uv} (B^\top y_v)_r,

:math:`O(R (I + J + K))` per channel instead of :math:`O(\#\text{paths} \cdot L^3)`: with :math:`R = O(L^2)` to
:math:`O(L^3)` the cost falls from :math:`O(L^6)` towards :math:`O(L^4)`. The product is equivariant only up to
the CP error: :math:`\|\hat M(D x \otimes D y) - D \hat M(x \otimes y)\| \le 2 \|M - \hat M\|_F \|x\| \|y\|` (``D``
orthogonal, :math:`M` exactly equivariant), and ``cp_error`` is the relative fit error
:math:`\|M - \hat M\|_F / \|M\|_F`, so the bound is :math:`2\, \text{cp\_error}\, \|M\|_F \|x\| \|y\|`; measure
the error itself with :func:`~kernelnn.testing.equivariance_error`. The factors are refitted (seeded, cached) when
a layer is built, not saved in its state dict: a checkpoint loads into a layer of the same irreps and rank.

Modes: ``"uvu"`` (weights ``(C1, C2)``, output multiplicity ``C1``; with ``C2 = 1`` the convolution of a feature
with edge harmonics, TDN's case), ``"uuu"`` (weights ``(C,)``, all multiplicities equal), ``"uvw"`` (weights
``(C1, C2, C_out)``). Every term of one irreps must have the same multiplicity.

``share_path_weights=False`` adds what a single CP can carry without losing its cost: a weight per (channel, term)
of the first input and of the output, i.e. separable path weights :math:`w^{(1)}_{u, l_1} w^{(3)}_{u, l_3}`. Fully
independent weights per path would need one decomposition per path and are not offered.

Source: Lin et al., "Tensor Decomposition Networks for Fast Machine Learning Interatomic Potential Computations"
(NeurIPS 2025); the CP bound is their theorem's first step.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import torch
from torch import nn

from kernelnn.layers.tensor_product import check_input_pair, split_irreps
from kernelnn.o3.cp_decomposition import cp_als
from kernelnn.o3.irreps import Irreps
from kernelnn.o3.wigner import wigner_3j

CP_MODES = ("uvu", "uuu", "uvw")


def _multiplicity(irreps: Irreps, owner: str, argument: str) -> int:
    muls = {mul for mul, _ in irreps}
    if len(muls) != 1 or 0 in muls:
        raise ValueError(f"{owner}: every term of {argument} must have one multiplicity > 0 (channels), got {irreps}")
    return muls.pop()


@functools.cache
def _factors(key: tuple[Any, ...], rank: int, iterations: int, restarts: int,
             seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """ALS factors of the stacked tensor described by ``key`` (computed once per process)."""
    (sizes, blocks) = key
    tensor = torch.zeros(*sizes, dtype=torch.float64)
    for (s1, s2, s3, l1, l2, l3, alpha) in blocks:
        tensor[s1:s1 + 2 * l1 + 1, s2:s2 + 2 * l2 + 1, s3:s3 + 2 * l3 + 1] += wigner_3j(l1, l2, l3) * alpha
    return cp_als(tensor, rank, iterations=iterations, restarts=restarts, seed=seed)


def cp_rank_for(irreps_in1: Any, irreps_in2: Any, irreps_out: Any, tolerance: float = 1e-3, mode: str = "uvu",
                iterations: int = 1500, resolution: float = 1 / 32) -> int:
    """A CP rank whose fit has ``cp_error <= tolerance`` for these irreps, within ``resolution`` (relative) of the
    smallest such rank: doubling from ``(L+1)^2`` until the fit is good enough, then bisection (each fit cached;
    the fit error falls with rank, and rank ``I * J`` is always exact).

    Example
    -------
    >>> cp_rank_for("0e + 1o", "0e + 1o", "0e + 1o + 1e", tolerance=1e-6)
    11
    """
    if not 0 < tolerance < 1:
        raise ValueError(f"cp_rank_for: tolerance={tolerance!r} must be in (0, 1)")

    def good(rank: int) -> bool:
        return CPTensorProduct(irreps_in1, irreps_in2, irreps_out, rank=rank, mode=mode,
                               iterations=iterations).cp_error <= tolerance

    def width(irreps: Any) -> int:  # components per channel
        return sum(ir.dim for _, ir in Irreps(irreps))

    exact = width(irreps_in1) * width(irreps_in2)
    low, high = 0, min(width(irreps_out), exact)
    while not good(high):
        if high == exact:  # an exact rank that ALS did not fit: no smaller answer exists
            return high
        low, high = high, min(2 * high, exact)
    while high - low > max(1, int(high * resolution)):
        middle = (low + high) // 2
        if good(middle):
            high = middle
        else:
            low = middle
    return high


class CPTensorProduct(nn.Module):
    r"""Tensor product of irreps features through a rank-``R`` CP decomposition of the stacked Clebsch-Gordan
    tensor, with path-weight sharing (module docstring).

    Parameters
    ----------
    irreps_in1, irreps_in2, irreps_out : str or Irreps
        One multiplicity per irreps (``"16x0e + 16x1o + 16x2e"``); every allowed path between them is used.
    rank : int
        CP rank ``R``: higher is more exact and slower (``cp_error`` reports the fit).
    mode : {"uvu", "uuu", "uvw"}
    share_path_weights : bool
        One set of weights for all paths (TDN); ``False`` adds separable per-degree weights.
    shared_weights : bool
        ``False``: ``forward`` takes ``weight (..., weight_numel)`` per sample (e.g. from a radial network).
    iterations, restarts, seed : int
        Of the ALS fit (deterministic for a given seed).

    Shapes: ``x1 (..., irreps_in1.dim)``, ``x2 (..., irreps_in2.dim)`` (e3nn's layout; leading dims broadcast)
    ``-> (..., irreps_out.dim)``.

    Example
    -------
    >>> tp = CPTensorProduct("8x0e + 8x1o + 8x2e", "0e + 1o + 2e", "8x0e + 8x1o + 8x2e", rank=40)
    >>> tp(torch.randn(5, 72), torch.randn(5, 9)).shape
    torch.Size([5, 72])
    """

    def __init__(self, irreps_in1: Any, irreps_in2: Any, irreps_out: Any, rank: int, mode: str = "uvu",
                 share_path_weights: bool = True, shared_weights: bool = True, iterations: int = 1500,
                 restarts: int = 1, seed: int = 0) -> None:
        super().__init__()
        name = type(self).__name__
        self.irreps_in1 = Irreps(irreps_in1, "irreps_in1")
        self.irreps_in2 = Irreps(irreps_in2, "irreps_in2")
        self.irreps_out = Irreps(irreps_out, "irreps_out")
        if mode not in CP_MODES:
            raise ValueError(f"{name}: mode={mode!r}; valid: {', '.join(CP_MODES)}")
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
            raise ValueError(f"{name}: rank={rank!r} must be a positive int")
        c1 = _multiplicity(self.irreps_in1, name, "irreps_in1")
        c2 = _multiplicity(self.irreps_in2, name, "irreps_in2")
        c3 = _multiplicity(self.irreps_out, name, "irreps_out")
        if mode == "uvu" and c3 != c1:
            raise ValueError(f"{name}: mode 'uvu' keeps the channels of x1, so irreps_out needs multiplicity {c1}, "
                             f"got {c3}")
        if mode == "uuu" and not c1 == c2 == c3:
            raise ValueError(f"{name}: mode 'uuu' needs one multiplicity everywhere, got {c1}, {c2}, {c3}")
        self.mode, self.rank, self.channels = mode, rank, (c1, c2, c3)
        self.share_path_weights, self.shared_weights = bool(share_path_weights), bool(shared_weights)

        # The paths and their normalisation (e3nn: component irreps, element paths).
        offsets = [[0] for _ in range(3)]
        for k, irreps in enumerate((self.irreps_in1, self.irreps_in2, self.irreps_out)):
            for _, ir in irreps:
                offsets[k].append(offsets[k][-1] + ir.dim)
        paths = [(i1, i2, io) for i1, (_, ir1) in enumerate(self.irreps_in1)
                 for i2, (_, ir2) in enumerate(self.irreps_in2)
                 for io, (_, iro) in enumerate(self.irreps_out) if iro in ir1 * ir2]
        if not paths:
            raise ValueError(f"{name}: no path couples {self.irreps_in1} and {self.irreps_in2} into {self.irreps_out}")
        elements = {"uvu": c2, "uuu": 1, "uvw": c1 * c2}[mode]
        fan_in = [sum(1 for p in paths if p[2] == io) * elements for io in range(len(self.irreps_out))]
        blocks = tuple((offsets[0][i1], offsets[1][i2], offsets[2][io], self.irreps_in1[i1].ir.l,
                        self.irreps_in2[i2].ir.l, self.irreps_out[io].ir.l,
                        math.sqrt(self.irreps_out[io].ir.dim / fan_in[io])) for i1, i2, io in paths)
        self.num_paths = len(paths)
        sizes = (offsets[0][-1], offsets[1][-1], offsets[2][-1])
        self._key = (sizes, blocks)
        a, b, c, error = _factors(self._key, rank, iterations, restarts, seed)
        self.cp_error = error  # relative Frobenius error of the fit: bounds the equivariance error (docstring)
        self._exact = {"factor_a": a, "factor_b": b, "factor_c": c}
        for key, value in self._exact.items():  # a copy: the cached factors are shared by every layer
            self.register_buffer(key, value.to(torch.get_default_dtype(), copy=True), persistent=False)

        shape = {"uvu": (c1, c2), "uuu": (c1,), "uvw": (c1, c2, c3)}[mode]
        self.weight_shape = shape
        self.weight_numel = math.prod(shape)
        if shared_weights:
            self.weight = nn.Parameter(torch.randn(shape))
        else:
            self.register_parameter("weight", None)
        if share_path_weights:
            self.register_parameter("degree_weight_in", None)
            self.register_parameter("degree_weight_out", None)
        else:
            self.degree_weight_in = nn.Parameter(torch.ones(c1, len(self.irreps_in1)))
            self.degree_weight_out = nn.Parameter(torch.ones(c3, len(self.irreps_out)))
        # Which term each stacked component belongs to (for the per-degree weights).
        for label, irreps in (("in", self.irreps_in1), ("out", self.irreps_out)):
            index = torch.repeat_interleave(torch.arange(len(irreps)), torch.tensor([ir.dim for _, ir in irreps]))
            self.register_buffer(f"term_of_{label}", index, persistent=False)

    def _apply(self, fn: Any, recurse: bool = True) -> CPTensorProduct:
        """Convert the factors from their float64 originals, so ``.float().double()`` loses no precision."""
        super()._apply(fn, recurse)
        for name, exact in self._exact.items():
            setattr(self, name, fn(exact))
        return self

    # -- layout ---------------------------------------------------------------------------------------------
    @staticmethod
    def _stack(x: torch.Tensor, irreps: Irreps) -> torch.Tensor:
        """``(z, irreps.dim)`` in e3nn's layout -> ``(z, channels, sum (2l + 1))``."""
        return torch.cat(split_irreps(x, irreps), dim=-1)

    def _unstack(self, y: torch.Tensor) -> torch.Tensor:
        """``(z, channels, sum (2l + 1))`` -> ``(z, irreps_out.dim)`` in e3nn's layout (a split, not slices: a
        slice's backward writes a zero tensor of the whole input, once per slice)."""
        return torch.cat([piece.flatten(1) for piece in y.split([ir.dim for _, ir in self.irreps_out], dim=-1)],
                         dim=-1)

    # -- forward ----------------------------------------------------------------------------------------
    def forward(self, x1: torch.Tensor, x2: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        return self._product(x1, x2, weight, exact=False)

    def forward_exact(self, x1: torch.Tensor, x2: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        """The same layer with the exact stacked tensor :math:`M` in place of its CP decomposition (dense;
        for measuring the CP's error and equivariance against the exact product with the same weights)."""
        return self._product(x1, x2, weight, exact=True)

    def exact_tensor(self) -> torch.Tensor:
        """The stacked, normalised Clebsch-Gordan tensor :math:`M` ``(I, J, K)``, float64."""
        sizes, blocks = self._key
        tensor = torch.zeros(*sizes, dtype=torch.float64)
        for (s1, s2, s3, l1, l2, l3, alpha) in blocks:
            tensor[s1:s1 + 2 * l1 + 1, s2:s2 + 2 * l2 + 1, s3:s3 + 2 * l3 + 1] += wigner_3j(l1, l2, l3) * alpha
        return tensor

    def _product(self, x1: Any, x2: Any, weight: Any, exact: bool) -> torch.Tensor:
        device = x1.device.type if isinstance(x1, torch.Tensor) else "cpu"
        if torch.is_autocast_enabled(device):
            # The CP factors cancel each other to reach the small errors; 16 bits lose that: compute in float32.
            with torch.autocast(device, enabled=False):
                out = self._product(x1.float(), x2.float(), None if weight is None else weight.float(), exact)
            return out.to(torch.get_autocast_dtype(device))
        x1, x2, w, batch = self._check(x1, x2, weight)
        if x1.shape[0] == 0:  # no samples (e.g. a graph without edges)
            return x1.new_zeros(*batch, self.irreps_out.dim)
        a, b = self._stack(x1, self.irreps_in1), self._stack(x2, self.irreps_in2)  # (z, C1, I), (z, C2, J)
        if self.degree_weight_in is not None:
            a = a * self.degree_weight_in[:, self.term_of_in].to(a.dtype)
        per_sample = "" if self.shared_weights else "z"
        if exact:
            m = self.exact_tensor().to(device=a.device, dtype=a.dtype)
            spec = {"uvu": "zui,zvj,ijk,{s}uv->zuk", "uuu": "zui,zuj,ijk,{s}u->zuk",
                    "uvw": "zui,zvj,ijk,{s}uvw->zwk"}[self.mode]
            out = torch.einsum(spec.format(s=per_sample), a, b, m, w)
        else:
            pa = a @ self.factor_a.to(a.dtype)  # (z, C1, R)
            pb = b @ self.factor_b.to(a.dtype)  # (z, C2, R)
            if self.mode == "uvu":
                h = pa * torch.einsum(f"{per_sample}uv,zvr->zur", w, pb)
            elif self.mode == "uuu":
                h = pa * pb * w[..., None]
            else:
                h = torch.einsum(f"zur,zvr,{per_sample}uvw->zwr", pa, pb, w)
            out = h @ self.factor_c.T.to(a.dtype)  # (z, C_out, K)
        if self.degree_weight_out is not None:
            out = out * self.degree_weight_out[:, self.term_of_out].to(out.dtype)
        return self._unstack(out).reshape(*batch, self.irreps_out.dim)

    def _check(self, x1: Any, x2: Any, weight: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                                              tuple[int, ...]]:
        name = type(self).__name__
        batch = check_input_pair(name, x1, x2, self.irreps_in1, self.irreps_in2)
        if self.shared_weights:
            if weight is not None:
                raise ValueError(f"{name}: weight was given, but this product holds its weights (shared_weights=True)")
            w = self.weight
        else:
            if not isinstance(weight, torch.Tensor) or weight.dim() < 1 or weight.shape[-1] != self.weight_numel:
                raise ValueError(f"{name}: forward needs weight of shape (..., {self.weight_numel}) (shared_weights="
                                 f"False), got {tuple(weight.shape) if isinstance(weight, torch.Tensor) else weight!r}")
            try:
                batch = torch.broadcast_shapes(batch, weight.shape[:-1])
            except RuntimeError:
                raise ValueError(f"{name}: the leading dims of weight {tuple(weight.shape[:-1])} do not broadcast with "
                                 f"the inputs' {tuple(batch)}") from None
            w = weight.expand(*batch, self.weight_numel).reshape(-1, *self.weight_shape)
        dtype = torch.promote_types(torch.promote_types(x1.dtype, x2.dtype), w.dtype)
        x1 = x1.to(dtype).expand(*batch, self.irreps_in1.dim).reshape(-1, self.irreps_in1.dim)
        x2 = x2.to(dtype).expand(*batch, self.irreps_in2.dim).reshape(-1, self.irreps_in2.dim)
        return x1, x2, w.to(dtype), tuple(batch)

    def extra_repr(self) -> str:
        return (f"{self.irreps_in1} x {self.irreps_in2} -> {self.irreps_out}, mode={self.mode!r}, rank={self.rank}, "
                f"{self.num_paths} paths, cp_error={self.cp_error:.1e}, share_path_weights={self.share_path_weights}")
