"""Symbolic regression with a KAN in one call: pykan's workflow (train sparse, prune, refine, fit formulas).

1. train a B-spline KAN by full-batch L-BFGS with the L1 + entropy sparsity penalty, moving the grids to the data
   before each round (``rounds`` x ``steps``);
2. :func:`~kernelnn.interpret.prune` it;
3. refine the grids (``refine_to``) and train on without the penalty, so the edges are sharp enough to recognise;
4. :func:`~kernelnn.interpret.auto_symbolic`, :func:`~kernelnn.interpret.fit_symbolic` and
   :func:`~kernelnn.interpret.symbolic_formula`.

Everything runs in float64 (the formula is checked to 1e-6 of the network).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from kernelnn.interpret.attribution import layer_inputs


def _lbfgs(model, x: torch.Tensor, y: torch.Tensor, steps: int, penalty: float) -> float:
    optimizer = torch.optim.LBFGS(model.parameters(), lr=1.0, history_size=10, line_search_fn="strong_wolfe",
                                  max_iter=steps)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        if penalty:
            loss = loss + penalty * sum(layer.regularization() for layer in model.layers)
        loss.backward()
        return loss

    model.train()
    optimizer.step(closure)
    with torch.no_grad():
        return (((model(x) - y) ** 2).mean().sqrt() / y.square().mean().sqrt()).item()


def symbolic_regression(x: torch.Tensor, y: torch.Tensor, widths: Sequence[int], lib: str | Sequence[str] | None = None,
                        grid_size: int = 5, refine_to: Sequence[int] = (10, 20), rounds: int = 5, steps: int = 20,
                        penalty: float = 1e-2, prune_threshold: float = 1e-2, edge_threshold: float = 3e-2,
                        seed: int = 0) -> dict:
    """Find a formula for ``y (N, out) ~ f(x (N, in))`` (see the module docstring). Returns a dict: ``model`` (the
    symbolic KAN), ``formula`` (sympy), ``edges`` (auto_symbolic's records), ``widths`` after pruning, and the
    relative RMS errors ``numeric_error`` (the refined KAN) and ``symbolic_error`` (after fit_symbolic)."""
    from kernelnn.models import KAN

    x, y = x.detach().double(), y.detach().double().reshape(len(x), -1)
    torch.manual_seed(seed)
    model = KAN(list(widths), layer_options={"grid_size": grid_size, "regularize_l1": 1.0,
                                             "regularize_entropy": 2.0}).double()
    for _ in range(rounds):
        with torch.no_grad():
            for layer, inputs in zip(model.layers, layer_inputs(model, x)[:-1], strict=False):
                layer.update_grid(inputs)
        _lbfgs(model, x, y, steps, penalty)
    model = model.prune(prune_threshold, edge_threshold, x=x)
    error = _lbfgs(model, x, y, steps, 0.0)
    for size in refine_to:
        with torch.no_grad():
            for layer, inputs in zip(model.layers, layer_inputs(model, x)[:-1], strict=False):
                layer.refine(size, inputs)
        error = _lbfgs(model, x, y, 2 * steps, 0.0)
    widths_pruned = list(model.widths)
    edges = model.auto_symbolic(lib, x=x)
    symbolic_error = model.fit_symbolic(x, y)
    return {"model": model, "formula": model.symbolic_formula(x), "edges": edges, "widths": widths_pruned,
            "numeric_error": error, "symbolic_error": symbolic_error}
