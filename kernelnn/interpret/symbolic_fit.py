r"""Fitting KAN edges with formulas: one edge (:func:`fit_affine`), a whole KAN (:func:`auto_symbolic`), and the
polish of all constants together (:func:`fit_symbolic`).

An edge's samples ``(x, y)`` are fitted as ``y ~ c f(a x + b) + d`` for each candidate ``f`` (pykan's method):
``(a, b)`` by a grid search that zooms in ``iterations`` times, scoring each pair by the ``R^2`` of the best
``(c, d)`` (a linear least-squares fit, so only ``a, b`` are searched), then all four polished by
Levenberg-Marquardt in float64. Pairs where ``f`` is undefined or nearly constant on the samples are rejected
(pykan instead sets ``R^2 = 0`` there and divides by ``var + 1e-4``, which favours wide functions).
:func:`auto_symbolic` picks per edge the candidate with the smallest
``w * complexity + (1 - w) * log2(1 + 1e-5 - R^2)`` (pykan's rule, ``w = weight_simple``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from kernelnn.interpret.attribution import edge_layers, layer_inputs, samples
from kernelnn.interpret.symbolic_layer import SymbolicKANLinear
from kernelnn.interpret.symbolic_library import FUNCTIONS, SymbolicFunction, library

MIN_VARIATION = 0.1


def _r2(f: torch.Tensor, y: torch.Tensor, min_variation: float = MIN_VARIATION) -> torch.Tensor:
    """``R^2`` of the best ``c f + d`` for ``y``, over the last dim; ``-inf`` where ``f`` is invalid or nearly flat.

    Nearly flat: ``f`` varies by less than ``min_variation`` of its magnitude on the samples. Such fits use only
    a Taylor term of ``f`` (``c cos(a x)`` with tiny ``a`` and huge ``c`` is a parabola), so they say nothing
    about ``f`` and their huge constants cancel in the formula.
    """
    f_centred = f - f.mean(-1, keepdim=True)
    y_centred = y - y.mean()
    var_f = (f_centred**2).sum(-1)
    r2 = (f_centred * y_centred).sum(-1) ** 2 / (var_f * (y_centred**2).sum()).clamp_min(1e-300)
    flat = f_centred.abs().amax(-1) <= min_variation * f.abs().amax(-1)
    invalid = ~torch.isfinite(f).all(-1) | flat | ~torch.isfinite(r2)
    return r2.masked_fill(invalid, -math.inf)


def _linear(f: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Least-squares ``(c, d)`` of ``y ~ c f + d``."""
    design = torch.stack([f, torch.ones_like(f)], dim=1)
    c, d = torch.linalg.lstsq(design, y[:, None]).solution.flatten().tolist()
    return c, d


def levenberg_marquardt(residual: Callable[[torch.Tensor], torch.Tensor], start: torch.Tensor,
                        steps: int = 100) -> torch.Tensor:
    """Minimise ``|residual(v)|^2`` from ``start`` by Levenberg-Marquardt (float64, forward-mode Jacobian).

    Steps that do not lower the loss, or make it non-finite (``exp`` of a trial point can overflow, which sends
    L-BFGS's line search to NaN), are refused and the damping raised, so the result is never worse than ``start``.
    """
    v = start.detach().double().clone()
    r = residual(v)
    loss = r @ r if torch.isfinite(r).all() else torch.tensor(math.inf, dtype=torch.float64)
    if not torch.isfinite(loss):
        return v
    damping = 1e-3
    for _ in range(steps):
        jacobian = torch.func.jacfwd(residual)(v)
        if not torch.isfinite(jacobian).all():
            break
        normal, gradient = jacobian.T @ jacobian, jacobian.T @ r
        scale = normal.diagonal() + 1e-9 * normal.diagonal().max().clamp_min(1e-300)
        while damping < 1e12:
            step = torch.linalg.lstsq(normal + damping * torch.diag(scale), -gradient[:, None]).solution.flatten()
            r_new = residual(v + step)
            loss_new = r_new @ r_new
            if torch.isfinite(loss_new) and loss_new < loss:
                break
            damping *= 4
        else:
            break  # no step lowers the loss: a minimum
        converged = loss - loss_new <= 1e-14 * loss
        v, r, loss, damping = v + step, r_new, loss_new, max(damping / 3, 1e-12)
        if converged or loss == 0:
            break
    return v


def _polish(x: torch.Tensor, y: torch.Tensor, fn, params: list[float], steps: int = 30) -> list[float]:
    """Levenberg-Marquardt on ``c f(a x + b) + d - y`` from ``params``."""
    def residual(q: torch.Tensor) -> torch.Tensor:
        return q[2] * fn(q[0] * x + q[1]) + q[3] - y

    return levenberg_marquardt(residual, torch.tensor(params, dtype=torch.float64), steps).tolist()


def fit_affine(x: torch.Tensor, y: torch.Tensor, function: SymbolicFunction | str,
               a_range: Sequence[float] = (-10.0, 10.0), b_range: Sequence[float] = (-10.0, 10.0),
               grid: int = 51, iterations: int = 3) -> tuple[tuple[float, float, float, float], float]:
    """``((a, b, c, d), R^2)`` of ``y ~ c f(a x + b) + d`` on samples ``x, y (N,)`` (``R^2 = -inf``: no valid fit)."""
    fn = FUNCTIONS[function] if isinstance(function, str) else function
    x, y = x.detach().double().flatten(), y.detach().double().flatten()
    if x.shape != y.shape or len(x) < 2:
        raise ValueError(f"fit_affine: x and y must be (N,) with N >= 2, got {tuple(x.shape)} and {tuple(y.shape)}")
    spread = (y - y.mean()).abs().max()
    if fn.name == "0" or spread <= 1e-12 * (1 + y.abs().max()):  # a constant edge: every f fits with c = 0
        r2 = 1.0 if spread <= 1e-12 * (1 + y.abs().max()) else 0.0
        return (0.0, 0.0, 0.0, y.mean().item()), r2
    if fn.name == "x":  # a and b are redundant with c and d
        c, d = _linear(x, y)
        return (1.0, 0.0, c, d), _r2(x, y, min_variation=1e-12).item()
    a_low, a_high = a_range
    b_low, b_high = b_range
    best = (-math.inf, 1.0, 0.0)
    for _ in range(iterations):
        a = torch.linspace(a_low, a_high, grid, dtype=torch.float64)
        b = torch.linspace(b_low, b_high, grid, dtype=torch.float64)
        with torch.no_grad():
            r2 = _r2(fn.torch_fn(a[:, None, None] * x + b[None, :, None]), y)  # (grid, grid)
        index = int(r2.argmax())
        ia, ib = divmod(index, grid)
        if r2[ia, ib] > best[0]:
            best = (r2[ia, ib].item(), a[ia].item(), b[ib].item())
        a_low, a_high = a[max(ia - 1, 0)].item(), a[min(ia + 1, grid - 1)].item()
        b_low, b_high = b[max(ib - 1, 0)].item(), b[min(ib + 1, grid - 1)].item()
    if best[0] == -math.inf:
        return (1.0, 0.0, 0.0, y.mean().item()), -math.inf
    _, a_best, b_best = best
    c, d = _linear(fn.torch_fn(a_best * x + b_best), y)
    a_best, b_best, c, d = _polish(x, y, fn.torch_fn, [a_best, b_best, c, d])
    return (a_best, b_best, c, d), _r2(fn.torch_fn(a_best * x + b_best), y).item()


def _selection_loss(r2: float, complexity: int, weight_simple: float) -> float:
    return weight_simple * complexity + (1 - weight_simple) * math.log2(1 + 1e-5 - min(r2, 1.0))


@torch.no_grad()
def auto_symbolic(model: nn.Module, lib: str | Sequence[str] | None = None, x: torch.Tensor | None = None,
                  weight_simple: float = 0.8, a_range: Sequence[float] = (-10.0, 10.0),
                  b_range: Sequence[float] = (-10.0, 10.0), max_samples: int = 1024,
                  alternatives: int = 3) -> list[dict]:
    """Replace every layer of ``model`` by a :class:`SymbolicKANLinear` whose edges are the best formulas for the
    learned edge functions on samples ``x`` (default: the last input); returns one record per edge
    (``layer, input, output, function, r2, affine, alternatives``). Pruned edges become ``"0"``. The next
    ``alternatives`` candidates of each edge by ``R^2`` are kept for :func:`fit_symbolic`'s search: a learned
    edge is only as exact as the network was, so near-ties (``c cos(a x)`` against ``x^2``) are common."""
    functions = library(lib)
    if not 0 <= weight_simple <= 1:
        raise ValueError(f"auto_symbolic: weight_simple={weight_simple!r} must be in [0, 1]")
    x = samples(model, x, "auto_symbolic")
    layers = edge_layers(model, "auto_symbolic")
    if len(x) > max_samples:  # spread over the range: the fits cost grid^2 * N per candidate
        x = x[torch.linspace(0, len(x) - 1, max_samples).long()]
    seen = layer_inputs(model, x.to(next(model.parameters()).dtype), "auto_symbolic")
    report, new_layers = [], []
    for l, (layer, inputs) in enumerate(zip(layers, seen[:-1], strict=True)):
        values = layer.edge_values(inputs).double()  # (N, out, in)
        mask = getattr(layer, "edge_mask", None)
        names = [["0"] * layer.in_features for _ in range(layer.out_features)]
        ranked = {}
        affine = torch.zeros(layer.out_features, layer.in_features, 4, dtype=torch.float64)
        for o in range(layer.out_features):
            for i in range(layer.in_features):
                if mask is not None and not mask[o, i]:
                    report.append({"layer": l, "input": i, "output": o, "function": "0", "r2": 1.0,
                                   "affine": (0.0, 0.0, 0.0, 0.0)})
                    continue
                fits = [(fn, *fit_affine(inputs[:, i], values[:, o, i], fn, a_range, b_range)) for fn in functions]
                fits.sort(key=lambda f: _selection_loss(f[2], f[0].complexity, weight_simple))
                fn, params, r2 = fits[0]
                names[o][i] = fn.name
                affine[o, i] = torch.tensor(params, dtype=torch.float64)
                # runner-ups by fit alone ("0" is always tried by the search)
                others = sorted((f for f in fits[1:] if f[0].name != "0" and f[2] > -math.inf), key=lambda f: -f[2])
                ranked[o, i] = {f.name: tuple(p) for f, p, _ in [fits[0], *others[:alternatives]]}
                ranked[o, i].setdefault("0", (0.0, 0.0, 0.0, 0.0))
                report.append({"layer": l, "input": i, "output": o, "function": fn.name, "r2": r2,
                               "affine": tuple(params), "alternatives": [f[0].name for f in others[:alternatives]]})
        symbolic = SymbolicKANLinear(names, affine).to(next(layer.parameters()).device)
        symbolic.candidates = ranked
        new_layers.append(symbolic)
    model.layers = nn.Sequential(*new_layers)
    return report


def fit_symbolic(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int = 100, search: bool = True) -> float:
    """Polish all constants of a symbolic KAN (after :func:`auto_symbolic`) together, by Levenberg-Marquardt in
    float64 on ``(x, y)``; returns the relative L2 error ``|model(x) - y| / |y|`` after it. The polish never makes
    the error worse (refused steps leave the constants as they were); the search below may trade up to 10% of it
    for simpler formulas.

    With ``search``, each edge's runner-up formulas from :func:`auto_symbolic`, and ``"0"`` (dropping the edge),
    are then tried in turn, the whole network refitted from the first fits each time; a swap is kept when it
    lowers the error by 10%, or when it is simpler (lower complexity) and keeps the error within 10% of the lowest
    reached (so simplifications cannot add up).
    """
    layers = edge_layers(model, "fit_symbolic")
    if not all(isinstance(layer, SymbolicKANLinear) for layer in layers):
        raise ValueError("fit_symbolic: every layer must be symbolic; call auto_symbolic first")
    model.check_input(x)
    x = x.detach().double().reshape(-1, x.shape[-1])
    y = y.detach().double().reshape(-1)
    if len(y) != len(x) * layers[-1].out_features:
        raise ValueError(f"fit_symbolic: y must hold {layers[-1].out_features} value(s) per sample of x, got "
                         f"{len(y)} for {len(x)} samples")
    network = nn.Sequential(*layers)
    names = [name for name, _ in network.named_parameters()]
    shapes = [p.shape for _, p in network.named_parameters()]

    def unflatten(v: torch.Tensor) -> dict[str, torch.Tensor]:
        parts = torch.split(v, [shape.numel() for shape in shapes])
        return {name: part.reshape(shape) for name, part, shape in zip(names, parts, shapes, strict=True)}

    def residual(v: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(network, unflatten(v), (x,)).reshape(-1) - y

    def polish() -> float:
        start = torch.cat([p.detach().double().flatten() for p in network.parameters()])
        with torch.no_grad():
            fitted = unflatten(levenberg_marquardt(residual, start, steps))
            for name, p in network.named_parameters():
                p.data = fitted[name]
            error = residual(torch.cat([p.flatten() for p in network.parameters()])).norm()
            return (error / y.norm().clamp_min(1e-300)).item()

    error = polish()
    if not search or not any(layer.candidates for layer in layers):
        return error
    # Every assignment is fitted from the edges' first fits (consistent with each other): started from the
    # polished constants, a swapped-in edge meets neighbours that adapted to the edge it replaces.
    assignment = [layer.functions() for layer in layers]
    best_state = [p.detach().clone() for p in network.parameters()]

    def fit_assignment() -> float:
        for layer, names in zip(layers, assignment, strict=True):
            for (o, i), fits in layer.candidates.items():
                layer.set_edge(o, i, names[o][i], fits[names[o][i]])
        return polish()

    lowest = error  # simplifications may cost 10% of the lowest error reached, not 10% each
    for l, layer in enumerate(layers):
        for (o, i), fits in layer.candidates.items():
            for name in fits:
                current = FUNCTIONS[assignment[l][o][i]]
                if name == current.name:
                    continue
                assignment[l][o][i] = name
                trial = fit_assignment()
                simpler = FUNCTIONS[name].complexity < current.complexity
                if trial < 0.9 * error or (simpler and trial <= 1.1 * lowest):
                    error, best_state = trial, [p.detach().clone() for p in network.parameters()]
                    lowest = min(lowest, error)
                else:
                    assignment[l][o][i] = current.name
    for layer, names in zip(layers, assignment, strict=True):  # the best assignment and its constants
        for (o, i), fits in layer.candidates.items():
            layer.set_edge(o, i, names[o][i], fits[names[o][i]])
    with torch.no_grad():
        for p, state in zip(network.parameters(), best_state, strict=True):
            p.data = state
    return error
    for layer in layers:
        for (o, i), candidates in layer.alternatives.items():
            for name, affine in [*candidates, ("0", (0.0, 0.0, 0.0, 0.0))]:
                current = FUNCTIONS[layer.functions()[o][i]]
                if name == current.name:
                    continue
                saved = [(lay.function_index.clone(), lay.affine.detach().clone()) for lay in layers]
                layer.set_edge(o, i, name, affine)
                trial = polish()
                simpler = FUNCTIONS[name].complexity < current.complexity
                if trial < 0.9 * error or (simpler and trial <= 1.1 * error):
                    error = trial
                    continue
                for lay, (index, values) in zip(layers, saved, strict=True):
                    lay.function_index.copy_(index)
                    lay.affine.data = values
    return error
