"""L-BFGS that keeps working at the tiny losses of function fitting.

``torch.optim.LBFGS`` keeps a curvature pair ``(s, y)`` only when ``y . s > 1e-10``, an absolute threshold. When a
regression loss falls to ~1e-7 (KAN fits reach that), every pair is rejected and L-BFGS silently degrades to scaled
gradient descent: training stalls. L-BFGS with a strong-Wolfe line search is otherwise invariant to the scale of the
objective, so handing it ``objective_scale`` times the objective and its gradient moves the threshold out of the way
without changing the method. (pykan ships a patched copy of torch's L-BFGS for the same reason.)
"""

from __future__ import annotations

from collections.abc import Callable

import torch


class LBFGS(torch.optim.LBFGS):
    """``torch.optim.LBFGS`` minimising ``objective_scale * f`` (see the module docstring).

    Parameters are those of :class:`torch.optim.LBFGS` plus ``objective_scale`` (> 0): pairs with true
    ``y . s > 1e-10 / objective_scale`` are kept. Keep ``objective_scale * |gradient|`` far below 1e19 in float32,
    or ``y . y`` overflows (1e8 fits losses from ~1e-9 to ~1e3). ``step(closure)``
    takes the usual closure (zero grads, compute the objective, backward, return it) and returns the closure's
    first value, unscaled.
    """

    def __init__(self, params, objective_scale: float = 1e8, **options) -> None:
        if not objective_scale > 0:
            raise ValueError(f"LBFGS: objective_scale={objective_scale!r} must be > 0")
        for key in ("max_iter", "history_size"):  # torch's L-BFGS fails on 0 only inside a step
            value = options.get(key, 1)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"LBFGS: {key}={value!r} must be a positive integer")
        super().__init__(params, **options)
        self.objective_scale = float(objective_scale)

    def step(self, closure: Callable[[], torch.Tensor]) -> torch.Tensor:  # type: ignore[override]
        scale = self.objective_scale

        def scaled_closure() -> torch.Tensor:
            loss = closure()
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        p.grad.mul_(scale)
            return loss * scale

        return super().step(scaled_closure) / scale
