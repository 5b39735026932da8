"""Typed configs: the ``trainer`` group as a dataclass (a Hydra structured config), and :func:`typed`, which checks
any config section against a dataclass with errors that name the key and what is allowed.

Types, unknown keys and choices (enums) are checked by OmegaConf; value ranges by the dataclass's
``__post_init__`` through :func:`require`. Plugins declare their sections the same way.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

from kernelnn.training.errors import ConfigError

T = TypeVar("T")


class Invalid(ValueError):
    """Raised by a config dataclass's ``__post_init__``: ``field`` holds ``value``, which must satisfy ``rule``."""

    def __init__(self, field: str, value: Any, rule: str) -> None:
        super().__init__(f"{field}={value!r} {rule}")
        self.field, self.value, self.rule = field, value, rule


def require(ok: bool, field: str, value: Any, rule: str) -> None:
    """``raise Invalid(field, value, rule)`` unless ``ok``; e.g. ``require(epochs >= 1, "epochs", epochs,
    "must be a positive integer")``."""
    if not ok:
        raise Invalid(field, value, rule)


def _shown(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


def typed(section: Mapping[str, Any] | None, schema: type[T], key: str) -> T:
    """``section`` (plain dict) as an instance of the dataclass ``schema``; ``key`` is its place in the config
    (``"trainer"``, ``"plugins.kan_grids"``), used in every error message.

    >>> typed({"epochs": 5}, TrainerConfig, "trainer").epochs
    5
    """
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), dict(section or {}))
        return OmegaConf.to_object(merged)
    except Invalid as err:
        raise ConfigError(f"{key}.{err.field}={_shown(err.value)!r} {err.rule}") from None
    except ConfigKeyError as err:
        valid = sorted(f.name for f in fields(schema))
        raise ConfigError(f"unknown {key} key {err.full_key!r}; valid: {valid}") from None
    except ValidationError as err:
        message = str(err).splitlines()[0]
        raise ConfigError(f"{key}.{err.full_key}={err.value!r}: {message}") from None
    except OmegaConfBaseException as err:
        raise ConfigError(f"{key}: {str(err).splitlines()[0]}") from None


class Amp(str, enum.Enum):
    none = "none"
    bf16 = "bf16"
    fp16 = "fp16"


class Precision(str, enum.Enum):
    float32 = "float32"
    float64 = "float64"


class MonitorMode(str, enum.Enum):
    auto = "auto"
    min = "min"
    max = "max"


def _positive(field: str, value: int | None, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    require(value is not None and value >= 1, field, value, "must be a positive integer")


@dataclass
class TrainerConfig:
    """The ``trainer`` config group (``configs/trainer/default.yaml`` documents every key)."""

    epochs: int = 20
    batch_size: int = 20  # global: split across torchrun processes
    eval_batch_size: int = 100
    loss: str = "auto"
    device: str = "auto"
    precision: Precision = Precision.float32
    amp: Amp = Amp.none
    compile: bool = False
    grad_clip: float | None = None
    grad_accum: int = 1
    monitor: str = "auto"
    monitor_mode: MonitorMode = MonitorMode.auto
    early_stopping_patience: int | None = None
    time_limit: float | None = None  # seconds of training (evaluation excluded) after which no epoch starts
    test_every: int = 5  # as configs/trainer/default.yaml
    resume: str | None = None
    deterministic: bool = False
    log_every: int = 10
    progress_bar: bool = True
    tensorboard: bool = True
    plots: bool = True
    plot_samples: int = 3
    num_workers: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "eval_batch_size", "grad_accum", "log_every", "test_every"):
            _positive(name, getattr(self, name))
        _positive("early_stopping_patience", self.early_stopping_patience, allow_none=True)
        require(self.time_limit is None or 0 < self.time_limit < math.inf, "time_limit", self.time_limit,
                "must be a positive number of seconds or null")
        require(self.grad_clip is None or self.grad_clip > 0, "grad_clip", self.grad_clip,
                "must be a positive number or null")
        require(self.num_workers >= 0, "num_workers", self.num_workers, "must be >= 0")
        require(self.plot_samples >= 0, "plot_samples", self.plot_samples, "must be >= 0")
        require(not (self.precision == Precision.float64 and self.amp != Amp.none), "amp", self.amp,
                "lowers the precision that trainer.precision=float64 asks for; use one of them")


def register_configs() -> None:
    """Put the structured configs in Hydra's ConfigStore (``trainer/schema``), so composition checks types."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(group="trainer", name="schema", node=TrainerConfig)
