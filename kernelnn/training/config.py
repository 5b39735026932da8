"""Validation of the ``trainer`` config group: every bad value fails before training, naming its key."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from kernelnn.training.errors import ConfigError
from kernelnn.training.trainer import AMP_DTYPES, PRECISIONS, TrainerOptions

# Keys of the trainer group that run() uses itself (the rest become TrainerOptions).
RUN_KEYS = {"device": "auto", "loss": "auto", "resume": None, "deterministic": False, "plots": True,
            "plot_samples": 3, "refine": {"epochs": 0, "sobolev_s": 1.0, "lr": None}}


def _positive_int(key: str, value: Any, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"trainer.{key}={value!r} must be a positive integer")


def validate_trainer(trainer: dict[str, Any]) -> tuple[TrainerOptions, dict[str, Any]]:
    """Split and check the trainer config; returns ``(TrainerOptions, run-level options)``."""
    known = {f.name for f in fields(TrainerOptions)} | set(RUN_KEYS)
    unknown = sorted(set(trainer) - known)
    if unknown:
        raise ConfigError(f"unknown trainer key(s) {unknown}; valid: {sorted(known)}")
    for key in ("epochs", "batch_size", "eval_batch_size", "grad_accum", "log_every", "test_every"):
        if key in trainer:
            _positive_int(key, trainer[key])
    _positive_int("early_stopping_patience", trainer.get("early_stopping_patience"), allow_none=True)
    if trainer.get("amp", "none") not in AMP_DTYPES:
        raise ConfigError(f"trainer.amp={trainer['amp']!r} is not valid; valid: {list(AMP_DTYPES)}")
    precision = trainer.get("precision", "float32")
    if precision not in PRECISIONS:
        raise ConfigError(f"trainer.precision={precision!r} is not valid; valid: {list(PRECISIONS)}")
    if precision == "float64" and trainer.get("amp", "none") != "none":
        raise ConfigError(f"trainer.amp={trainer['amp']!r} lowers the precision that trainer.precision=float64 "
                          "asks for; use one of them")
    clip = trainer.get("grad_clip")
    if clip is not None and (not isinstance(clip, int | float) or clip <= 0):
        raise ConfigError(f"trainer.grad_clip={clip!r} must be a positive number or null")
    if trainer.get("monitor_mode", "auto") not in ("auto", "min", "max"):
        raise ConfigError(f"trainer.monitor_mode={trainer['monitor_mode']!r} must be auto, min or max")
    if int(trainer.get("num_workers", 0)) < 0:
        raise ConfigError(f"trainer.num_workers={trainer['num_workers']!r} must be >= 0")
    if int(trainer.get("plot_samples", 0)) < 0:
        raise ConfigError(f"trainer.plot_samples={trainer['plot_samples']!r} must be >= 0")
    quadratic_lr = trainer.get("quadratic_lr")
    if quadratic_lr is not None and (isinstance(quadratic_lr, bool) or not isinstance(quadratic_lr, int | float)
                                     or quadratic_lr < 0):
        raise ConfigError(f"trainer.quadratic_lr={quadratic_lr!r} must be a number >= 0 or null")
    delta_rate = trainer.get("delta_rate", 0.0)
    if isinstance(delta_rate, bool) or not isinstance(delta_rate, int | float) or delta_rate < 0:
        raise ConfigError(f"trainer.delta_rate={delta_rate!r} must be a number >= 0 (0: no sparsity penalty)")
    resume = trainer.get("resume")
    if resume is not None and not isinstance(resume, str):
        raise ConfigError(f"trainer.resume={resume!r} must be null, 'auto' or a checkpoint path")
    refine = trainer.get("refine") or {}
    unknown = sorted(set(refine) - set(RUN_KEYS["refine"]))
    if unknown:
        raise ConfigError(f"unknown trainer.refine key(s) {unknown}; valid: {sorted(RUN_KEYS['refine'])}")
    epochs = refine.get("epochs", 0)
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ConfigError(f"trainer.refine.epochs={epochs!r} must be an integer >= 0")
    if refine.get("sobolev_s", 1.0) <= 0:
        raise ConfigError(f"trainer.refine.sobolev_s={refine['sobolev_s']!r} must be positive (the loss is H^-s)")
    if refine.get("lr") is not None and refine["lr"] <= 0:
        raise ConfigError(f"trainer.refine.lr={refine['lr']!r} must be positive or null")
    _validate_grids(trainer)
    options = TrainerOptions(**{k: v for k, v in trainer.items() if k not in RUN_KEYS})
    extra = {k: trainer.get(k, default) for k, default in RUN_KEYS.items()}
    extra["refine"] = {**RUN_KEYS["refine"], **refine}
    return options, extra


def _validate_grids(trainer: dict[str, Any]) -> None:
    """``trainer.grid_update`` / ``trainer.grid_refine`` (KAN grid schedules); fills their defaults in place."""
    update = {"every": 0, "until": None, **(trainer.get("grid_update") or {})}
    unknown = sorted(set(update) - {"every", "until"})
    if unknown:
        raise ConfigError(f"unknown trainer.grid_update key(s) {unknown}; valid: ['every', 'until']")
    every = update["every"]
    if isinstance(every, bool) or not isinstance(every, int) or every < 0:
        raise ConfigError(f"trainer.grid_update.every={every!r} must be an integer >= 0 (0: off)")
    _positive_int("grid_update.until", update["until"], allow_none=True)
    refine = {"epochs": [], "sizes": [], **(trainer.get("grid_refine") or {})}
    unknown = sorted(set(refine) - {"epochs", "sizes"})
    if unknown:
        raise ConfigError(f"unknown trainer.grid_refine key(s) {unknown}; valid: ['epochs', 'sizes']")
    epochs, sizes = list(refine["epochs"]), list(refine["sizes"])
    if len(epochs) != len(sizes):
        raise ConfigError(f"trainer.grid_refine.epochs={epochs} and trainer.grid_refine.sizes={sizes} must have the "
                          "same length (one grid size per epoch)")
    if any(isinstance(e, bool) or not isinstance(e, int) or e < 1 for e in epochs) or epochs != sorted(set(epochs)):
        raise ConfigError(f"trainer.grid_refine.epochs={epochs} must be increasing epoch numbers >= 1 (0-based: the "
                          "epoch before which the grids are refined)")
    if any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in sizes):
        raise ConfigError(f"trainer.grid_refine.sizes={sizes} must be positive integers")
    trainer["grid_update"], trainer["grid_refine"] = update, {"epochs": epochs, "sizes": sizes}
