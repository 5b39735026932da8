"""kernelnn's L-BFGS: torch's, made insensitive to the objective's magnitude."""

import pytest
import torch

from kernelnn.training.lbfgs import LBFGS


def _minimise(optimizer_class, **options) -> float:
    """One L-BFGS step (40 iterations) on a 10-D quadratic with condition number 100 and values ~1e-9, as a
    regression loss near convergence; returns the largest parameter error."""
    curvature = torch.logspace(0, 2, 10, dtype=torch.float64)
    w = torch.zeros(10, dtype=torch.float64, requires_grad=True)
    optimizer = optimizer_class([w], max_iter=40, max_eval=400, history_size=10, line_search_fn="strong_wolfe",
                                tolerance_grad=1e-32, tolerance_change=1e-32, **options)

    def closure():
        optimizer.zero_grad()
        loss = 1e-9 * (curvature * (w - 1) ** 2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return (w.detach() - 1).abs().max().item()


def test_tiny_objectives_keep_their_curvature_pairs():
    # torch's absolute y.s > 1e-10 test rejects every pair here, leaving steepest descent: it stalls.
    stalled = _minimise(torch.optim.LBFGS)
    assert stalled > 1e-3
    assert _minimise(LBFGS, objective_scale=1.0) == pytest.approx(stalled)
    assert _minimise(LBFGS) < 1e-4


def test_step_returns_the_unscaled_loss_and_gradients_of_the_objective():
    w = torch.tensor([3.0], dtype=torch.float64, requires_grad=True)
    optimizer = LBFGS([w], objective_scale=1e6, max_iter=1)

    def closure():
        optimizer.zero_grad()
        loss = (w ** 2).sum()
        loss.backward()
        return loss

    assert optimizer.step(closure).item() == pytest.approx(9.0)
    optimizer.zero_grad()
    (w ** 2).sum().backward()
    assert w.grad.item() == pytest.approx(2 * w.item())  # gradients outside step() are the user's own


def test_rejects_non_positive_scale():
    with pytest.raises(ValueError, match="LBFGS: objective_scale=0"):
        LBFGS([torch.zeros(1, requires_grad=True)], objective_scale=0)
