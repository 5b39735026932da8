"""Candidate functions for symbolic KAN edges, each as torch, as sympy, and with a complexity.

An edge is fitted as ``c * f(a * x + b) + d`` for each candidate ``f``; the complexities (pykan's values: 1 for
``x``, 2 for ``x^2``, ``sin``, ``exp``, ..., up to 5) weigh simplicity against fit in :func:`auto_symbolic`.
``"0"`` is the constant edge (``d`` only). Named libraries are subsets; ``auto_symbolic(lib=...)`` takes a name
or a list of function names.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sympy
import torch


@dataclass(frozen=True)
class SymbolicFunction:
    name: str
    torch_fn: Callable[[torch.Tensor], torch.Tensor]
    sympy_fn: Callable[[sympy.Expr], sympy.Expr]
    complexity: int


def _f(name: str, torch_fn, sympy_fn, complexity: int) -> tuple[str, SymbolicFunction]:
    return name, SymbolicFunction(name, torch_fn, sympy_fn, complexity)


FUNCTIONS: dict[str, SymbolicFunction] = dict([
    _f("0", torch.zeros_like, lambda z: sympy.Integer(0), 0),
    _f("x", lambda z: z, lambda z: z, 1),
    _f("x^2", lambda z: z**2, lambda z: z**2, 2),
    _f("x^3", lambda z: z**3, lambda z: z**3, 3),
    _f("x^4", lambda z: z**4, lambda z: z**4, 3),
    _f("x^5", lambda z: z**5, lambda z: z**5, 3),
    _f("1/x", lambda z: 1 / z, lambda z: 1 / z, 2),
    _f("1/x^2", lambda z: z**-2, lambda z: z**-2, 2),
    _f("1/x^3", lambda z: z**-3, lambda z: z**-3, 3),
    _f("sqrt", torch.sqrt, sympy.sqrt, 2),
    _f("x^1.5", lambda z: torch.sqrt(z) ** 3, lambda z: sympy.sqrt(z) ** 3, 4),
    _f("1/sqrt(x)", torch.rsqrt, lambda z: 1 / sympy.sqrt(z), 2),
    _f("exp", torch.exp, sympy.exp, 2),
    _f("log", torch.log, sympy.log, 2),
    _f("abs", torch.abs, sympy.Abs, 3),
    _f("sin", torch.sin, sympy.sin, 2),
    _f("cos", torch.cos, sympy.cos, 2),
    _f("tan", torch.tan, sympy.tan, 3),
    _f("tanh", torch.tanh, sympy.tanh, 3),
    _f("sgn", torch.sign, sympy.sign, 3),
    _f("arcsin", torch.arcsin, sympy.asin, 4),
    _f("arccos", torch.arccos, sympy.acos, 4),
    _f("arctan", torch.arctan, sympy.atan, 4),
    _f("arctanh", torch.arctanh, sympy.atanh, 4),
    _f("gaussian", lambda z: torch.exp(-(z**2)), lambda z: sympy.exp(-(z**2)), 3),
])

LIBRARIES: dict[str, tuple[str, ...]] = {
    "default": tuple(FUNCTIONS),
    # The everyday set: polynomials, exp, log, sin, tanh, sqrt, abs, 1/x.
    "basic": ("0", "x", "x^2", "x^3", "exp", "log", "sin", "tanh", "sqrt", "abs", "1/x"),
    "polynomial": ("0", "x", "x^2", "x^3", "x^4", "x^5"),
    "trigonometric": ("0", "x", "sin", "cos", "tan", "arcsin", "arctan"),
}


def library(lib: str | Sequence[str] | None, owner: str = "auto_symbolic") -> list[SymbolicFunction]:
    """The functions of a named library, or of a list of function names (``None``: ``"default"``)."""
    if lib is None:
        lib = "default"
    if isinstance(lib, str):
        if lib not in LIBRARIES:
            raise ValueError(f"{owner}: lib={lib!r} is not a known library; known: {', '.join(LIBRARIES)} (or a "
                             f"list of function names from: {', '.join(FUNCTIONS)})")
        return [FUNCTIONS[name] for name in LIBRARIES[lib]]
    names = list(lib)
    unknown = [name for name in names if name not in FUNCTIONS]
    if unknown or not names:
        raise ValueError(f"{owner}: lib={names!r} holds unknown function name(s) {unknown}; known functions: "
                         f"{', '.join(FUNCTIONS)} (or a library name: {', '.join(LIBRARIES)})")
    return [FUNCTIONS[name] for name in names]
