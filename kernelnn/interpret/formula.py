r"""The formula of a symbolic KAN (pykan's ``symbolic_formula``): composed, its constants snapped, simplified,
and checked against the network.

The layers' sympy outputs are composed with float constants and expanded (``exp(u + v) -> exp(u) exp(v)``,
polynomials multiplied out), which merges the constants that only matter together (``c_1 a_3``). Each constant is
then replaced by the simplest candidate that keeps the formula within ``tolerance`` (relative L2) of the network on
the check points: ``0``, the nearest integer, the nearest ``p/q`` and ``p pi / q`` with ``q <= 12``. Snapping and
``sympy.simplify`` alternate twice (simplify only once no float is left). A formula that disagrees with the network
by more than ``tolerance`` is never returned.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction

import numpy as np
import sympy
import torch
from torch import nn

from kernelnn.interpret.attribution import edge_layers, samples
from kernelnn.interpret.symbolic_layer import SymbolicKANLinear

_MAX_DENOMINATOR = 12
_SNAP_DISTANCE = 1e-3  # candidates further than this (relative) are not worth a check


def _relative_error(expr: sympy.Expr, variables: Sequence[sympy.Symbol], x: np.ndarray, reference: np.ndarray) -> float:
    try:
        value = sympy.lambdify(variables, expr, modules="numpy")(*x.T)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return float("inf")
    value = np.broadcast_to(np.asarray(value, dtype=np.complex128), reference.shape)
    if not np.isfinite(value).all() or np.abs(value.imag).max() > 1e-12 * (1 + np.abs(reference).max()):
        return float("inf")
    return float(np.linalg.norm(value.real - reference) / max(np.linalg.norm(reference), 1e-300))


def _candidates(value: float) -> list[sympy.Expr]:
    """Simple closed forms near ``value``, simplest first: 0, integers, ``p/q`` and ``p pi / q`` (``q <= 12``)."""
    if not math.isfinite(value) or abs(value) > 1e6:
        return [sympy.Integer(0)]
    found = [sympy.Integer(0), sympy.Integer(round(value))]
    for unit in (sympy.Integer(1), sympy.pi):
        ratio = Fraction(value / float(unit)).limit_denominator(_MAX_DENOMINATOR)
        found.append(sympy.Rational(ratio.numerator, ratio.denominator) * unit)
    unique = []
    for candidate in found:
        close = abs(float(candidate) - value) <= _SNAP_DISTANCE * max(1.0, abs(value))
        if candidate not in unique and (close or candidate == 0):
            unique.append(candidate)
    return unique


def _snap(expr: sympy.Expr, variables, x: np.ndarray, reference: np.ndarray, tolerance: float) -> sympy.Expr:
    for constant in sorted(expr.atoms(sympy.Float), key=lambda f: -abs(float(f))):
        for candidate in _candidates(float(constant)):
            trial = expr.xreplace({constant: candidate})
            if _relative_error(trial, variables, x, reference) <= tolerance:
                expr = trial
                break
    return expr


def symbolic_formula(model: nn.Module, x: torch.Tensor | None = None, variables: Sequence[str] | None = None,
                     tolerance: float = 1e-6, simplify: bool = True) -> sympy.Expr | list[sympy.Expr]:
    """The sympy formula of a symbolic KAN (after :func:`~kernelnn.interpret.auto_symbolic`): one expression,
    or a list for several outputs, in ``variables`` (default ``x_1, x_2, ...``). Checked on ``x`` (default: the
    last input) to agree with the network within ``tolerance`` relative L2 error; raises ``RuntimeError`` if not."""
    layers = edge_layers(model, "symbolic_formula")
    if not all(isinstance(layer, SymbolicKANLinear) for layer in layers):
        raise ValueError("symbolic_formula: every layer must be symbolic; call auto_symbolic first")
    if not tolerance > 0:
        raise ValueError(f"symbolic_formula: tolerance={tolerance!r} must be > 0")
    x = samples(model, x, "symbolic_formula").double()
    n_in = layers[0].in_features
    names = list(variables) if variables is not None else [f"x_{i + 1}" for i in range(n_in)]
    if len(names) != n_in:
        raise ValueError(f"symbolic_formula: variables={names} must name the {n_in} inputs")
    symbols = sympy.symbols(names, real=True)
    with torch.no_grad():
        reference = model(x).reshape(len(x), -1).numpy()
    values = list(symbols)
    for layer in layers:
        values = layer.sympy_outputs(values)
    points = x.numpy()
    formulas = []
    for o, expr in enumerate(values):
        target = reference[:, o]
        expanded = sympy.expand(expr)
        if _relative_error(expanded, symbols, points, target) <= tolerance:
            expr = expanded
        for _ in range(2):
            expr = _snap(expr, symbols, points, target, tolerance)
            # simplify on float constants is slow (its trig and factor passes on inexact polynomials) and
            # gains little, so it runs once every constant is exact.
            if simplify and not expr.atoms(sympy.Float):
                simpler = sympy.simplify(expr)
                if _relative_error(simpler, symbols, points, target) <= tolerance:
                    expr = simpler
        error = _relative_error(expr, symbols, points, target)
        if not error <= tolerance:
            raise RuntimeError(f"symbolic_formula: output {o}'s formula differs from the network by {error:.3g} "
                               f"(relative L2), more than tolerance={tolerance:g}")
        formulas.append(expr)
    return formulas[0] if len(formulas) == 1 else formulas
