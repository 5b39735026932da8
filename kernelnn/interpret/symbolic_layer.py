r"""A KAN layer whose every edge is a formula: ``phi_oi(x) = c_oi f_oi(a_oi x + b_oi) + d_oi``.

:func:`~kernelnn.interpret.auto_symbolic` replaces each B-spline layer of a KAN by one of these, with ``f_oi``
chosen from :mod:`~kernelnn.interpret.symbolic_library`; the affine constants stay trainable, so
:func:`~kernelnn.interpret.fit_symbolic` (or any training) can polish them, and
:func:`~kernelnn.interpret.symbolic_formula` reads the network off as a sympy expression.
"""

from __future__ import annotations

from collections.abc import Sequence

import sympy
import torch
from torch import nn

from kernelnn.interpret.symbolic_library import FUNCTIONS
from kernelnn.layers.input_checks import check_float_tensor

_NAMES = tuple(FUNCTIONS)


class SymbolicKANLinear(nn.Module):
    """Symbolic KAN layer: ``(..., in_features) -> (..., out_features)``, output ``o`` = ``sum_i phi_oi(x_i)``.

    Parameters
    ----------
    functions : sequence of sequences of str
        ``functions[o][i]``: the name of ``f_oi`` (a key of ``FUNCTIONS``).
    affine : tensor ``(out, in, 4)``, optional
        ``(a, b, c, d)`` of every edge (default ``(1, 0, 1, 0)``).

    >>> layer = SymbolicKANLinear([["sin", "x^2"]])
    >>> layer(torch.zeros(3, 2)).shape
    torch.Size([3, 1])
    """

    def __init__(self, functions: Sequence[Sequence[str]], affine: torch.Tensor | None = None) -> None:
        super().__init__()
        rows = [list(row) for row in functions]
        if not rows or not rows[0] or any(len(row) != len(rows[0]) for row in rows):
            raise ValueError("SymbolicKANLinear: functions must be a non-empty (out, in) table of names")
        unknown = sorted({name for row in rows for name in row if name not in FUNCTIONS})
        if unknown:
            raise ValueError(f"SymbolicKANLinear: unknown function(s) {unknown}; known: {', '.join(_NAMES)}")
        self.out_features, self.in_features = len(rows), len(rows[0])
        index = torch.tensor([[_NAMES.index(name) for name in row] for row in rows])
        self.register_buffer("function_index", index)
        if affine is None:
            affine = torch.tensor([1.0, 0.0, 1.0, 0.0]).expand(self.out_features, self.in_features, 4)
        if affine.shape != (self.out_features, self.in_features, 4):
            raise ValueError(f"SymbolicKANLinear: affine must have shape ({self.out_features}, {self.in_features}, "
                             f"4), got {tuple(affine.shape)}")
        self.affine = nn.Parameter(affine.detach().clone())
        # (o, i) -> {name: (a, b, c, d)}: an edge's chosen and runner-up formulas as first fitted, for
        # fit_symbolic's search (not saved: it belongs to one auto_symbolic run)
        self.candidates: dict[tuple[int, int], dict[str, tuple[float, ...]]] = {}

    @torch.no_grad()
    def set_edge(self, output: int, input: int, function: str, affine: Sequence[float]) -> None:
        """Make edge ``input -> output`` the formula ``c function(a x + b) + d``, ``affine = (a, b, c, d)``."""
        if function not in FUNCTIONS:
            raise ValueError(f"SymbolicKANLinear.set_edge: unknown function {function!r}; known: {', '.join(_NAMES)}")
        self.function_index[output, input] = _NAMES.index(function)
        self.affine[output, input] = torch.as_tensor(affine, dtype=self.affine.dtype)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        index = state_dict.get(prefix + "function_index")
        if index is not None and index.numel() and not (0 <= int(index.min()) and int(index.max()) < len(_NAMES)):
            raise ValueError(f"SymbolicKANLinear: the state dict's function_index holds values outside 0..."
                             f"{len(_NAMES) - 1} (the known functions); refusing it")
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def functions(self) -> list[list[str]]:
        return [[_NAMES[int(k)] for k in row] for row in self.function_index]

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}"

    def check_input(self, x: torch.Tensor) -> None:
        check_float_tensor(x, "SymbolicKANLinear")
        if x.dim() < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"SymbolicKANLinear: input must have shape (..., {self.in_features}), got "
                             f"{tuple(x.shape)}")

    def edge_values(self, x: torch.Tensor) -> torch.Tensor:
        """``phi_oi(x_i)`` of every edge: ``(..., in) -> (N, out, in)``."""
        self.check_input(x)
        flat = x.reshape(-1, self.in_features)
        affine = self.affine.to(flat.dtype)
        values = flat.new_zeros(len(flat), self.out_features, self.in_features)
        # One pass per function used, over its edges only (other functions may be undefined there).
        for k in self.function_index.unique().tolist():
            o, i = (self.function_index == k).nonzero(as_tuple=True)
            a, b, c, d = affine[o, i].unbind(-1)
            value = c * FUNCTIONS[_NAMES[k]].torch_fn(a * flat[:, i] + b) + d  # (N, edges)
            values = values.index_put((torch.arange(len(flat), device=flat.device)[:, None], o, i), value)
        return values

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        return self.edge_values(x).sum(-1).reshape(*lead, self.out_features)

    def sympy_outputs(self, inputs: Sequence[sympy.Expr]) -> list[sympy.Expr]:
        """The outputs as sympy expressions of ``inputs`` (one per input), constants as floats."""
        affine = self.affine.detach().double().tolist()
        outputs = []
        for o, row in enumerate(self.functions()):
            terms = []
            for i, name in enumerate(row):
                a, b, c, d = (sympy.Float(v, 17) for v in affine[o][i])
                terms.append(c * FUNCTIONS[name].sympy_fn(a * inputs[i] + b) + d)
            outputs.append(sympy.Add(*terms))
        return outputs
