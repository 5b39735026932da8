r"""The Clebsch-Gordan tensor product of irreps, in e3nn's conventions (a drop-in for ``e3nn.o3.TensorProduct``).

Each *instruction* ``(i_in1, i_in2, i_out, mode, has_weight[, path_weight])`` couples term ``i_in1`` of the first
input with term ``i_in2`` of the second into term ``i_out`` of the output through the Wigner 3j symbol
:math:`C^{(l_1 l_2 l_3)}` (:func:`~kernelnn.o3.wigner.wigner_3j`); the parities must multiply (:math:`p_1 p_2 =
p_3`) and the degrees obey the triangle rule. For mode ``"uvw"``

.. math::
    z_{w k} \mathrel{+}= \alpha \sum_{u v i j} W_{u v w}\, C_{i j k}\, x_{u i}\, y_{v j},

and the other modes tie the multiplicity indices: ``"uvu"`` (:math:`W_{uv}`, output ``u``), ``"uvv"``
(:math:`W_{uv}`, output ``v``), ``"uuw"`` (:math:`W_{uw}`), ``"uuu"`` (:math:`W_u`), ``"uvuv"`` (:math:`W_{uv}`,
output ``(u, v)``). The constant :math:`\alpha` is e3nn's: ``irrep_normalization="component"`` gives
:math:`2l_3 + 1` (``"norm"``: :math:`(2l_1+1)(2l_2+1)`, ``"none"``: 1), divided for
``path_normalization="element"`` by the number of elements summed into the output term over all its
instructions (``"path"``: this instruction's count times the number of instructions into the output term), times
``out_var`` and the ``path_weight``, square-rooted; unit-variance inputs and weights then give unit-variance
outputs.

Weights are one flat vector in e3nn's order (instruction by instruction, each path's shape row-major), internal
(``shared_weights=True``, drawn from :math:`\mathcal N(0, 1)` as e3nn does) or given per sample to ``forward``
(``shared_weights=False``: ``weight (..., weight_numel)``, as in convolutions whose weights come from a radial
network). The same weights give e3nn's output to rounding (tested against ``e3nn.o3.TensorProduct``).

Cost: the paths of one pair of input terms share their work: the second input meets all their 3j symbols in one
matrix product, the first input the result in one batched matrix product, and each path then applies only its
weights. All paths of degrees up to ``L`` still cost :math:`O(L^6)`: the price the CP product
(:class:`~kernelnn.layers.cp_tensor_product.CPTensorProduct`) and the Gaunt product avoid.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from torch import nn

from kernelnn.o3.irreps import Irreps
from kernelnn.o3.wigner import wigner_3j

MODES = ("uvw", "uvu", "uvv", "uuw", "uuu", "uvuv")
IRREP_NORMALIZATIONS = ("component", "norm", "none")
PATH_NORMALIZATIONS = ("element", "path", "none")


def split_irreps(x: torch.Tensor, irreps: Irreps) -> list[torch.Tensor]:
    """``x (z, irreps.dim)`` as one ``(z, mul, 2l + 1)`` view per term (e3nn's layout). One ``split``, not a
    slice per term: the backward of a slice writes into a zero tensor of the whole input, once per slice."""
    pieces = x.split([term.dim for term in irreps], dim=-1)
    return [piece.reshape(x.shape[0], mul, ir.dim) for piece, (mul, ir) in zip(pieces, irreps, strict=True)]


def check_input_pair(owner: str, x1: Any, x2: Any, irreps_in1: Irreps, irreps_in2: Irreps) -> torch.Size:
    """The broadcast leading shape of two irreps inputs, or a clear error naming ``owner`` and the argument."""
    for argument, x, irreps in (("x1", x1, irreps_in1), ("x2", x2, irreps_in2)):
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise TypeError(f"{owner}: {argument} must be a floating-point tensor, got "
                            f"{getattr(x, 'dtype', type(x).__name__)}")
        if x.dim() < 1 or x.shape[-1] != irreps.dim:
            raise ValueError(f"{owner}: {argument} has shape {tuple(x.shape)}; its last dimension must be "
                             f"{irreps.dim} ({argument.replace('x', 'irreps_in')} = {irreps})")
    try:
        return torch.broadcast_shapes(x1.shape[:-1], x2.shape[:-1])
    except RuntimeError:
        raise ValueError(f"{owner}: the leading dims of x1 {tuple(x1.shape[:-1])} and x2 {tuple(x2.shape[:-1])} do "
                         "not broadcast") from None


class Instruction(NamedTuple):
    """One path: input terms ``i_in1`` and ``i_in2`` into output term ``i_out``; ``path_shape`` is the shape of
    its weights; ``alpha`` the normalisation constant folded into its 3j symbol."""

    i_in1: int
    i_in2: int
    i_out: int
    connection_mode: str
    has_weight: bool
    path_weight: float
    path_shape: tuple[int, ...]
    alpha: float = 1.0


class TensorProduct(nn.Module):
    r"""Tensor product of two irreps features along given paths (module docstring), in e3nn's conventions.

    Parameters
    ----------
    irreps_in1, irreps_in2, irreps_out : str or Irreps
        ``"8x0e + 8x1o"`` and the like (:class:`~kernelnn.o3.irreps.Irreps`).
    instructions : sequence of tuples
        ``(i_in1, i_in2, i_out, mode, has_weight)`` or with a sixth entry ``path_weight``; ``mode`` in ``uvw``,
        ``uvu``, ``uvv``, ``uuw``, ``uuu``, ``uvuv``.
    irrep_normalization : {"component", "norm", "none"}
    path_normalization : {"element", "path", "none"}
    in1_var, in2_var, out_var : sequence of float, optional
        Variance of each input term and wanted variance of each output term (default 1).
    internal_weights : bool, optional
        Hold the weights as a parameter (default: when ``shared_weights`` and some path has weights).
    shared_weights : bool
        One set of weights for every sample (default); ``False``: ``forward`` takes ``weight`` per sample.

    Shapes: ``x1 (..., irreps_in1.dim)``, ``x2 (..., irreps_in2.dim)`` (leading dims broadcast), ``weight
    (weight_numel,)`` or ``(..., weight_numel)`` when given ``-> (..., irreps_out.dim)``.

    Source: the tensor product of e3nn (Geiger and Smidt, "e3nn: Euclidean Neural Networks", 2022); Thomas et
    al., "Tensor field networks" (2018).

    Example
    -------
    >>> tp = TensorProduct("4x0e + 4x1o", "1x0e + 1x1o", "4x0e + 4x1o",
    ...                    [(0, 0, 0, "uvu", True), (1, 1, 0, "uvu", True), (0, 1, 1, "uvu", True),
    ...                     (1, 0, 1, "uvu", True)])
    >>> tp(torch.randn(10, 16), torch.randn(10, 4)).shape
    torch.Size([10, 16])
    """

    def __init__(self, irreps_in1: Any, irreps_in2: Any, irreps_out: Any, instructions: Sequence[Sequence[Any]],
                 irrep_normalization: str = "component", path_normalization: str = "element",
                 in1_var: Sequence[float] | None = None, in2_var: Sequence[float] | None = None,
                 out_var: Sequence[float] | None = None, internal_weights: bool | None = None,
                 shared_weights: bool = True) -> None:
        super().__init__()
        name = type(self).__name__
        self.irreps_in1 = Irreps(irreps_in1, "irreps_in1")
        self.irreps_in2 = Irreps(irreps_in2, "irreps_in2")
        self.irreps_out = Irreps(irreps_out, "irreps_out")
        if irrep_normalization not in IRREP_NORMALIZATIONS:
            raise ValueError(f"{name}: irrep_normalization={irrep_normalization!r}; valid: "
                             f"{', '.join(IRREP_NORMALIZATIONS)}")
        if path_normalization not in PATH_NORMALIZATIONS:
            raise ValueError(f"{name}: path_normalization={path_normalization!r}; valid: "
                             f"{', '.join(PATH_NORMALIZATIONS)}")
        in1_var = self._variances(in1_var, self.irreps_in1, "in1_var")
        in2_var = self._variances(in2_var, self.irreps_in2, "in2_var")
        out_var = self._variances(out_var, self.irreps_out, "out_var")
        parsed = [self._instruction(k, ins) for k, ins in enumerate(instructions)]
        self.instructions = [ins._replace(alpha=self._alpha(ins, parsed, in1_var, in2_var, out_var,
                                                            irrep_normalization, path_normalization))
                             for ins in parsed]
        if internal_weights is None:
            internal_weights = shared_weights and any(ins.has_weight for ins in self.instructions)
        if internal_weights and not shared_weights:
            raise ValueError(f"{name}: internal_weights=True needs shared_weights=True (internal weights are one "
                             "set for every sample)")
        self.shared_weights, self.internal_weights = bool(shared_weights), bool(internal_weights)
        self.weight_numel = sum(math.prod(ins.path_shape) for ins in self.instructions if ins.has_weight)
        if self.internal_weights and self.weight_numel > 0:
            self.weight = nn.Parameter(torch.randn(self.weight_numel))
        else:
            self.register_parameter("weight", None)
        self._build_groups()

    def _build_groups(self) -> None:
        """Instructions grouped by their pair of input terms: one group contracts both inputs with the 3j symbols
        of all its paths at once (two matrix products), and each path then only applies its weights."""
        groups: dict[tuple[int, int, bool], list[int]] = {}
        for k, ins in enumerate(self.instructions):
            groups.setdefault((ins.i_in1, ins.i_in2, ins.connection_mode.startswith("uu")), []).append(k)
        self._groups = []
        self._exact: dict[str, torch.Tensor] = {}  # float64 CPU originals of the tables
        offsets, offset = [], 0
        for ins in self.instructions:
            offsets.append(offset)
            offset += math.prod(ins.path_shape) if ins.has_weight else 0
        for g, ((i1, i2, diagonal), members) in enumerate(groups.items()):
            l1, l2 = self.irreps_in1[i1].ir.l, self.irreps_in2[i2].ir.l
            blocks, paths, start = [], [], 0
            for k in members:
                ins = self.instructions[k]
                l3 = self.irreps_out[ins.i_out].ir.l
                blocks.append(wigner_3j(l1, l2, l3) * ins.alpha)
                paths.append((k, start, start + 2 * l3 + 1, offsets[k]))
                start += 2 * l3 + 1
            if diagonal:  # (i * j, K): for one matrix product with the outer products x_ui y_uj
                table = torch.cat(blocks, dim=-1).reshape((2 * l1 + 1) * (2 * l2 + 1), -1)
            else:  # (j, i * K): the second input's components first, for one matrix product with it
                table = torch.cat(blocks, dim=-1).permute(1, 0, 2).reshape(2 * l2 + 1, -1)
            self._exact[f"cg_{g}"] = table
            self.register_buffer(f"cg_{g}", table.to(torch.get_default_dtype()), persistent=False)
            self._groups.append((i1, i2, diagonal, 2 * l1 + 1, start, paths))
        self._build_channelwise_plan()

    def _build_channelwise_plan(self) -> None:
        """When every path is "uuu" or "uvu" with weights and all terms of x1 and of the output share one
        multiplicity (channel-wise products, convolutions), the paths of a group apply their weights in one
        permutation and one small matrix product, instead of a slice and an einsum per path."""
        muls_in = {mul for mul, _ in self.irreps_in1}
        muls_out = {mul for mul, _ in self.irreps_out}
        self._channelwise = (bool(self.instructions) and len(muls_in) == 1 and muls_in == muls_out
                             and all(ins.has_weight and ins.connection_mode in ("uuu", "uvu")
                                     for ins in self.instructions)
                             and all(len({self.instructions[k].connection_mode for k, *_ in paths}) == 1
                                     for *_, paths in self._groups))
        if not self._channelwise:
            return
        channels = muls_in.pop()
        # Each group's path weights made contiguous by one permutation of the flat weights, then spread over the
        # components of each path's output by a 0/1 matrix (a matmul: no gathers in the backward pass).
        permutation, self._weight_slices = [], []
        for g, (_, _, _, _, width, paths) in enumerate(self._groups):
            begin = len(permutation)
            spread = torch.zeros(len(paths), width)
            for p, (k, start, stop, offset) in enumerate(paths):
                ins = self.instructions[k]
                permutation.extend(range(offset, offset + math.prod(ins.path_shape)))
                spread[p, start:stop] = 1.0
            self._weight_slices.append((begin, len(permutation), len(paths)))
            self._exact[f"spread_{g}"] = spread.double()
            self.register_buffer(f"spread_{g}", spread, persistent=False)
        self._permute_weights = permutation != list(range(len(permutation)))  # e3nn's usual order needs none
        self.register_buffer("weight_permutation", torch.tensor(permutation, dtype=torch.long), persistent=False)
        self._channels = channels

    def _apply(self, fn: Any, recurse: bool = True) -> TensorProduct:
        """Convert the 3j tables from their float64 originals, so ``.float().double()`` loses no precision."""
        super()._apply(fn, recurse)
        for name, exact in self._exact.items():
            setattr(self, name, fn(exact))
        return self

    # -- construction helpers ---------------------------------------------------------------------------
    def _variances(self, values: Sequence[float] | None, irreps: Irreps, argument: str) -> list[float]:
        if values is None:
            return [1.0] * len(irreps)
        try:
            values = [float(v) for v in values]
        except (TypeError, ValueError):
            raise ValueError(f"{type(self).__name__}: {argument}={values!r} must be numbers") from None
        if any(not v >= 0 for v in values):
            raise ValueError(f"{type(self).__name__}: {argument}={values} must be variances >= 0")
        if len(values) != len(irreps):
            raise ValueError(f"{type(self).__name__}: {argument} has {len(values)} entries; {irreps} has "
                             f"{len(irreps)} terms")
        return values

    def _instruction(self, k: int, ins: Sequence[Any]) -> Instruction:
        name = type(self).__name__
        if not isinstance(ins, (tuple, list)) or len(ins) not in (5, 6):
            raise ValueError(f"{name}: instructions[{k}]={ins!r} must be (i_in1, i_in2, i_out, mode, has_weight"
                             "[, path_weight])")
        i1, i2, io, mode, has_weight = ins[:5]
        if not isinstance(has_weight, bool):
            raise ValueError(f"{name}: instructions[{k}] has has_weight={has_weight!r}; give True or False")
        path_weight = ins[5] if len(ins) == 6 else 1.0
        if isinstance(path_weight, bool) or not isinstance(path_weight, (int, float)) or not path_weight >= 0:
            raise ValueError(f"{name}: instructions[{k}] has path_weight={path_weight!r}; give a number >= 0")
        path_weight = float(path_weight)
        for argument, index, irreps in (("i_in1", i1, self.irreps_in1), ("i_in2", i2, self.irreps_in2),
                                        ("i_out", io, self.irreps_out)):
            if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(irreps):
                raise ValueError(f"{name}: instructions[{k}] has {argument}={index!r}; {irreps} has terms 0.."
                                 f"{len(irreps) - 1}")
        if mode not in MODES:
            raise ValueError(f"{name}: instructions[{k}] has mode {mode!r}; valid: {', '.join(MODES)}")
        if mode in ("uvw", "uuw") and not has_weight:
            raise ValueError(f"{name}: instructions[{k}] mode {mode!r} maps to a new multiplicity index w, so it "
                             "needs has_weight=True")
        (m1, ir1), (m2, ir2), (mo, iro) = self.irreps_in1[i1], self.irreps_in2[i2], self.irreps_out[io]
        if iro not in ir1 * ir2:
            raise ValueError(f"{name}: instructions[{k}] couples {ir1} x {ir2} into {iro}, which their product does "
                             f"not contain (it has {ir1 * ir2}: parity p1*p2, |l1-l2| <= l <= l1+l2)")
        expected = {"uvw": None, "uvu": m1, "uvv": m2, "uuw": None, "uuu": m1, "uvuv": m1 * m2}[mode]
        if mode in ("uuw", "uuu") and m1 != m2:
            raise ValueError(f"{name}: instructions[{k}] mode {mode!r} needs equal multiplicities of {m1}x{ir1} and "
                             f"{m2}x{ir2}")
        if expected is not None and mo != expected:
            raise ValueError(f"{name}: instructions[{k}] mode {mode!r} needs the output term to have multiplicity "
                             f"{expected}, got {mo}x{iro}")
        shape = {"uvw": (m1, m2, mo), "uvu": (m1, m2), "uvv": (m1, m2), "uuw": (m1, mo), "uuu": (m1,),
                 "uvuv": (m1, m2)}[mode]
        return Instruction(i1, i2, io, mode, bool(has_weight), path_weight, shape)

    def _alpha(self, ins: Instruction, everything: list[Instruction], in1_var: list[float], in2_var: list[float],
               out_var: list[float], irrep_normalization: str, path_normalization: str) -> float:
        def elements(i: Instruction) -> int:
            m1, m2 = self.irreps_in1[i.i_in1].mul, self.irreps_in2[i.i_in2].mul
            return {"uvw": m1 * m2, "uvu": m2, "uvv": m1, "uuw": m1, "uuu": 1, "uvuv": 1}[i.connection_mode]

        ir1, ir2, iro = (self.irreps_in1[ins.i_in1].ir, self.irreps_in2[ins.i_in2].ir,
                         self.irreps_out[ins.i_out].ir)
        alpha = {"component": iro.dim, "norm": ir1.dim * ir2.dim, "none": 1}[irrep_normalization]
        siblings = [i for i in everything if i.i_out == ins.i_out]
        if path_normalization == "element":
            x = sum(in1_var[i.i_in1] * in2_var[i.i_in2] * elements(i) for i in siblings)
        elif path_normalization == "path":
            x = in1_var[ins.i_in1] * in2_var[ins.i_in2] * elements(ins) * len(siblings)
        else:
            x = 1.0
        if x > 0:
            alpha /= x
        return math.sqrt(alpha * out_var[ins.i_out] * ins.path_weight)

    # -- forward ----------------------------------------------------------------------------------------
    def forward(self, x1: torch.Tensor, x2: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        device = x1.device.type if isinstance(x1, torch.Tensor) else "cpu"
        if torch.is_autocast_enabled(device):
            # Sums of many products of 3j symbols lose too much in 16 bits: compute in float32, return autocast's.
            with torch.autocast(device, enabled=False):
                out = self.forward(x1.float(), x2.float(), None if weight is None else weight.float())
            return out.to(torch.get_autocast_dtype(device))
        x1, x2, weight, batch = self._check(x1, x2, weight)
        z = x1.shape[0]
        if z == 0:  # no samples (e.g. a graph without edges): nothing to contract
            return x1.new_zeros(*batch, self.irreps_out.dim)
        parts1, parts2 = split_irreps(x1, self.irreps_in1), split_irreps(x2, self.irreps_in2)
        if self._channelwise:
            return self._forward_channelwise(parts1, parts2, weight).reshape(*batch, self.irreps_out.dim)
        outputs: list[torch.Tensor | None] = [None] * len(self.irreps_out)
        sizes = [math.prod(ins.path_shape) if ins.has_weight else 0 for ins in self.instructions]
        path_weights = weight.split(sizes, dim=-1) if weight is not None else [None] * len(sizes)
        for g, (i1, i2, diagonal, d1, width, paths) in enumerate(self._groups):
            a, b = parts1[i1], parts2[i2]
            u, v = a.shape[1], b.shape[1]
            table = getattr(self, f"cg_{g}").to(a.dtype)
            if diagonal:  # "uu" modes: sum_ij x_ui y_uj C_ijK
                y = (a[..., :, None] * b[..., None, :]).reshape(z * u, -1) @ table
                y = y.reshape(z, u, width)
            else:  # sum_j y_vj C_ijK, then sum_i x_ui t_viK for every (u, v) as one batched matrix product
                t = (b.reshape(z * v, -1) @ table).reshape(z, v, d1, width)
                y = torch.bmm(a, t.transpose(1, 2).reshape(z, d1, v * width)).reshape(z, u, v, width)
            for (k, *_), piece in zip(paths, y.split([stop - start for _, start, stop, _ in paths], dim=-1),
                                      strict=True):
                ins = self.instructions[k]
                out = self._apply_weights(ins, piece, path_weights[k])
                outputs[ins.i_out] = out if outputs[ins.i_out] is None else outputs[ins.i_out] + out
        pieces = [o if o is not None else x1.new_zeros(z, term.dim)
                  for o, term in zip(outputs, self.irreps_out, strict=True)]
        out = torch.cat(pieces, dim=-1) if pieces else x1.new_zeros(z, 0)
        return out.reshape(*batch, self.irreps_out.dim)

    def _forward_channelwise(self, parts1: list[torch.Tensor], parts2: list[torch.Tensor],
                             weight: torch.Tensor) -> torch.Tensor:
        z, c = parts1[0].shape[0], self._channels
        if self._permute_weights:
            weight = weight[..., self.weight_permutation]  # each group's path weights contiguous
        lead = weight.shape[:-1]  # () shared, (z,) per sample
        group_weights = weight.split([end - begin for begin, end, _ in self._weight_slices], dim=-1)
        pieces = []
        for g, (i1, i2, diagonal, d1, width, _) in enumerate(self._groups):
            a, b = parts1[i1], parts2[i2]
            v = b.shape[1]
            table = getattr(self, f"cg_{g}").to(a.dtype)
            n_paths = self._weight_slices[g][2]
            w = group_weights[g].reshape(*lead, n_paths, c, 1 if diagonal else v)
            w = w.movedim(-3, -1) @ getattr(self, f"spread_{g}").to(a.dtype)  # (..., c, v, K)
            if diagonal:  # uuu: the outer products x_ui y_uj against the stacked 3j symbols
                y = ((a[..., :, None] * b[..., None, :]).reshape(z * c, -1) @ table).reshape(z, c, width)
                pieces.append(y * w[..., 0, :])
                continue
            t = (b.reshape(z * v, -1) @ table).reshape(z, v, d1, width)
            if v == 1:  # uvu with one multiplicity in x2 (a convolution with edge harmonics)
                pieces.append(torch.bmm(a, t[:, 0]) * w[..., 0, :])
            else:  # uvu: sum over v of x_u (x) y_v with weights (u, v)
                y = torch.bmm(a, t.transpose(1, 2).reshape(z, d1, v * width)).reshape(z, c, v, width)
                pieces.append((y * w).sum(2))
        # Each path's components into its output term (split, never sliced: see split_irreps), summed per term.
        outputs: list[torch.Tensor | None] = [None] * len(self.irreps_out)
        for piece, (*_, paths) in zip(pieces, self._groups, strict=True):
            for (k, *_), part in zip(paths, piece.split([stop - start for _, start, stop, _ in paths], dim=-1),
                                     strict=True):
                i = self.instructions[k].i_out
                outputs[i] = part if outputs[i] is None else outputs[i] + part
        return torch.cat([o.reshape(z, -1) if o is not None else parts1[0].new_zeros(z, term.dim)
                          for o, term in zip(outputs, self.irreps_out, strict=True)], dim=-1)

    def _apply_weights(self, ins: Instruction, y: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
        """Path ``ins`` from its contracted inputs ``y`` (``(z, u, v, k)``, or ``(z, u, k)`` for "uu" modes):
        the weighted sum over multiplicities with the path's own weights, flattened to ``(z, mul_out * k)``."""
        z, mode = y.shape[0], ins.connection_mode
        if not ins.has_weight:
            y = {"uvu": lambda: y.sum(2), "uvv": lambda: y.sum(1), "uuu": lambda: y,
                 "uvuv": lambda: y}[mode]()
            return y.reshape(z, -1)
        if self.shared_weights:
            w, batch = weight.reshape(ins.path_shape), ""
        else:
            w, batch = weight.reshape(z, *ins.path_shape), "z"
        pattern = {"uvw": "zuvk,{b}uvw->zwk", "uvu": "zuvk,{b}uv->zuk", "uvv": "zuvk,{b}uv->zvk",
                   "uuw": "zuk,{b}uw->zwk", "uuu": "zuk,{b}u->zuk", "uvuv": "zuvk,{b}uv->zuvk"}[mode]
        return torch.einsum(pattern.format(b=batch), y, w).reshape(z, -1)

    def _check(self, x1: Any, x2: Any, weight: Any) -> tuple[torch.Tensor, torch.Tensor, Any, tuple[int, ...]]:
        name = type(self).__name__
        batch = check_input_pair(name, x1, x2, self.irreps_in1, self.irreps_in2)
        if self.weight_numel == 0:
            weight = None
        elif self.internal_weights:
            if weight is not None:
                raise ValueError(f"{name}: weight was given, but this product holds internal weights "
                                 "(internal_weights=True)")
            weight = self.weight
        else:
            if not isinstance(weight, torch.Tensor):
                raise ValueError(f"{name}: forward needs weight of shape "
                                 f"{'(' if self.shared_weights else '(..., '}{self.weight_numel},) "
                                 "(this product holds no internal weights)")
            if weight.shape[-1] != self.weight_numel or (self.shared_weights and weight.dim() != 1):
                raise ValueError(f"{name}: weight has shape {tuple(weight.shape)}; expected "
                                 f"{'(' if self.shared_weights else '(..., '}{self.weight_numel},)")
            if not self.shared_weights:
                try:
                    batch = torch.broadcast_shapes(batch, weight.shape[:-1])
                except RuntimeError:
                    raise ValueError(f"{name}: the leading dims of weight {tuple(weight.shape[:-1])} do not broadcast "
                                     f"with the inputs' {tuple(batch)}") from None
                weight = weight.expand(*batch, self.weight_numel).reshape(-1, self.weight_numel)
        dtype = torch.promote_types(x1.dtype, x2.dtype)
        if weight is not None:
            dtype = torch.promote_types(dtype, weight.dtype)
        x1 = x1.to(dtype).expand(*batch, self.irreps_in1.dim).reshape(-1, self.irreps_in1.dim)
        x2 = x2.to(dtype).expand(*batch, self.irreps_in2.dim).reshape(-1, self.irreps_in2.dim)
        if weight is not None:
            weight = weight.to(dtype)
        return x1, x2, weight, tuple(batch)

    def extra_repr(self) -> str:
        return (f"{self.irreps_in1} x {self.irreps_in2} -> {self.irreps_out}, {len(self.instructions)} paths, "
                f"weight_numel={self.weight_numel}, shared_weights={self.shared_weights}")


class FullyConnectedTensorProduct(TensorProduct):
    r"""Every allowed path between every pair of input terms and every output term, mode ``"uvw"`` with
    weights: e3nn's ``FullyConnectedTensorProduct`` (same paths in the same order, so the same weights give the
    same output).

    Example
    -------
    >>> tp = FullyConnectedTensorProduct("2x0e + 2x1o", "0e + 1o", "3x0e + 3x1e")
    >>> tp.weight_numel, tp(torch.randn(5, 8), torch.randn(5, 4)).shape
    (24, torch.Size([5, 12]))
    """

    def __init__(self, irreps_in1: Any, irreps_in2: Any, irreps_out: Any, **kwargs: Any) -> None:
        in1, in2 = Irreps(irreps_in1, "irreps_in1"), Irreps(irreps_in2, "irreps_in2")
        out = Irreps(irreps_out, "irreps_out")
        instructions = [(i1, i2, io, "uvw", True, 1.0)
                        for i1, (_, ir1) in enumerate(in1) for i2, (_, ir2) in enumerate(in2)
                        for io, (_, iro) in enumerate(out) if iro in ir1 * ir2]
        super().__init__(in1, in2, out, instructions, **kwargs)
