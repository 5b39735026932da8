"""Learning-rate schedules stepped once per optimizer step.

Every factory takes ``(optimizer, *, total_steps, steps_per_epoch, ...)``: configs select one with
``_target_`` and ``_partial_: true`` and the trainer supplies the schedule's length.
"""

from __future__ import annotations

import math
from numbers import Real

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, LRScheduler, OneCycleLR, StepLR


def _require(ok: bool, key: str, value, allowed: str) -> None:
    """The config key ``scheduler.<key>`` is named, as the value given and what is allowed."""
    if not ok:
        raise ValueError(f"scheduler.{key}={value!r} must be {allowed}")


def _integer(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


def constant(optimizer: Optimizer, *, total_steps: int, steps_per_epoch: int) -> LRScheduler:
    return LambdaLR(optimizer, lambda step: 1.0)


def cosine(optimizer: Optimizer, *, total_steps: int, steps_per_epoch: int, warmup_steps: int = 0,
           min_lr_ratio: float = 0.0) -> LRScheduler:
    """Linear warm-up over ``warmup_steps``, then cosine decay to ``min_lr_ratio`` times the base rate."""
    _require(_integer(warmup_steps) and warmup_steps >= 0, "warmup_steps", warmup_steps, "an integer >= 0")
    _require(_number(min_lr_ratio) and 0 <= min_lr_ratio <= 1, "min_lr_ratio", min_lr_ratio, "a number in [0, 1]")
    decay = max(1, total_steps - warmup_steps)

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / decay)
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)


def step(optimizer: Optimizer, *, total_steps: int, steps_per_epoch: int, step_epochs: int = 100,
         gamma: float = 0.5) -> LRScheduler:
    """Multiply the rate by ``gamma`` every ``step_epochs`` epochs (the FNO paper's schedule)."""
    _require(_integer(step_epochs) and step_epochs >= 1, "step_epochs", step_epochs, "a positive integer")
    _require(_number(gamma) and gamma > 0, "gamma", gamma, "a finite number > 0")
    return StepLR(optimizer, step_size=max(1, step_epochs * steps_per_epoch), gamma=gamma)


def onecycle(optimizer: Optimizer, *, total_steps: int, steps_per_epoch: int, max_lr: float | None = None,
             pct_start: float = 0.3) -> LRScheduler:
    """One-cycle policy peaking at ``max_lr`` (default: the optimizer's configured rate). Momentum is cycled
    too when the optimizer has one (SGD's momentum, Adam's beta1); L-BFGS has none, so only its rate cycles."""
    _require(max_lr is None or (_number(max_lr) and max_lr > 0), "max_lr", max_lr,
             "a finite number > 0, or null (optim.lr)")
    _require(_number(pct_start) and 0 < pct_start < 1, "pct_start", pct_start, "a number in (0, 1)")
    peak = max_lr if max_lr is not None else [g["lr"] for g in optimizer.param_groups]
    has_momentum = all("momentum" in g or "betas" in g for g in optimizer.param_groups)
    return OneCycleLR(optimizer, max_lr=peak, total_steps=max(1, total_steps), pct_start=pct_start,
                      cycle_momentum=has_momentum)
